"""The endpoint smoke test: against a stubbed SageMaker runtime (botocore Stubber on a real
client), and against the local-run's registered model versions served by their two
containers' handlers (the artifacts the ``local_run`` fixture left)."""

from __future__ import annotations

import io
import json

import boto3
import pandas as pd
import pytest
import smoke_test as st
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from botocore.validate import validate_parameters
from steplib.contract import BINARY, MULTICLASS, REGRESSION
from steplib.errors import EXIT_DATA_ERROR, run_main

ENDPOINT = "dev-smoke"
FEATURES = [{"name": "x1", "type": "numeric"}, {"name": "colour", "type": "categorical"}]
TARGETS = {
    BINARY: {"name": "label", "type": "categorical", "classes": ["no", "yes"]},
    MULTICLASS: {"name": "label", "type": "categorical", "classes": ["a", "b", "c"]},
    REGRESSION: {"name": "label", "type": "numeric"},
}
RAW = pd.DataFrame(
    {
        "record_id": [f"r{i}" for i in range(7)],
        "event_time": ["2026-01-01T00:00:00Z"] * 7,
        "label": ["1"] * 7,
        "x1": [1.5, None, 3.0, 4.25, 5.0, 6.0, 7.0],
        "colour": ["red", "blue, dark", None, "red", "blue", "red", "red"],
    }
)
#: The first five rows as the endpoint must receive them (schema order, target left out).
CSV_BODY = '1.5,red\n,"blue, dark"\n3.0,\n4.25,red\n5.0,blue\n'
#: Answers as the built-in XGBoost container writes them: ",".join(map(str, preds.tolist())).
GOOD = {
    BINARY: "0.01,0.98,0.5,0.0,1.0",
    MULTICLASS: ",".join(["[0.1, 0.2, 0.7]"] * 4 + ["[0.3333, 0.3333, 0.3334]"]),
    REGRESSION: "151.2,-3.5,0.0,1e3,42",
}


def _files(tmp_path, problem_type: str):
    schema = {
        "recordIdColumn": "record_id",
        "eventTimeColumn": "event_time",
        "target": TARGETS[problem_type],
        "features": FEATURES,
    }
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "raw").mkdir(exist_ok=True)
    RAW.to_csv(tmp_path / "raw" / "part-0.csv", index=False)
    return tmp_path / "schema.json", tmp_path / "raw"


def _client():
    return boto3.client(
        "sagemaker-runtime", region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="x",
    )  # fmt: skip


def _answer(text: str) -> dict:
    data = text.encode("utf-8")
    return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "text/csv"}


def _expected(body: str = CSV_BODY, content_type: str = "text/csv") -> dict:
    return {
        "EndpointName": ENDPOINT,
        "Body": body.encode("utf-8"),
        "ContentType": content_type,
        "Accept": "text/csv",
    }


def _cli(monkeypatch, capsys, client, schema, data, problem_type, *extra):
    """The script's main through run_main (as its process runs it), with ``client`` as the
    runtime client; returns (exit code, stdout, stderr, the runtime_client arguments)."""
    made: dict = {}

    def runtime_client(region, timeout_seconds):
        made.update(region=region, timeout_seconds=timeout_seconds)
        return client

    monkeypatch.setattr(st, "runtime_client", runtime_client)
    code = run_main(
        st.main,
        ["--endpoint-name", ENDPOINT, "--schema", str(schema), "--data", str(data),
         "--problem-type", problem_type, "--region", "eu-west-1", *map(str, extra)],
    )  # fmt: skip
    out = capsys.readouterr()
    return code, out.out, out.err, made


# --------------------------------------------------------------------------- stubbed runtime


