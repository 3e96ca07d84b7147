"""A version's single-container form: evaluate.py --serving-dir packages it, serve_single.py
serves it, and it answers what the two-container inference pipeline answers.

Each problem type trains a small booster on real data (breast cancer, wine, diabetes with a
few missing values), runs evaluate twice with --serving-dir, and serves the packaged
model.tar.gz from its extracted ``code/`` directory in a fresh interpreter (``-I``: no
PYTHONPATH, no script directory), so the archive alone must be enough to run.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import inference
import numpy as np
import pandas as pd
import pytest
import serve_local
import serve_single
from steplib import artifacts, contract
from steplib.contract import BINARY, MULTICLASS, REGRESSION
from steps_helpers import (
    BC_RAW,
    BC_SCHEMA,
    DIABETES_RAW,
    DIABETES_SCHEMA,
    STEPS,
    run_script,
    train_small_model,
)

CSV, JSON = "text/csv", "application/json"

#: Run in the fresh interpreter: load the model from the extracted archive and answer each
#: request with the four handlers, as the serving toolkit calls them.
DRIVER = """
import json, sys
code_dir, model_dir, requests_path, out_path = sys.argv[1:]
sys.path.insert(0, code_dir)
import serve_single
model = serve_single.model_fn(model_dir)
replies = []
for req in json.load(open(requests_path)):
    body = req["body"].encode("utf-8") if req["as_bytes"] else req["body"]
    data = serve_single.input_fn(body, req["content_type"])
    reply = serve_single.output_fn(serve_single.predict_fn(data, model), req["accept"])
    replies.append([reply.body.decode("utf-8"), reply.content_type, reply.status])
