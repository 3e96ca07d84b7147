"""Local stand-in for an endpoint serving a registered model (used by ``make local-run``).

A registered model version is a two-container inference pipeline: the scikit-learn
container runs ``inference.py`` on the fitted transform (raw rows in, model matrix out),
then the built-in XGBoost container scores the matrix. This script loads both model
artifacts as those containers would (``--transform-dir`` and ``--model-dir`` each hold
the ``model.tar.gz`` the model package names), sends raw rows through them, alternating
CSV and JSON request bodies, and writes what SageMaker data capture would record:

* ``capture.jsonl``: one data-capture record per request (SageMaker's layout);
* ``schema.json``: the schema the transform was fitted for (what a drift check reads).

With ``--shift-features N`` the first N numeric features are moved by one baseline
standard deviation (from ``--statistics``) before sending: a window that should drift.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from steplib import artifacts, rawio
from steplib.errors import DataError, run_main
from steplib.payload import capture_record
from steplib.schema import parse_schema_doc

SHIFT_STANDARD_DEVIATIONS = 1.0


def _csv_cell(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


class LocalEndpoint:
    """The two containers of a registered model version, loaded from their artifacts.

    Args:
        transform_dir: Holds the transform's ``model.tar.gz`` (or ``transform.json``).
        model_dir: Holds the XGBoost ``model.tar.gz`` (or ``xgboost-model``).
    """

    def __init__(self, transform_dir: Path, model_dir: Path) -> None:
        import inference

        self.model = inference.model_fn(str(transform_dir))
        self.booster = artifacts.load_booster(model_dir)

    def transform(self, body: str | bytes, content_type: str):
        """Container 1: raw rows in; an ``inference.LocalResponse`` (CSV matrix, or a 400)."""
        import inference

        return inference.handle(self.model, body, content_type)

    def score(self, matrix_csv: str) -> np.ndarray:
        """Container 2: the booster's scores of the header-less CSV matrix container 1 sent."""
        import xgboost as xgb

        matrix = np.loadtxt(matrix_csv.splitlines(), delimiter=",", ndmin=2)
        return self.booster.predict(xgb.DMatrix(matrix))


def serve(
    transform_dir: Path,
    model_dir: Path,
    input_path: Path,
    output_dir: Path,
    *,
    rows: int = 200,
    shift_features: int = 0,
    statistics: Path | None = None,
    seed: int = 0,
) -> dict:
    """Send up to ``rows`` raw rows (a seeded sample) through both containers; see above."""
    spec = artifacts.load_transform(transform_dir)
    schema = parse_schema_doc(spec["schema"], str(transform_dir))
    frame = rawio.read_raw(input_path, schema)
    if len(frame) > rows:
        frame = frame.sample(rows, random_state=seed).sort_index()
    shifted = []
    if shift_features:
        if statistics is None:
            raise DataError("--statistics", None, "--shift-features needs the baseline statistics")
        stats = json.loads(Path(statistics).read_text())
        for name in schema.numeric_features[:shift_features]:
            frame[name] = frame[name] + SHIFT_STANDARD_DEVIATIONS * stats["features"][name]["std"]
            shifted.append(name)
    endpoint = LocalEndpoint(transform_dir, model_dir)
    lines = []
    for i, row in enumerate(frame[schema.feature_names].itertuples(index=False)):
        values = list(row)
        if i % 2 == 0:
            body, content_type = ",".join(_csv_cell(v) for v in values) + "\n", "text/csv"
        else:
            body = json.dumps(
                {
                    n: (None if isinstance(v, float) and np.isnan(v) else v)
                    for n, v in zip(schema.feature_names, values, strict=True)
                }
            )
            content_type = "application/json"
        response = endpoint.transform(body, content_type)
        if response.status != 200:
            raise DataError(
                input_path,
                None,
                f"row {i + 1}: the transform answered {response.status}: {response.body}",
            )
        score = endpoint.score(response.body)
        answer = ",".join(f"{s:.9g}" for s in np.ravel(score))
        lines.append(
            json.dumps(
                capture_record(
                    body.strip(),
                    content_type,
                    answer,
                    f"local-{i:06d}",
                    f"2026-02-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
                )
            )
        )
    with rawio.atomic_output(output_dir) as staging:
        (staging / "capture.jsonl").write_text("\n".join(lines) + "\n")
        (staging / "schema.json").write_text(json.dumps(spec["schema"], indent=2))
    return {"requests": len(lines), "shifted_features": shifted}


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--transform-dir", required=True, help="holds the transform's model.tar.gz")
    p.add_argument("--model-dir", required=True, help="holds the XGBoost model.tar.gz")
    p.add_argument("--input", required=True, help="raw rows: a CSV/Parquet file or prefix")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--rows", type=int, default=200)
    p.add_argument("--shift-features", type=int, default=0)
    p.add_argument("--statistics", default=None, help="the baseline statistics.json")
    args = p.parse_args(argv)
    summary = serve(
        Path(args.transform_dir),
        Path(args.model_dir),
        Path(args.input),
        Path(args.output_dir),
        rows=args.rows,
        shift_features=args.shift_features,
        statistics=Path(args.statistics) if args.statistics else None,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(run_main(main))
