"""Quality check: the model-quality metrics of a window's captured predictions, against labels.

Runs in the SageMaker scikit-learn processing image on a schedule (it replaces Model
Monitor's model-quality job). Joins the window's captured predictions (an endpoint's
data-capture records, or batch transform jobs' output files) with the ground-truth labels
uploaded for them, computes the problem type's metrics with the code Evaluate uses
(``steplib.metrics.point_metrics``, without the bootstrap) and writes
``quality_report.json``.

Inputs:

* the schema: ``schema.json`` in the baseline directory unless ``--schema`` is given;
  its classes give the label encoding (the second of two is the positive class);
* the predictions under ``--capture-dir``, by ``--capture-source``. Each is the
  positive-class probability (``binary:logistic``), the class probabilities
  (``multi:softprob``) or the predicted value (regression), as the built-in XGBoost
  container answers them:

  - ``endpoint``: captured records (``*.jsonl``, SageMaker real-time data capture's
    layout): ``captureData.endpointInput`` (the request, parsed as the endpoint parses it,
    to count its rows) and ``captureData.endpointOutput`` (the container's response,
    ``CSV``, ``JSON`` or ``BASE64`` encoded), one value per request row. Read are the
    container's CSV forms (``0.1,0.9``; one row a line under batch transform; multiclass
    ``[p0, p1, p2]`` per row, or the probabilities of one row as plain CSV) and JSON lists
    (``[0.1, 0.9]``, ``[[p0, p1, p2], ...]``);
  - ``batch``: the batch transform jobs' output files (``<input name>.out``), which batch
    data capture's manifests list and the window step resolves: every file, whatever its
    name, but hidden files and markers (a name starting with ``.`` or ``_``). A non-blank
    line is the prediction of one input record (``AssembleWith`` ``Line``) followed by the
    two columns ``GenerateInferenceId`` appends: CSV ``<prediction>,<inference id>,<inference
    time>`` (blanks around the commas allowed; the prediction as the container writes one
    row: ``0.93``, ``[p0, p1, p2]``, or ``p0,p1,p2``), or JSON ``{"output": <prediction>,
    "SageMakerInferenceId": "...", "SageMakerInferenceTime": "..."}`` (see
    :func:`steplib.payload.parse_batch_output_line`);
* ground truth (every file under ``--ground-truth-dir`` whose name does not start with
  ``.`` or ``_``, sorted by path; JSON Lines in Model Monitor's layout):
  ``{"groundTruthData": {"data": "<label>", "encoding": "CSV"}, "eventMetadata":
  {"eventId": "<join key>"}, "eventVersion": "0"}``. The encoding may also be ``JSON``
  (``data`` a JSON string or number) or ``BASE64`` (of the CSV text). A classification
  label is one of the schema's classes as written there, or the class's 0-based index
  (``"1"``, as Model Monitor users write it); a label that is both is read as the class
  (with classes ``["1", "2"]``, ``"1"`` is the class ``"1"``, not index 1). A regression
  label is the numeric target.

The join key (documented for whoever uploads ground truth):

* a batch output line's key is its inference ID, as is (the rest of this list is about
  real-time capture);
* a captured record's id is ``eventMetadata.inferenceId`` when the caller set one (an
  ``InferenceId`` on InvokeEndpoint), else ``eventMetadata.eventId``, as Model Monitor
  merges them;
* a request with one row is keyed by that id; a request with several rows (CSV lines, a
  JSON list) has one key per row, ``<id>:<row>`` with ``<row>`` its 0-based position in
  the request (a header line does not count);
* a ground-truth record's ``eventMetadata.eventId`` is its key, compared as is.

Duplicates: when a key occurs twice (a reused inference id; a corrected label), the last
one wins, files in path order and lines in file order (captured files are named by time,
so the latest prediction or label wins); the report counts the ones replaced.

The report (``quality_report.json``): ``model_name``, ``stage``, ``capture_source``,
``window_start`` and ``window_end`` (as ``--window-start``/``--window-end`` give them, else
null; the publish step stamps the metrics with ``window_end``), ``problem_type``,
``capture_record_count`` (capture records read; for ``batch``, output lines),
``prediction_count`` (keyed predictions), ``ground_truth_count`` (keyed labels),
``labeled_row_count`` (predictions with a label), ``unlabeled_prediction_count``,
``unmatched_label_count``, ``duplicate_prediction_count``, ``duplicate_label_count``,
``no_data``, ``quality`` (every
metric of the problem type in the contract, by name: its value, or null when it is
undefined on the window, such as AUC when the labelled rows hold one class, or R² of one
row) and ``metrics`` (finished CloudWatch ``MetricData`` entries built by
:mod:`steplib.monitoring`).

No labelled prediction (an empty window: no file, or only empty ones, such as the window
step's ``empty/empty.jsonl``; no labels yet; or no key in common) is not an error:
``no_data`` is true, every quality value null, and the metrics ``QualityNoData`` = 1 and
``LabeledRowsChecked`` = 0. An undefined metric is left out of the metrics and is not an
error either. A malformed capture, batch output or ground-truth line (not JSON, a field or
the inference ID missing, an unknown class, a response whose size does not fit the
request) is an error (exit 2) naming file and line, and writes no report.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from steplib import contract, metrics, monitoring, rawio
from steplib.contract import MULTICLASS, REGRESSION, Schema
from steplib.errors import DataError, run_main
from steplib.payload import (
    PayloadError,
    decoded_data,
    jsonl_records,
    parse_payload,
    read_batch_outputs,
)
from steplib.schema import check_problem_type, load_schema

LOG = logging.getLogger("pipeline_steps.quality_check")


@dataclass
class Keyed:
    """Values by join key, in the order first seen, and how many were replaced."""

    values: dict[str, object] = field(default_factory=dict)
    duplicates: int = 0
    records: int = 0

    def put(self, key: str, value: object) -> None:
        if key in self.values:
            self.duplicates += 1
            del self.values[key]  # the last one wins, and takes the last place
        self.values[key] = value


# --------------------------------------------------------------------------- reading


def _existing_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, f"{what} directory does not exist")
    return path


def capture_files(capture_dir: Path) -> list[Path]:
    """The data-capture files of the window: ``*.jsonl`` under the directory, by path."""
    capture_dir = _existing_dir(capture_dir, "capture")
    if capture_dir.is_file():
        return [capture_dir]
    return sorted(p for p in capture_dir.rglob("*.jsonl") if p.is_file())


def ground_truth_files(ground_truth_dir: Path) -> list[Path]:
    """Every ground-truth file under the directory, by path, but hidden files and markers
    (names starting with ``.`` or ``_``): labels in a file not named ``.jsonl`` are still
    read, not silently left out."""
    ground_truth_dir = _existing_dir(ground_truth_dir, "ground-truth")
    if ground_truth_dir.is_file():
        return [ground_truth_dir]
    return sorted(
        p
        for p in ground_truth_dir.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(ground_truth_dir).parts)
    )


def record_id(rec: dict, where: str) -> str:
    """The captured record's id: ``inferenceId`` when set, else ``eventId``."""
    meta = rec.get("eventMetadata")
    if isinstance(meta, dict):
        for name in ("inferenceId", "eventId"):
            value = meta.get(name)
            if isinstance(value, str) and value:
                return value
    raise DataError(where, None, "no eventMetadata.inferenceId or eventMetadata.eventId")


