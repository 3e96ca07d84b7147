"""Endpoint smoke test: send a few raw rows to a deployed endpoint and check its answer.

Usable after any deploy (the release pipeline runs it after each stage). The endpoint serves
a registered model version: the scikit-learn container runs ``inference.py`` on the raw rows
(CSV or JSON, the schema's features without the target) and the built-in XGBoost container
scores them. This script reads the first ``--rows`` rows of ``--data`` as Preprocess reads raw
data, sends them in one InvokeEndpoint call and checks the answer for the problem type:

* one prediction per row sent;
* binary classification: a positive-class probability in [0, 1] per row;
* multiclass classification: a vector of one probability in [0, 1] per schema class,
  summing to 1 (within 1e-3), per row;
* regression: a finite number per row.

It prints a short report (rows sent, latency, a summary of the predictions) and exits 0 on
pass. Otherwise it exits 2 with one line, ``ERROR: endpoint <name>: <reason>``: the endpoint
is missing or not InService, a container answered an error (its status code and message),
the answer has the wrong count or values out of range or not numbers; or, naming the file
and column, the schema or data is bad.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pandas as pd
from steplib import rawio
from steplib.contract import MULTICLASS, NUMERIC, PROBLEM_TYPES, REGRESSION, Schema
from steplib.errors import DataError, run_main
from steplib.schema import check_problem_type, load_schema

CSV = "text/csv"
JSON = "application/json"
#: The request formats inference.py accepts that this script writes.
CONTENT_TYPES = (CSV, JSON)
#: Tolerance of a multiclass probability vector's sum.
PROBABILITY_SUM_TOLERANCE = 1e-3
#: Problems quoted in the one-line reason; the rest are counted.
PROBLEMS_SHOWN = 3
#: SageMaker's own limit on how long a real-time endpoint may take to answer.
DEFAULT_TIMEOUT_SECONDS = 60

# The answer is the built-in XGBoost container's (the pipeline's last container), which for a
# real-time request answers text/csv as ``",".join(map(str, preds.tolist()))``
# (aws/sagemaker-xgboost-container, algorithm_mode/serve.py ``invocations``; batch transform
# joins rows with newlines instead). binary:logistic and regression give one number per row
# (``0.98,0.01``); multi:softprob gives one Python list per row (``[0.1, 0.2, 0.7],[...]``).
_VECTOR = re.compile(r"\[([^\[\]]*)\]")
_SEPARATORS = re.compile(r"[,\s]+")


class SmokeTestFailed(DataError):
    """The endpoint did not pass: the message is the one-line reason."""

    def __init__(self, endpoint_name: str, reason: str) -> None:
        super().__init__(f"endpoint {endpoint_name}", None, reason)


class ResponseShapeError(ValueError):
    """An answer that is not one number (or one probability vector) per row."""


# --------------------------------------------------------------------------- request


def first_rows(data: Path, schema: Schema, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of the raw data at ``data`` (file order), features only.

    Read as Preprocess reads raw data (``rawio``), except that the target is neither required
    nor sent.

    Raises:
        DataError: naming file, line and column (see :func:`rawio.read_table`).
    """
    frame = rawio.read_raw(data, schema, include_target=False)
    return frame[schema.feature_names].head(rows).reset_index(drop=True)


def request_body(frame: pd.DataFrame, schema: Schema, content_type: str) -> str:
    """The rows as a request body inference.py parses: header-less CSV in schema order, or a
    JSON list of objects keyed by feature name. Missing values are empty cells or null."""
    records = [
        [
            _value(v, feature.type == NUMERIC)
            for v, feature in zip(row, schema.features, strict=True)
        ]
        for row in frame[schema.feature_names].itertuples(index=False)
    ]
    if content_type == JSON:
        return json.dumps([dict(zip(schema.feature_names, r, strict=True)) for r in records])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for record in records:
        writer.writerow(
            ["" if v is None else (repr(v) if isinstance(v, float) else v) for v in record]
        )
    return out.getvalue()


def _value(value: object, numeric: bool) -> float | str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value) if numeric else str(value)


# --------------------------------------------------------------------------- answer