files = {
    name: getattr(module, "__file__", None)
    for name, module in sys.modules.items()
    if name in ("serve_single", "inference") or name.split(".")[0] == "steplib"
}
json.dump({"replies": replies, "files": files}, open(out_path, "w"))
"""


def builtin_xgboost_csv(scores: np.ndarray) -> str:
    """What the built-in XGBoost container (algorithm mode, container 2 of the pipeline)
    answers for Accept text/csv: aws/sagemaker-xgboost-container, algorithm_mode
    handler_service.py, default_output_fn (not SAGEMAKER_BATCH)."""
    return ",".join(map(str, scores.tolist()))


def _wine_raw(raw: Path) -> Path:
    from export_sklearn_data import feature_store_name, with_ids
    from sklearn.datasets import load_wine

    ds = load_wine(as_frame=True)
    x = ds.data.rename(columns=feature_store_name)
    y = ds.target.map(dict(enumerate(ds.target_names))).rename("cultivar")
    raw.mkdir()
    with_ids(pd.concat([y, x], axis=1), "wn").to_csv(raw / "wine.csv", index=False)
    schema = {
        "recordIdColumn": "record_id",
        "eventTimeColumn": "event_time",
        "target": {"name": "cultivar", "type": "categorical", "classes": list(ds.target_names)},
        "features": [{"name": c, "type": "numeric"} for c in x.columns],
    }
    (raw.parent / "schema.json").write_text(json.dumps(schema))
    return raw.parent / "schema.json"


def _diabetes_raw(raw: Path) -> Path:
    """The committed diabetes rows with some bmi values blank (the transform imputes them)."""
    raw.mkdir()
    frame = pd.read_csv(DIABETES_RAW, dtype=str, keep_default_na=False)
    frame.loc[frame.index % 9 == 0, "bmi"] = ""
    frame.to_csv(raw / "diabetes.csv", index=False)
    return DIABETES_SCHEMA


def _build(work: Path, problem_type: str) -> dict:
    """Preprocess, train a small booster, and evaluate twice with --serving-dir."""
    if problem_type == BINARY:
        raw, schema, extra = BC_RAW, BC_SCHEMA, {}
    elif problem_type == MULTICLASS:
        raw = work / "raw"
        schema, extra = _wine_raw(raw), {"num_class": "3"}
    else:
        raw = work / "raw"
        schema, extra = _diabetes_raw(raw), {}
    prep = train_small_model(work, raw, schema, problem_type, extra)
    for run in ("1", "2"):
        proc = run_evaluate(work, prep, schema, problem_type, prep / "test", run)
        assert proc.returncode == 0, proc.stderr
    return {"work": work, "prep": prep, "schema": schema, "problem_type": problem_type}


def run_evaluate(work: Path, prep: Path, schema: Path, problem_type: str, test_dir: Path, run: str):
    return run_script(
        "evaluate.py", "--model-dir", work / "artifact", "--test-dir", test_dir,
        "--transform-dir", prep / "transform", "--schema", schema, "--problem-type", problem_type,
        "--output-dir", work / f"eval{run}", "--serving-dir", work / f"serving{run}",
    )  # fmt: skip


@pytest.fixture(scope="module", params=[BINARY, MULTICLASS, REGRESSION])
def built(request, tmp_path_factory):
    return _build(tmp_path_factory.mktemp(request.param), request.param)


def _test_rows(built: dict) -> tuple[pd.DataFrame, dict]:
    schema = json.loads(Path(built["schema"]).read_text())
    raw = pd.read_csv(built["prep"] / "test/test.csv", dtype=str, keep_default_na=False)
    return raw, schema


def _bodies(raw: pd.DataFrame, schema: dict) -> dict[str, str]:
    """The test rows (features only) as a CSV body and as a JSON body (blank -> null)."""
    names = [f["name"] for f in schema["features"]]
    numeric = {f["name"] for f in schema["features"] if f["type"] == "numeric"}

    def value(name: str, text: str):
        if text == "":
            return None
        return float(text) if name in numeric else text

    records = [{n: value(n, r[n]) for n in names} for _, r in raw.iterrows()]
    return {CSV: raw[names].to_csv(index=False, header=False), JSON: json.dumps(records)}


def _serve_packaged(built: dict, requests: list[dict], tmp_path: Path) -> dict:
    """Extract serving1/model.tar.gz and answer ``requests`` from it in a fresh interpreter."""
    model_dir = tmp_path / "opt-ml-model"
    model_dir.mkdir()
    with tarfile.open(built["work"] / "serving1/model.tar.gz") as tar:
        # Plain members inside the archive's root (what filter="data" enforces on Python
        # 3.11.4+; the README's floor, 3.11.0, has no extraction filters).
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())
        assert not any(n.startswith("/") or ".." in Path(n).parts for n in tar.getnames())
        tar.extractall(model_dir)
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    proc = subprocess.run(
        [sys.executable, "-I", "-c", DRIVER, model_dir / "code", model_dir,
         tmp_path / "requests.json", tmp_path / "replies.json"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "replies.json").read_text())
    out["model_dir"] = model_dir
    return out


def _request(body: str, content_type: str, accept: str, as_bytes: bool = False) -> dict:
    return {"body": body, "content_type": content_type, "accept": accept, "as_bytes": as_bytes}


def _scores(body: str, accept: str) -> np.ndarray:
    """A response body back to float32 scores (multiclass CSV is one [p0, p1, ...] per row)."""
    doc = json.loads(body) if accept == JSON else json.loads(f"[{body}]")
    return np.asarray(doc, dtype=np.float64).astype(np.float32)


def _evaluate_predictions(built: dict, ids: pd.Series) -> np.ndarray:
    preds = pd.read_csv(built["work"] / "eval1/predictions.csv")
    assert list(preds.iloc[:, 0].astype(str)) == list(ids)  # same rows, same order
    columns = [c for c in preds.columns if c.startswith("score_")] or ["prediction"]
    values = preds[columns].to_numpy(dtype=np.float64).astype(np.float32)
    return values if built["problem_type"] == MULTICLASS else values[:, 0]


# --------------------------------------------------------------------------- the archive


def test_archive_layout_is_what_the_framework_container_runs(built):
    env = contract.SINGLE_CONTAINER_ENVIRONMENT
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"  # the code/ dir below
    program = env["SAGEMAKER_PROGRAM"]
    steplib = ["__init__", "artifacts", "contract", "errors", "payload", "rawio", "schema"]
    expected = sorted(
        [
            "xgboost-model",
            "transform.json",
            f"code/{program}",
            "code/inference.py",
            *(f"code/steplib/{m}.py" for m in [*steplib, "transform"]),
        ]
    )
    path = built["work"] / "serving1/model.tar.gz"
    with tarfile.open(path) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == expected  # sorted, only what the module imports
        assert all(m.isfile() and m.mode == 0o644 and m.mtime == 0 for m in members)
        assert all(m.uid == m.gid == 0 and m.uname == m.gname == "" for m in members)
        data = {m.name: tar.extractfile(m).read() for m in members}
    assert data["xgboost-model"] == artifacts.booster_bytes(built["work"] / "artifact")
    assert json.loads(data["transform.json"]) == artifacts.load_transform(
        built["prep"] / "transform"
    )
    for name in expected:
        if name.startswith("code/"):
            assert data[name] == (STEPS / name.removeprefix("code/")).read_bytes(), name
    header = path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0" and header[3] & 0x08 == 0  # gzip mtime 0, no file name


def test_archive_is_byte_identical_across_runs(built):
    first = (built["work"] / "serving1/model.tar.gz").read_bytes()
    assert first == (built["work"] / "serving2/model.tar.gz").read_bytes()
    assert [p.name for p in (built["work"] / "serving1").iterdir()] == ["model.tar.gz"]


# --------------------------------------------------------------------------- serving it


def test_packaged_module_answers_what_evaluate_and_the_pipeline_answer(built, tmp_path):
    raw, schema = _test_rows(built)
    bodies = _bodies(raw, schema)
    first = raw.iloc[:1]
    requests = [
        _request(bodies[CSV], CSV, CSV),
        _request(bodies[JSON], JSON, JSON),
        _request(bodies[JSON], JSON, CSV),
        _request(bodies[CSV], "text/csv; charset=utf-8", CSV, as_bytes=True),
        _request(_bodies(first, schema)[CSV], CSV, CSV),  # one row
    ]
    out = _serve_packaged(built, requests, tmp_path)
    # Every module came from the extracted archive, none from the repository.
    assert set(out["files"]) >= {"serve_single", "inference", "steplib.transform"}
    code_dir = str(out["model_dir"] / "code")
    assert all(f.startswith(code_dir) for f in out["files"].values() if f), out["files"]

    expected = _evaluate_predictions(built, raw[schema["recordIdColumn"]])
    # The two-container simulation: inference.py's container, then the booster on its CSV.
    pipeline = serve_local.LocalEndpoint(built["prep"] / "transform", built["work"] / "artifact")
    for (body, content_type, status), req in zip(out["replies"], requests, strict=True):
        assert status == 200, body
        assert content_type == req["accept"]
        matrix = pipeline.transform(req["body"], req["content_type"])
        assert matrix.status == 200
        pipeline_scores = pipeline.score(matrix.body)
        if req["accept"] == CSV:
            assert body == builtin_xgboost_csv(pipeline_scores)  # byte for byte
        else:
            assert body == json.dumps(pipeline_scores.tolist())
        rows = len(_scores(body, req["accept"]))
        assert np.array_equal(_scores(body, req["accept"]), expected[:rows])
    assert len(_scores(out["replies"][0][0], CSV)) == len(raw)
    if built["problem_type"] == MULTICLASS:
        assert out["replies"][4][0].startswith("[") and out["replies"][4][0].endswith("]")
    else:
        assert "," not in out["replies"][4][0]  # one row, one score


def test_malformed_payloads_answer_400_with_inference_py_body(built, tmp_path):
    raw, schema = _test_rows(built)
    names = [f["name"] for f in schema["features"]]
    numeric = next(f["name"] for f in schema["features"] if f["type"] == "numeric")
    bad_value = raw[names].iloc[:1].copy()
    bad_value[numeric] = "abc"
    cases = [
        ("1,2,3\n", CSV),  # wrong field count
        (bad_value.to_csv(index=False, header=False), CSV),  # a non-numeric value
        (json.dumps({"nope": 1}), JSON),  # unknown and missing features
        ("", CSV),  # empty body
        ("1", "application/octet-stream"),  # unsupported content type
    ]
    out = _serve_packaged(built, [_request(b, ct, CSV) for b, ct in cases], tmp_path)
    model = inference.model_fn(str(built["prep"] / "transform"))
    for (body, content_type, status), (request_body, request_type) in zip(
        out["replies"], cases, strict=True
    ):
        two_container = inference.handle(model, request_body, request_type)
        assert (status, content_type) == (400, JSON) == (two_container.status, JSON)
        assert body == two_container.body  # the same JSON body, byte for byte
        assert json.loads(body)["error"]
    assert f"expected {len(names)} features" in json.loads(out["replies"][0][0])["error"]
    assert f"feature '{numeric}'" in json.loads(out["replies"][1][0])["error"]


def test_an_unsupported_accept_answers_415(built, tmp_path):
    raw, schema = _test_rows(built)
    body = _bodies(raw.iloc[:2], schema)[CSV]
    out = _serve_packaged(built, [_request(body, CSV, "application/x-npy")], tmp_path)
    reply_body, content_type, status = out["replies"][0]
    assert (status, content_type) == (415, JSON)
    assert "application/x-npy" in json.loads(reply_body)["error"]


@pytest.mark.parametrize("built", [BINARY], indirect=True)
def test_a_failed_evaluate_writes_no_serving_archive(built, tmp_path):
    test = pd.read_csv(built["prep"] / "test/test.csv", dtype=str, keep_default_na=False)
    one_class = tmp_path / "test"
    one_class.mkdir()
    test[test["diagnosis"] == "benign"].to_csv(one_class / "benign-only.csv", index=False)
    work = built["work"]
    proc = run_evaluate(work, built["prep"], built["schema"], BINARY, one_class, "-failed")
    assert proc.returncode != 0 and "auc" in proc.stderr
    assert not (work / "serving-failed").exists() and not (work / "eval-failed").exists()
    assert not [p for p in work.iterdir() if "staging" in p.name]


# --------------------------------------------------------------------------- toolkit contract


def test_handler_signatures_fit_the_toolkit():
    """sagemaker-inference calls a handler with ``context`` appended exactly when it takes one
    more parameter than the toolkit's arguments (``Transformer._run_handler_function``)."""

    def arity(fn) -> int:
        return len(inspect.signature(fn).parameters)

    assert arity(serve_single.model_fn) == 1
    assert arity(serve_single.input_fn) == 2
    assert arity(serve_single.predict_fn) == 2
    assert arity(serve_single.output_fn) == 3  # (prediction, accept, context)
    assert not hasattr(serve_single, "transform_fn")  # the toolkit refuses it with input_fn


