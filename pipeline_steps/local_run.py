"""Run the whole pipeline DAG on this machine, without Docker or AWS (``make local-run``).

For each model in ``cdk.json`` (``context.mlops.models``; the two built-in models when the
file or the key is absent) whose raw data is at ``data/raw/<name>/``:

1. preprocess            (pipeline_steps/preprocess.py, as the processing job runs it)
2. train                 (pipeline_steps/train_local.py, standing in for built-in XGBoost)
3. evaluate              (pipeline_steps/evaluate.py)
4. quality gate          (the condition step: qualityGate.metric against its threshold)
5. register              (a CreateModelPackage request body as JSON in a local registry folder)
6. drift check, held-out (the test rows sent through the serving handlers and captured in
                          SageMaker's data-capture layout: no drift expected)
7. drift check, shifted  (the same rows with three numeric features shifted by one standard
                          deviation: drift expected)

Each step runs as a subprocess with the container path contract remapped under
``<work-dir>/<model>/`` (``.../opt/ml/processing/input/raw``, ``.../opt/ml/model``, ...).
Exit code 0 when every gate passed and both drift checks gave the expected answer.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from steplib import artifacts, config, metrics, rawio  # noqa: E402
from steplib.errors import DataError, run_main  # noqa: E402
from steplib.payload import capture_record  # noqa: E402
from steplib.schema import load_schema  # noqa: E402

CONTAINERS = json.loads(Path(HERE, "containers.json").read_text())["images"]
SHIFTED_FEATURES = 3
SHIFT_STANDARD_DEVIATIONS = 1.0


class Progress:
    """Numbered progress lines: ``[model] 3/7 evaluate ... done (1.2 s)``."""

    def __init__(self, model: str, total: int = 7) -> None:
        self.model, self.total, self.n = model, total, 0

    def step(self, name: str):
        self.n += 1
        print(f"[{self.model}] {self.n}/{self.total} {name} ...", end="", flush=True)
        return time.perf_counter()

    def done(self, t0: float, note: str = "") -> None:
        print(f" done ({time.perf_counter() - t0:.1f} s){' ' + note if note else ''}", flush=True)


def run_step(script: str, args: list[str], log: Path) -> None:
    """Run one step script as its container would; on failure show its error and stop."""
    cmd = [sys.executable, os.path.join(HERE, script), *args]
    with open(log, "w") as fh:
        proc = subprocess.run(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    if proc.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        print(" FAILED", flush=True)
        raise DataError(log, None, f"{script} exited {proc.returncode}: " + " | ".join(tail))


def make_capture(
    test_csv: Path,
    schema_path: Path,
    transform_dir: Path,
    model_dir: Path,
    out_dir: Path,
    shift: bool,
    statistics: Path,
) -> dict:
    """Send the raw test rows through the serving handlers and the booster; write capture JSONL.

    Requests alternate between CSV and JSON bodies. With ``shift``, the first numeric
    features are moved by one baseline standard deviation before sending.
    """
    import inference
    import xgboost as xgb

    schema = load_schema(schema_path)
    frame = rawio.read_raw(test_csv, schema)
    shifted = []
    if shift:
        stats = json.loads(statistics.read_text())
        for name in schema.numeric_features[:SHIFTED_FEATURES]:
            frame[name] = frame[name] + SHIFT_STANDARD_DEVIATIONS * stats["features"][name]["std"]
            shifted.append(name)
    model = inference.model_fn(str(transform_dir))
    booster = artifacts.load_booster(model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, row in enumerate(frame[schema.feature_names].itertuples(index=False)):
        values = list(row)
        if i % 2 == 0:
            body = (
                ",".join(
                    ""
                    if v is None or (isinstance(v, float) and np.isnan(v))
                    else repr(v)
                    if isinstance(v, float)
                    else str(v)
                    for v in values
                )
                + "\n"
            )
            content_type = "text/csv"
        else:
            body = json.dumps(
                {
                    n: (None if isinstance(v, float) and np.isnan(v) else v)
                    for n, v in zip(schema.feature_names, values, strict=False)
                }
            )
            content_type = "application/json"
        resp = inference.handle(model, body, content_type)
        if resp.status != 200:
            raise DataError(
                test_csv,
                None,
                f"row {i + 1}: the serving transform answered {resp.status}: {resp.body}",
            )
        matrix = np.loadtxt(resp.body.splitlines(), delimiter=",", ndmin=2)
        score = booster.predict(xgb.DMatrix(matrix))
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
    (out_dir / "capture.jsonl").write_text("\n".join(lines) + "\n")
    return {"requests": len(lines), "shifted_features": shifted}


def registry_record(model: dict, paths: dict, report: dict, gate: dict) -> dict:
    """The CreateModelPackage request body the pipeline's register step sends (local URIs)."""
    sk, xg = CONTAINERS["sklearn"], CONTAINERS["xgboost"]
    task = "REGRESSION" if model["problemType"] == "regression" else "CLASSIFICATION"
    return {
        "ModelPackageGroupName": model["name"],
        "ModelPackageDescription": f"{model['name']}: {gate['metric']} {gate['value']:.4f} {gate['comparison']} {gate['threshold']}",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": f"{sk['repository']}:{sk['tag']}",
                    "ModelDataUrl": paths["transform"].as_uri(),
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
                        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                    },
                },
                {
                    "Image": f"{xg['repository']}:{xg['tag']}",
                    "ModelDataUrl": paths["model"].as_uri(),
                },
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["text/csv"],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"],
            "SupportedTransformInstanceTypes": ["ml.m5.large"],
        },
        "ModelApprovalStatus": "PendingManualApproval",
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": paths["evaluation"].as_uri(),
                }
            }
        },
        "Domain": "MACHINE_LEARNING",
        "Task": task,
        "CustomerMetadataProperties": {
            "problemType": model["problemType"],
            "gateMetric": gate["metric"],
            "gateValue": f"{gate['value']:.6g}",
            "gateThreshold": str(gate["threshold"]),
        },
    }