def split_predictions(body: str, problem_type: str) -> list[list[str]]:
    """The answer's values as text, one list per row (one value a row unless multiclass).

    Raises:
        ResponseShapeError: multiclass without ``[...]`` vectors, vectors for another problem
            type, or text between the vectors.
    """
    text = body.strip()
    if problem_type != MULTICLASS:
        if "[" in text:
            raise ResponseShapeError(
                "expected one number per row, got vectors (a multi:softprob model?)"
            )
        return [[token] for token in _SEPARATORS.split(text)] if text else []
    rows, end = [], 0
    for match in _VECTOR.finditer(text):
        between = text[end : match.start()]
        if between.strip(", \t\r\n"):
            raise ResponseShapeError(f"unexpected text {between.strip()[:40]!r} between vectors")
        rows.append([t.strip() for t in match.group(1).split(",")])
        end = match.end()
    rest = text[end:].strip(", \t\r\n")
    if rest:
        what = "scalars, not probability vectors" if not rows else f"trailing text {rest[:40]!r}"
        raise ResponseShapeError(
            f"expected one [p1, ..., pk] probability vector per row, got {what}"
            + (" (a multi:softmax model?)" if not rows else "")
        )
    return rows


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def check_predictions(
    problem_type: str, classes: Sequence[str], rows_sent: int, body: str
) -> list[str]:
    """Every problem of an endpoint's answer to ``rows_sent`` rows; empty when it passes.

    Args:
        problem_type: the model's problem type.
        classes: the schema's class labels (classification); their count is the length
            of a multiclass probability vector.
        rows_sent: rows in the request.
        body: the response body, decoded.
    """
    try:
        rows = split_predictions(body, problem_type)
    except ResponseShapeError as err:
        return [str(err)]
    problems = []
    if len(rows) != rows_sent:
        problems.append(f"{len(rows)} predictions for {rows_sent} rows sent")
    for i, tokens in enumerate(rows, start=1):
        values = [_number(t) for t in tokens]
        bad = [t for t, v in zip(tokens, values, strict=True) if v is None]
        if bad:
            problems.append(f"row {i}: {bad[0][:40]!r} is not a number")
            continue
        if problem_type == REGRESSION:
            if not math.isfinite(values[0]):
                problems.append(f"row {i}: {tokens[0]} is not a finite number")
            continue
        if problem_type == MULTICLASS and len(values) != len(classes):
            problems.append(f"row {i}: {len(values)} probabilities for {len(classes)} classes")
            continue
        outside = [t for t, v in zip(tokens, values, strict=True) if not 0.0 <= v <= 1.0]
        if outside:
            problems.append(f"row {i}: {outside[0]} is not a probability in [0, 1]")
        elif problem_type == MULTICLASS and abs(sum(values) - 1.0) > PROBABILITY_SUM_TOLERANCE:
            problems.append(f"row {i}: probabilities sum to {sum(values):.6g}, not 1")
    return problems


def summarize_predictions(problem_type: str, classes: Sequence[str], body: str) -> str:
    """One line about an answer that passed :func:`check_predictions`."""
    rows = [[float(t) for t in tokens] for tokens in split_predictions(body, problem_type)]
    if problem_type == MULTICLASS:
        picked = Counter(classes[max(range(len(r)), key=r.__getitem__)] for r in rows)
        top = [max(r) for r in rows]
        return (
            f"most likely class: {_counts(picked, classes)}; "
            f"top probability min {min(top):.3g}, max {max(top):.3g}"
        )
    values = [r[0] for r in rows]
    spread = f"min {min(values):.4g}, mean {sum(values) / len(values):.4g}, max {max(values):.4g}"
    if problem_type == REGRESSION:
        return f"predicted values: {spread}"
    negative, positive = classes if len(classes) == 2 else ("0", "1")
    picked = Counter(positive if v >= 0.5 else negative for v in values)
    return f"probability of {positive!r}: {spread}; at 0.5: {_counts(picked, (negative, positive))}"


def _counts(counter: Counter, labels: Sequence[str]) -> str:
    return ", ".join(f"{label} {counter[label]}" for label in labels if counter[label])


# --------------------------------------------------------------------------- invoking


@dataclass(frozen=True)
class SmokeTestResult:
    """What a passing smoke test saw."""

    endpoint_name: str
    rows_sent: int
    content_type: str
    latency_ms: float
    summary: str

    def report(self) -> str:
        return "\n".join(
            [
                f"smoke test PASSED: endpoint {self.endpoint_name}",
                f"  rows sent:   {self.rows_sent} ({self.content_type})",
                f"  latency:     {self.latency_ms:.0f} ms",
                f"  predictions: {self.summary}",
            ]
        )