def row_keys(base: str, rows: int) -> list[str]:
    """Join keys of a request's rows: the id for one row, ``<id>:<row>`` for several."""
    return [base] if rows == 1 else [f"{base}:{i}" for i in range(rows)]


def _response_values(text: str, where: str, field: str = "endpointOutput.data") -> np.ndarray:
    """The numbers of a response body as an array (1-D, or 2-D for per-row lists); ``field``
    names the text in messages."""
    body = text.strip()
    if not body:
        raise DataError(where, None, f"{field} is empty")
    try:
        if "[" in body:
            try:
                doc = json.loads(body)
            except json.JSONDecodeError:  # CSV of lists: "[..],[..]" or one list a line
                lines = [line.strip().rstrip(",") for line in body.splitlines() if line.strip()]
                doc = json.loads("[" + ",".join(lines) + "]")
            values = np.asarray(doc, dtype=np.float64)
        else:
            cells = [c for line in body.splitlines() for c in line.split(",")]
            values = np.asarray([float(c) for c in cells if c.strip()], dtype=np.float64)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise DataError(where, None, f"{field} is not a list of numbers: {_clip(body)!r}") from None
    if values.ndim > 2 or values.size == 0:
        raise DataError(where, None, f"{field} has no per-row scores: {_clip(body)!r}")
    return values