def raw_data_dir(model: dict) -> Path:
    """Local raw data of a model: ``data/raw/<dataPrefix or name>/``."""
    return config.REPO_ROOT / "data" / "raw" / (model.get("dataPrefix") or model["name"]).strip("/")


def run_model(model: dict, work: Path, registry: Path) -> dict:
    """All seven steps for one model; returns its row of the summary table."""
    name = model["name"]
    repo = config.REPO_ROOT
    raw_src = raw_data_dir(model)
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    logs = root / "logs"
    logs.mkdir(parents=True)
    prog = Progress(name)
    pt = model["problemType"]

    # Processing-job layout for preprocess.
    proc = root / "preprocess" / "opt/ml/processing"
    shutil.copytree(raw_src, proc / "input/raw")
    (proc / "input/schema").mkdir(parents=True)
    shutil.copy(repo / model["schemaFile"], proc / "input/schema/schema.json")
    schema_path = proc / "input/schema/schema.json"
    out = proc / "output"
    t = prog.step("preprocess")
    run_step(
        "preprocess.py",
        [
            "--input-dir",
            str(proc / "input/raw"),
            "--schema",
            str(schema_path),
            "--problem-type",
            pt,
            "--output-dir",
            str(out),
        ],
        logs / "preprocess.log",
    )
    summary = json.loads((out / "transform/preprocess_summary.json").read_text())
    prog.done(
        t,
        f"train/validation/test rows {summary['train_rows']}/{summary['validation_rows']}/{summary['test_rows']}",
    )

    # Training-job layout.
    tr = root / "train" / "opt/ml"
    for ch in ("train", "validation"):
        shutil.copytree(out / ch, tr / "input/data" / ch)
    (tr / "input/config").mkdir(parents=True)
    (tr / "input/config/hyperparameters.json").write_text(
        json.dumps({k: str(v) for k, v in model["hyperparameters"].items()})
    )
    t = prog.step("train (local xgboost, built-in layout)")
    run_step(
        "train_local.py",
        [
            "--train-dir",
            str(tr / "input/data/train"),
            "--validation-dir",
            str(tr / "input/data/validation"),
            "--model-dir",
            str(tr / "model"),
            "--hyperparameters-file",
            str(tr / "input/config/hyperparameters.json"),
            "--tarball-dir",
            str(tr / "output"),
        ],
        logs / "train.log",
    )
    prog.done(t)

    ev = root / "evaluate" / "opt/ml/processing"
    shutil.copytree(tr / "output", ev / "model")
    shutil.copytree(out / "test", ev / "test")
    shutil.copytree(out / "transform", ev / "transform")
    t = prog.step("evaluate")
    run_step(
        "evaluate.py",
        [
            "--model-dir",
            str(ev / "model"),
            "--test-dir",
            str(ev / "test"),
            "--transform-dir",
            str(ev / "transform"),
            "--schema",
            str(schema_path),
            "--problem-type",
            pt,
            "--output-dir",
            str(ev / "evaluation"),
        ],
        logs / "evaluate.log",
    )
    report = json.loads((ev / "evaluation/evaluation.json").read_text())
    prog.done(t)

    t = prog.step("quality gate")
    gate = metrics.gate_decision(
        report, pt, model["qualityGate"]["metric"], float(model["qualityGate"]["threshold"])
    )
    prog.done(
        t,
        f"{gate['metric']} {gate['value']:.4f} {gate['comparison']} {gate['threshold']}: {'PASS' if gate['passed'] else 'FAIL'}",
    )

    t = prog.step("register")
    registered = None
    if gate["passed"]:
        group = registry / name
        group.mkdir(parents=True, exist_ok=True)
        version = len(list(group.glob("*.json"))) + 1
        record = registry_record(
            model,
            {
                "transform": ev / "transform/model.tar.gz",
                "model": ev / "model/model.tar.gz",
                "evaluation": ev / "evaluation/evaluation.json",
            },
            report,
            gate,
        )
        registered = group / f"{version:04d}.json"
        registered.write_text(json.dumps(record, indent=2))
        prog.done(t, f"{registered}")
    else:
        prog.done(t, "skipped: gate failed")

    drift_results = {}
    for label, shift in (("held-out", False), ("shifted", True)):
        t = prog.step(f"drift check, {label}")
        cap = root / f"drift-{label}" / "opt/ml/processing"
        info = make_capture(
            ev / "test/test.csv",
            schema_path,
            ev / "transform",
            ev / "model",
            cap / "input/capture",
            shift,
            out / "baseline/statistics.json",
        )
        shutil.copytree(out / "baseline", cap / "baseline")
        th = config.drift_thresholds(model)
        run_step(
            "drift_check.py",
            [
                "--baseline-dir",
                str(cap / "baseline"),
                "--capture-dir",
                str(cap / "input/capture"),
                "--schema",
                str(schema_path),
                "--output-dir",
                str(cap / "output"),
                "--psi-threshold",
                str(th.psi),
                "--ks-p-value-threshold",
                str(th.p_value),
                "--missing-rate-increase",
                str(th.missing_rate_increase),
                "--model-name",
                name,
            ],
            logs / f"drift-{label}.log",
        )
        rep = json.loads((cap / "output/drift_report.json").read_text())
        drift_results[label] = {
            "detected": rep["drift_detected"],
            "features": rep["drifted_features"],
            "expected": shift,
            "shifted": info["shifted_features"],
            "report": cap / "output/drift_report.json",
        }
        prog.done(
            t,
            f"{info['requests']} captured requests; drift_detected={rep['drift_detected']} {rep['drifted_features']}",
        )

    section = report[metrics.METRICS_KEY[pt]]
    shown = ("auc", "accuracy", "f1") if pt != "regression" else ("r2", "rmse", "mae")
    return {
        "model": name,
        "problem": pt,
        "metrics": ", ".join(f"{m} {section[m]['value']:.4f}" for m in shown if m in section),
        "gate": gate,
        "registered": registered,
        "drift": drift_results,
        "artifacts": root,
    }