def runtime_client(region: str | None, timeout_seconds: float):
    """A ``sagemaker-runtime`` client that makes one attempt and waits ``timeout_seconds``.

    No retries, so that the timeout is the whole wait and a failure is the first one seen.
    With ``region`` None, the usual AWS configuration chooses the region.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    return boto3.client("sagemaker-runtime", region_name=region, config=config)


def invoke(client, endpoint_name: str, body: str, content_type: str) -> tuple[str, float]:
    """One InvokeEndpoint call; the decoded answer and the latency in milliseconds.

    Raises:
        SmokeTestFailed: endpoint missing or not InService, a container's error (with the
            status it answered and its message), any other AWS error, a timeout.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    started = time.perf_counter()
    try:
        response = client.invoke_endpoint(
            EndpointName=endpoint_name, Body=body.encode("utf-8"), ContentType=content_type,
            Accept=CSV,
        )  # fmt: skip
        answer = response["Body"].read()
    except ClientError as err:
        raise SmokeTestFailed(endpoint_name, client_error_reason(err.response)) from None
    except BotoCoreError as err:
        raise SmokeTestFailed(endpoint_name, f"no answer: {err}") from None
    latency_ms = (time.perf_counter() - started) * 1000
    try:
        return answer.decode("utf-8"), latency_ms
    except UnicodeDecodeError as err:
        raise SmokeTestFailed(
            endpoint_name, f"the answer is not UTF-8 text (byte {err.start})"
        ) from None


def client_error_reason(response: dict) -> str:
    """One line for an InvokeEndpoint error (``ClientError.response``)."""
    error = response.get("Error", {})
    code, message = error.get("Code", "error"), error.get("Message", "").strip()
    if code == "ValidationError":  # what InvokeEndpoint answers for a missing endpoint
        if "not found" in message.lower():
            return f"endpoint not found (ValidationError: {message})"
        return f"request rejected (ValidationError: {message}); is the endpoint InService?"
    if code == "ModelError":
        status = response.get("OriginalStatusCode", "?")
        original = str(response.get("OriginalMessage", message)).strip()
        original = _container_message(original)
        logs = f" (logs: {response['LogStreamArn']})" if response.get("LogStreamArn") else ""
        return (
            f"ModelError: a container answered {status}: {' '.join(original.split())[:500]}{logs}"
        )
    return f"{code}: {message}"


def _container_message(text: str) -> str:
    """The ``error`` of inference.py's ``{"error": "..."}`` answer to a bad payload, else
    the text as it came."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    return str(doc["error"]) if isinstance(doc, dict) and "error" in doc else text


def smoke_test(
    endpoint_name: str,
    schema_path: Path,
    problem_type: str,
    data: Path,
    *,
    rows: int = 5,
    content_type: str = CSV,
    client=None,
    region: str | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> SmokeTestResult:
    """Run the smoke test; see the module docstring.

    Args:
        client: a ``sagemaker-runtime`` client (or anything with its ``invoke_endpoint``);
            when None, one is made for ``region`` with ``timeout_seconds``.

    Raises:
        SmokeTestFailed: the endpoint did not pass.
        DataError: bad schema, problem type or data.
    """
    schema = load_schema(schema_path)
    check_problem_type(schema, problem_type, str(schema_path))
    if content_type not in CONTENT_TYPES:
        raise DataError("--content-type", None, f"{content_type!r} is not one of {CONTENT_TYPES}")
    frame = first_rows(data, schema, rows)
    body = request_body(frame, schema, content_type)
    if client is None:
        from botocore.exceptions import BotoCoreError

        try:
            client = runtime_client(region, timeout_seconds)
        except BotoCoreError as error:
            raise SmokeTestFailed(endpoint_name, f"{error}. Fix: pass --region") from None
    answer, latency_ms = invoke(client, endpoint_name, body, content_type)
    problems = check_predictions(problem_type, schema.classes, len(frame), answer)
    if problems:
        more = len(problems) - PROBLEMS_SHOWN
        reason = "; ".join(problems[:PROBLEMS_SHOWN]) + (f" (and {more} more)" if more > 0 else "")
        raise SmokeTestFailed(endpoint_name, f"bad answer: {reason}")
    return SmokeTestResult(
        endpoint_name,
        len(frame),
        content_type,
        latency_ms,
        summarize_predictions(problem_type, schema.classes, answer),
    )


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--endpoint-name", required=True)
    p.add_argument("--schema", required=True, help="the model's schema file, or a dir of one")
    p.add_argument("--problem-type", required=True, choices=PROBLEM_TYPES)
    p.add_argument("--data", required=True, help="raw data: a CSV/Parquet file or directory")
    p.add_argument("--rows", type=_positive(int), default=5, help="the first N rows are sent")
    p.add_argument("--region", default=None, help="default: the AWS configuration's")
    p.add_argument("--content-type", choices=CONTENT_TYPES, default=CSV)
    p.add_argument("--timeout-seconds", type=_positive(float), default=DEFAULT_TIMEOUT_SECONDS)
    args = p.parse_args(argv)
    result = smoke_test(
        args.endpoint_name,
        Path(args.schema),
        args.problem_type,
        Path(args.data),
        rows=args.rows,
        content_type=args.content_type,
        region=args.region,
        timeout_seconds=args.timeout_seconds,
    )
    print(result.report())


if __name__ == "__main__":
    sys.exit(run_main(main))