@pytest.mark.parametrize("problem_type", [BINARY, MULTICLASS, REGRESSION])
def test_a_good_answer_passes_for_each_problem_type(tmp_path, monkeypatch, capsys, problem_type):
    schema, data = _files(tmp_path, problem_type)
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("invoke_endpoint", _answer(GOOD[problem_type]), _expected())
        code, out, err, made = _cli(monkeypatch, capsys, client, schema, data, problem_type)
        stub.assert_no_pending_responses()
    assert code == 0, err
    assert made == {"region": "eu-west-1", "timeout_seconds": 60}
    assert f"smoke test PASSED: endpoint {ENDPOINT}" in out
    assert "rows sent:   5 (text/csv)" in out and " ms" in out
    expected = {
        BINARY: "probability of 'yes': min 0, mean 0.498, max 1; at 0.5: no 2, yes 3",
        MULTICLASS: "most likely class: c 5; top probability min 0.333, max 0.7",
        REGRESSION: "predicted values: min -3.5, mean 237.9, max 1000",
    }[problem_type]
    assert f"predictions: {expected}" in out


def test_json_rows_and_the_row_count_are_sent_as_asked(tmp_path, monkeypatch, capsys):
    schema, data = _files(tmp_path, REGRESSION)
    body = json.dumps(
        [
            {"x1": 1.5, "colour": "red"},
            {"x1": None, "colour": "blue, dark"},
            {"x1": 3.0, "colour": None},
        ]
    )
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("invoke_endpoint", _answer("1,2,3"), _expected(body, "application/json"))
        code, out, err, made = _cli(
            monkeypatch, capsys, client, schema, data, REGRESSION,
            "--rows", 3, "--content-type", "application/json", "--timeout-seconds", 9,
        )  # fmt: skip
    assert code == 0, err
    assert "rows sent:   3 (application/json)" in out
    assert made == {"region": "eu-west-1", "timeout_seconds": 9.0}


def test_a_400_from_the_transform_is_a_model_error_with_status_and_message(
    tmp_path, monkeypatch, capsys
):
    schema, data = _files(tmp_path, BINARY)
    client = _client()
    container = {"error": "row 1, feature 'x1': value 'abc' is not numeric (1 such rows)"}
    log = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/dev-smoke"
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_endpoint", "ModelError",
            "Received client error (400) from primary with message ...", 424,
            modeled_fields={"OriginalStatusCode": 400, "OriginalMessage": json.dumps(container),
                            "LogStreamArn": log},
        )  # fmt: skip
        code, out, err, _ = _cli(monkeypatch, capsys, client, schema, data, BINARY)
    assert code == EXIT_DATA_ERROR and out == ""
    assert err.strip().splitlines()[-1] == (
        f"ERROR: endpoint {ENDPOINT}: ModelError: a container answered 400: "
        f"row 1, feature 'x1': value 'abc' is not numeric (1 such rows) (logs: {log})"
    )


def test_a_missing_endpoint_is_named(tmp_path, monkeypatch, capsys):
    schema, data = _files(tmp_path, BINARY)
    client = _client()
    message = f"Endpoint {ENDPOINT} of account 123456789012 not found."
    with Stubber(client) as stub:
        stub.add_client_error("invoke_endpoint", "ValidationError", message, 400)
        code, _, err, _ = _cli(monkeypatch, capsys, client, schema, data, BINARY)
    assert code == EXIT_DATA_ERROR
    assert err.strip().splitlines()[-1] == (
        f"ERROR: endpoint {ENDPOINT}: endpoint not found (ValidationError: {message})"
    )


@pytest.mark.parametrize(
    "problem_type,answer,reason",
    [
        (BINARY, "0.1,0.2,0.3,0.4", "4 predictions for 5 rows sent"),
        (BINARY, "0.1,0.2,1.5,0.4,0.5", "row 3: 1.5 is not a probability in [0, 1]"),
        (REGRESSION, "1,2,nan,4,5", "row 3: nan is not a finite number"),
        (REGRESSION, "1,2,3,4,<html>", "row 5: '<html>' is not a number"),
    ],
)
def test_a_bad_answer_fails_with_the_reason(
    tmp_path, monkeypatch, capsys, problem_type, answer, reason
):
    schema, data = _files(tmp_path, problem_type)
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("invoke_endpoint", _answer(answer), _expected())
        code, out, err, _ = _cli(monkeypatch, capsys, client, schema, data, problem_type)
    assert code == EXIT_DATA_ERROR and "PASSED" not in out
    assert err.strip().splitlines()[-1] == f"ERROR: endpoint {ENDPOINT}: bad answer: {reason}"