def print_summary(rows: list[dict], work: Path, source: str) -> bool:
    """The final table; returns True when every gate passed and drift behaved as expected."""
    ok = True
    print("\n" + "=" * 100)
    print(f"LOCAL RUN SUMMARY   models from {source}")
    print("=" * 100)
    header = f"{'model':<15} {'problem':<22} {'test metrics':<38} {'gate':<28}"
    print(header)
    print("-" * len(header))
    for r in rows:
        g = r["gate"]
        gate = (
            f"{g['metric']} {g['comparison']} {g['threshold']}: {'PASS' if g['passed'] else 'FAIL'}"
        )
        print(f"{r['model']:<15} {r['problem']:<22} {r['metrics']:<38} {gate:<28}")
        ok &= g["passed"]
    print()
    header = f"{'model':<15} {'drift: held-out (expect none)':<36} {'drift: shifted copy (expect drift)':<48}"
    print(header)
    print("-" * len(header))
    for r in rows:
        cells = []
        for label in ("held-out", "shifted"):
            d = r["drift"][label]
            as_expected = d["detected"] == d["expected"]
            ok &= as_expected
            feats = (
                f" in {len(d['features'])}: {', '.join(d['features'][:3])}" if d["features"] else ""
            )
            cells.append(
                f"{'DRIFT' if d['detected'] else 'no drift'}{feats} [{'ok' if as_expected else 'UNEXPECTED'}]"
            )
        print(f"{r['model']:<15} {cells[0]:<36} {cells[1]:<48}")
    print()
    for r in rows:
        print(f"{r['model']}: artifacts {r['artifacts']}")
        print(
            f"{'':<{len(r['model'])}}  registry  {r['registered'] or '(not registered: gate failed)'}"
        )
        print(f"{'':<{len(r['model'])}}  drift     {r['drift']['shifted']['report']}")
    print(f"\nRESULT: {'OK' if ok else 'NOT OK'} (work dir {work})")
    return ok


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work-dir", default=str(config.REPO_ROOT / "build" / "local-run"))
    p.add_argument("--cdk-json", default=str(config.REPO_ROOT / "cdk.json"))
    p.add_argument("--model", action="append", help="run only this model (repeatable)")
    args = p.parse_args(argv)
    # Step output goes to each step's log file; keep in-process library logs off the progress lines.
    logging.getLogger().setLevel(logging.WARNING)
    models, source = config.load_models(Path(args.cdk_json))
    work = Path(args.work_dir).resolve()
    registry = work / "registry"
    rows = []
    print(f"models from {source}; work dir {work}", flush=True)
    for model in models:
        if args.model and model["name"] not in args.model:
            continue
        if not raw_data_dir(model).is_dir():
            print(
                f"[{model['name']}] skipped: no local raw data at {raw_data_dir(model)}", flush=True
            )
            continue
        wanted = (model.get("algorithm") or {}).get("version")
        if wanted and wanted != CONTAINERS["xgboost"]["version"]:
            print(
                f"[{model['name']}] note: config asks for built-in XGBoost {wanted}; the local run and tests pin "
                f"{CONTAINERS['xgboost']['version']} (pipeline_steps/containers.json)",
                flush=True,
            )
        rows.append(run_model(model, work, registry))
    if not rows:
        raise DataError(
            source, None, "no model with local raw data under data/raw/<dataPrefix or name>/ to run"
        )
    (work / "summary.json").write_text(json.dumps(rows, indent=2, default=str))
    if not print_summary(rows, work, source):
        sys.exit(1)


if __name__ == "__main__":
    sys.exit(run_main(main))