def predictions(
    text: str,
    rows: int,
    problem_type: str,
    n_classes: int,
    where: str,
    field: str = "endpointOutput.data",
) -> np.ndarray:
    """One prediction per request row: a probability or value (shape ``(rows,)``), or
    class probabilities (shape ``(rows, n_classes)``). ``field`` names the text in messages
    (left out: ``endpointOutput.data``, the real-time capture's).

    Raises:
        DataError: the number of values does not fit the request's rows, a value is not
            finite, or a classification score is not a probability.
    """
    values = _response_values(text, where, field)
    if problem_type == MULTICLASS:
        if values.ndim == 1 and values.size == rows * n_classes:
            values = values.reshape(rows, n_classes)
        if values.shape != (rows, n_classes):
            raise DataError(
                where,
                None,
                f"the response holds {values.size} values for {rows} request row(s); a "
                f"multi:softprob model answers {n_classes} class probabilities per row",
            )
    else:
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.shape != (rows,):
            what = "probability" if problem_type != REGRESSION else "value"
            raise DataError(
                where,
                None,
                f"the response holds {values.size} values for {rows} request row(s); the "
                f"model answers one {what} per row",
            )
    if not np.isfinite(values).all():
        raise DataError(where, None, "the response holds a value that is not a finite number")
    if problem_type != REGRESSION and ((values < 0) | (values > 1)).any():
        objective = contract.problem(problem_type).objectives[0]
        raise DataError(
            where,
            None,
            f"the response holds a score outside [0, 1]; a {problem_type} model answers "
            f"probabilities (objective {objective})",
        )
    return values


def read_predictions(capture_dir: Path, schema: Schema, problem_type: str) -> Keyed:
    """Every captured row's prediction by join key (see the module docstring)."""
    out = Keyed()
    n_classes = len(schema.classes)
    for where, rec in jsonl_records(capture_files(capture_dir)):
        capture = rec.get("captureData")
        if not isinstance(capture, dict) or "endpointInput" not in capture:
            raise DataError(where, None, "malformed capture line: no captureData.endpointInput")
        if "endpointOutput" not in capture:
            raise DataError(
                where,
                None,
                "malformed capture line: no captureData.endpointOutput (data capture must "
                "record responses too: CaptureOptions Input and Output)",
            )
        base = record_id(rec, where)
        request, _ = decoded_data(capture["endpointInput"], "endpointInput", where)
        content_type = capture["endpointInput"].get("observedContentType", "")
        try:
            rows = len(parse_payload(request, content_type, schema))
        except PayloadError as err:
            raise DataError(where, None, f"malformed capture payload: {err}") from None
        response, _ = decoded_data(capture["endpointOutput"], "endpointOutput", where)
        values = predictions(response, rows, problem_type, n_classes, where)
        for key, value in zip(row_keys(base, rows), values, strict=True):
            out.put(key, value)
        out.records += 1
    return out


def read_batch_predictions(capture_dir: Path, schema: Schema, problem_type: str) -> Keyed:
    """Every batch transform output line's prediction by its inference ID (see the module
    docstring and :func:`steplib.payload.parse_batch_output_line`)."""
    out = Keyed()
    n_classes = len(schema.classes)
    for line in read_batch_outputs(capture_dir):
        values = predictions(
            line.prediction, 1, problem_type, n_classes, line.where, "the prediction"
        )
        out.put(line.inference_id, values[0])
        out.records += 1
    return out