def test_bad_data_is_named_by_file_and_column_before_anything_is_sent(
    tmp_path, monkeypatch, capsys
):
    schema, data = _files(tmp_path, BINARY)
    RAW.drop(columns="colour").to_csv(data / "part-0.csv", index=False)
    client = _client()
    with Stubber(client):  # no response queued: any call would fail the test
        code, _, err, _ = _cli(monkeypatch, capsys, client, schema, data, BINARY)
    assert code == EXIT_DATA_ERROR
    assert f"ERROR: {data / 'part-0.csv'}: column 'colour': column is missing" in err


# --------------------------------------------------------------------------- pure checks


@pytest.mark.parametrize(
    "problem_type,classes,rows,body,problems",
    [
        (BINARY, ("no", "yes"), 2, "0.2,0.9", []),
        (BINARY, ("no", "yes"), 2, "0.2\n0.9\n", []),  # batch transform's layout
        (BINARY, ("no", "yes"), 1, "", ["0 predictions for 1 rows sent"]),
        (BINARY, ("no", "yes"), 1, "[0.2, 0.8]", ["expected one number per row, got vectors (a multi:softprob model?)"]),
        (BINARY, ("no", "yes"), 2, "-0.1,inf", ["row 1: -0.1 is not a probability in [0, 1]", "row 2: inf is not a probability in [0, 1]"]),
        (MULTICLASS, ("a", "b", "c"), 2, "[0.2, 0.3, 0.5],[1.0, 0.0, 0.0]", []),
        (MULTICLASS, ("a", "b", "c"), 1, "[0.2, 0.3, 0.4]", ["row 1: probabilities sum to 0.9, not 1"]),
        (MULTICLASS, ("a", "b", "c"), 1, "[0.5, 0.5]", ["row 1: 2 probabilities for 3 classes"]),
        (MULTICLASS, ("a", "b", "c"), 1, "[0.5, -0.1, 0.6]", ["row 1: -0.1 is not a probability in [0, 1]"]),
        (MULTICLASS, ("a", "b", "c"), 2, "2.0,1.0", ["expected one [p1, ..., pk] probability vector per row, got scalars, not probability vectors (a multi:softmax model?)"]),
        (MULTICLASS, ("a", "b", "c"), 1, "[0.2, 0.3, 0.5] oops", ["expected one [p1, ..., pk] probability vector per row, got trailing text 'oops'"]),
        (REGRESSION, (), 3, "1,-2.5,3e2", []),
        (REGRESSION, (), 2, "1,-inf", ["row 2: -inf is not a finite number"]),
    ],
)  # fmt: skip
def test_check_predictions(problem_type, classes, rows, body, problems):
    assert st.check_predictions(problem_type, classes, rows, body) == problems


def test_the_reason_quotes_the_first_problems_and_counts_the_rest(tmp_path):
    schema, data = _files(tmp_path, BINARY)
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("invoke_endpoint", _answer("2,3,4,5,6"), _expected())
        with pytest.raises(st.SmokeTestFailed) as failed:
            st.smoke_test(ENDPOINT, schema, BINARY, data, client=client)
    assert failed.value.problem.endswith("row 3: 4 is not a probability in [0, 1] (and 2 more)")


# --------------------------------------------------------------------------- local serving


class LocalRuntime:
    """Stands in for a ``sagemaker-runtime`` client: ``invoke_endpoint`` runs the registered
    version's two containers' handlers locally (serve_local.LocalEndpoint) and answers as
    the endpoint would: the XGBoost container's text/csv, or a ModelError for a container's
    error. ``garbage`` replaces the answer body."""

    def __init__(self, transform_dir, model_dir, garbage: str | None = None) -> None:
        from serve_local import LocalEndpoint

        self.endpoint = LocalEndpoint(transform_dir, model_dir)
        self.garbage = garbage
        self.calls: list[dict] = []
        self._shape = _client().meta.service_model.operation_model("InvokeEndpoint").input_shape

    def invoke_endpoint(self, **kwargs):
        validate_parameters(kwargs, self._shape)  # a request the real API accepts
        self.calls.append(kwargs)
        served = self.endpoint.transform(kwargs["Body"], kwargs["ContentType"])
        if served.status != 200:
            raise ClientError(
                {"Error": {"Code": "ModelError", "Message": "Received client error"},
                 "OriginalStatusCode": served.status, "OriginalMessage": served.body},
                "InvokeEndpoint",
            )  # fmt: skip
        scores = self.endpoint.score(served.body)
        body = ",".join(map(str, scores.tolist())) if self.garbage is None else self.garbage
        return _answer(body)