class _Context:
    """The model server's request context, as far as output_fn uses it."""

    def __init__(self) -> None:
        self.status: tuple[int, str] | None = None

    def set_response_status(self, code=200, phrase="", idx=0) -> None:
        self.status = (code, phrase)


def test_with_a_context_the_error_is_a_clean_400():
    context = _Context()
    reply = serve_single.output_fn(inference.BadRequest("row 1: bad"), CSV, context)
    assert context.status == (400, "Bad Request")
    assert reply[:2] == (json.dumps({"error": "row 1: bad"}).encode(), JSON)


def test_without_a_context_the_toolkit_error_carries_400(monkeypatch):
    class GenericInferenceToolkitError(Exception):
        def __init__(self, status_code, message=None, phrase=None):
            super().__init__(status_code, message, phrase)
            self.status_code, self.message, self.phrase = status_code, message, phrase

    errors = types.ModuleType("sagemaker_inference.errors")
    errors.GenericInferenceToolkitError = GenericInferenceToolkitError
    monkeypatch.setitem(sys.modules, "sagemaker_inference", types.ModuleType("sagemaker_inference"))
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", errors)
    with pytest.raises(GenericInferenceToolkitError) as raised:
        serve_single.output_fn(inference.BadRequest("row 1: bad"), CSV)
    assert raised.value.status_code == 400
    assert json.loads(raised.value.message) == {"error": "row 1: bad"}


def test_batch_transform_csv_is_one_row_a_line(monkeypatch):
    monkeypatch.setenv("SAGEMAKER_BATCH", "true")
    scores = np.array([0.25, 0.5], dtype=np.float32)
    assert serve_single.output_fn(scores, CSV).body == b"0.25\n0.5\n"