def parse_label(data: str, encoding: str, schema: Schema, problem_type: str, where: str) -> float:
    """A label as the metrics take it: the class index, or the numeric target."""
    if encoding == "JSON":
        try:
            value = json.loads(data)
        except json.JSONDecodeError as err:
            raise DataError(where, None, f"groundTruthData.data is not JSON ({err.msg})") from None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise DataError(where, None, f"label {value!r} is not a string or a number")
        text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    else:
        try:
            cells = next(csv.reader(io.StringIO(data.strip())), [])
        except csv.Error as err:
            raise DataError(where, None, f"groundTruthData.data is not CSV ({err})") from None
        if len(cells) != 1:
            raise DataError(
                where, None, f"groundTruthData.data holds {len(cells)} fields; expected one label"
            )
        text = cells[0]
    text = text.strip()
    if problem_type == REGRESSION:
        try:
            value = float(text)
        except ValueError:
            raise DataError(where, None, f"label {text!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(where, None, f"label {text!r} is not a finite number")
        return value
    classes = list(schema.classes)
    if text in classes:
        return float(classes.index(text))
    try:
        index = float(text)
    except ValueError:
        index = -1.0
    if index.is_integer() and 0 <= index < len(classes):
        return index
    raise DataError(
        where,
        None,
        f"label {text!r} is not one of the classes {classes} nor a class index "
        f"0..{len(classes) - 1}",
    )


def read_ground_truth(ground_truth_dir: Path, schema: Schema, problem_type: str) -> Keyed:
    """Every ground-truth label by its ``eventMetadata.eventId``."""
    out = Keyed()
    for where, rec in jsonl_records(ground_truth_files(ground_truth_dir)):
        data, encoding = decoded_data(rec.get("groundTruthData"), "groundTruthData", where)
        meta = rec.get("eventMetadata")
        key = meta.get("eventId") if isinstance(meta, dict) else None
        if not isinstance(key, str) or not key:
            raise DataError(where, None, "no eventMetadata.eventId (the join key) text")
        label_encoding = "CSV" if encoding == "BASE64" else encoding
        out.put(key, parse_label(data, label_encoding, schema, problem_type, where))
        out.records += 1
    return out


# --------------------------------------------------------------------------- metrics


def window_quality(problem_type: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """The contract's metrics of ``problem_type`` on the labelled rows, as Evaluate computes
    them; a metric undefined on these rows (NaN) is None. No rows: every metric None."""
    names = list(contract.problem(problem_type).metrics)
    if len(y) == 0:
        return dict.fromkeys(names)
    with warnings.catch_warnings():  # undefined values become None, said in the report
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        values = metrics.point_metrics(problem_type, y, pred)
    return {k: float(v) if math.isfinite(v) else None for k, v in values.items()}


def quality_check(
    baseline_dir: Path,
    capture_dir: Path,
    ground_truth_dir: Path,
    schema_path: Path | None,
    output_dir: Path,
    problem_type: str,
    model_name: str,
    stage: str,
    capture_source: str,
    window_start: str | None = None,
    window_end: str | None = None,
) -> dict:
    """Run the step; returns the report written to ``quality_report.json``.

    ``schema_path``: None reads ``<baseline_dir>/schema.json``. ``capture_source`` says
    what ``capture_dir`` holds (see the module docstring) and is the metrics'
    ``CaptureSource`` dimension. ``window_start`` and ``window_end`` (ISO 8601) are written
    to the report as given; None writes null.
    """
    if capture_source not in monitoring.SOURCES:
        raise DataError(
            "--capture-source", None, f"{capture_source!r} is not one of {monitoring.SOURCES}"
        )
    schema_file = Path(baseline_dir) / "schema.json" if schema_path is None else Path(schema_path)
    schema = load_schema(schema_file)
    check_problem_type(schema, problem_type, str(schema_file))
    if capture_source == monitoring.BATCH_SOURCE:
        predicted = read_batch_predictions(capture_dir, schema, problem_type)
    else:
        predicted = read_predictions(capture_dir, schema, problem_type)
    labels = read_ground_truth(ground_truth_dir, schema, problem_type)
    matched = [k for k in predicted.values if k in labels.values]
    y = np.asarray([labels.values[k] for k in matched], dtype=np.float64)
    pred = np.asarray([predicted.values[k] for k in matched], dtype=np.float64)
    if problem_type == MULTICLASS:
        pred = pred.reshape(len(matched), len(schema.classes))
    report: dict = {
        "model_name": model_name,
        "stage": stage,
        "capture_source": capture_source,
        "window_start": window_start,
        "window_end": window_end,
        "problem_type": problem_type,
        "capture_record_count": predicted.records,
        "prediction_count": len(predicted.values),
        "ground_truth_count": len(labels.values),
        "labeled_row_count": len(matched),
        "unlabeled_prediction_count": len(predicted.values) - len(matched),
        "unmatched_label_count": len(labels.values) - len(matched),
        "duplicate_prediction_count": predicted.duplicates,
        "duplicate_label_count": labels.duplicates,
        "no_data": not matched,
        "quality": window_quality(problem_type, y, pred),
    }
    report["metrics"] = monitoring.quality_metrics(report, stage, model_name, capture_source)
    with rawio.atomic_output(output_dir) as staging:
        (staging / "quality_report.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    if report["no_data"]:
        LOG.info(
            "no labelled prediction: %d predictions, %d labels; no_data=true",
            report["prediction_count"],
            report["ground_truth_count"],
        )
    else:
        undefined = [k for k, v in report["quality"].items() if v is None]
        LOG.info(
            "%d labelled rows (%d unlabelled predictions, %d unmatched labels): %s%s",
            report["labeled_row_count"],
            report["unlabeled_prediction_count"],
            report["unmatched_label_count"],
            {k: round(v, 4) for k, v in report["quality"].items() if v is not None},
            f"; undefined on this window: {undefined}" if undefined else "",
        )
    return report


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    monitoring.add_run_arguments(p)
    p.add_argument("--ground-truth-dir", default="/opt/ml/processing/input/ground-truth")
    p.add_argument("--problem-type", required=True, choices=contract.PROBLEM_TYPES)
    args = p.parse_args(argv)
    quality_check(
        Path(args.baseline_dir),
        Path(args.capture_dir),
        Path(args.ground_truth_dir),
        Path(args.schema) if args.schema else None,
        Path(args.output_dir),
        args.problem_type,
        args.model_name,
        args.stage,
        args.capture_source,
        args.window_start,
        args.window_end,
    )


if __name__ == "__main__":
    sys.exit(run_main(main))