def _served(local_run, model: str):
    """(schema, raw data, transform dir, model dir) of a model of the local run."""
    assert local_run["summary"] is not None, local_run["proc"].stderr[-3000:]
    serving = local_run["work"] / model / "serving"
    project = local_run["project"]
    return (
        project / "data" / "schemas" / f"{model}.json",
        project / "data" / "raw" / model,
        serving / "transform",
        serving / "model",
    )


@pytest.mark.parametrize(
    "model,problem_type,content_type",
    [
        ("breast-cancer", BINARY, "text/csv"),
        ("wine", MULTICLASS, "application/json"),
        ("diabetes", REGRESSION, "text/csv"),
    ],
)
def test_the_registered_versions_pass_when_served_locally(
    local_run, model, problem_type, content_type
):
    schema, data, transform_dir, model_dir = _served(local_run, model)
    runtime = LocalRuntime(transform_dir, model_dir)
    result = st.smoke_test(
        ENDPOINT, schema, problem_type, data, rows=7, content_type=content_type, client=runtime
    )
    assert result.rows_sent == 7 and len(runtime.calls) == 1
    assert runtime.calls[0]["ContentType"] == content_type
    assert result.summary.startswith(
        {
            BINARY: "probability of 'malignant': ",
            MULTICLASS: "most likely class: ",
            REGRESSION: "predicted values: ",
        }[problem_type]
    )


def test_the_smoke_test_fails_when_the_local_endpoint_answers_garbage(local_run):
    schema, data, transform_dir, model_dir = _served(local_run, "breast-cancer")
    for garbage, reason in (
        ("", "0 predictions for 5 rows sent"),
        ("0.5,0.5", "2 predictions for 5 rows sent"),
        ("17,0.1,0.1,0.1,0.1", "row 1: 17 is not a probability in [0, 1]"),
        ('{"message": "ok"}', "2 predictions for 5 rows sent; row 1: '{\"message\":' is not"),
    ):
        runtime = LocalRuntime(transform_dir, model_dir, garbage=garbage)
        with pytest.raises(st.SmokeTestFailed) as failed:
            st.smoke_test(ENDPOINT, schema, BINARY, data, client=runtime)
        assert failed.value.problem.startswith(f"bad answer: {reason}"), failed.value.problem


def test_a_payload_the_transform_refuses_is_reported_with_its_400(local_run, tmp_path):
    """The schema sent does not match the one the transform was fitted for (a feature
    renamed): inference.py answers 400, which the smoke test reports with its message."""
    schema, data, transform_dir, model_dir = _served(local_run, "diabetes")
    doc = json.loads(schema.read_text())
    doc["features"][0]["name"] = "age_years"
    frame = pd.read_csv(data / "diabetes.csv").rename(columns={"age": "age_years"})
    frame.to_csv(tmp_path / "renamed.csv", index=False)
    (tmp_path / "schema.json").write_text(json.dumps(doc))
    runtime = LocalRuntime(transform_dir, model_dir)
    with pytest.raises(st.SmokeTestFailed) as failed:
        st.smoke_test(
            ENDPOINT, tmp_path / "schema.json", REGRESSION, tmp_path / "renamed.csv",
            content_type="application/json", client=runtime,
        )  # fmt: skip
    assert failed.value.problem == (
        "ModelError: a container answered 400: JSON record 1: missing features ['age']; "
        "unknown fields ['age_years']"
    )
