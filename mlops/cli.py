"""``mlops``: the platform's command line (``mlops --help``; also ``make mlops ARGS=...``).

Verbs:
  add-model NAME --data PATH --target COLUMN   infer a schema and a config entry from data,
                                               check them end to end, then write them
  check [--model NAME]                         config, schema and Preprocess's data checks
                                               on the local data, without training
  lock-feature-groups [--stage NAME]           record the feature groups as deployed
                                               (feature-groups.lock.json)

Both run the step scripts' own code on the data (``pipeline_steps/``, in the steps venv, as
local-run does), so what passes here passes Preprocess. Exit codes: 0 done, 2 a mistake in
the command, the config or the data (one message each, nothing written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:  # the console script runs from anywhere
    sys.path.insert(0, str(PROJECT_ROOT))

from mlops import add_model as rules  # noqa: E402
from mlops import serving_record  # noqa: E402
from mlops.add_model import AddModelError  # noqa: E402
from mlops.local_run import DEFAULT_STEPS_PYTHON, LOCAL_RAW_DATA, STEPS_DIR  # noqa: E402

#: Where local-run (and ``check``) read a model's data, relative to the project root.
LOCAL_RAW = LOCAL_RAW_DATA.relative_to(PROJECT_ROOT)
EXIT_USAGE = 2


class StepFailed(Exception):
    """A step script refused the data (its one-line message) or crashed."""


def run_step(steps_python: Path, script: str, *args: str) -> dict:
    """Runs ``pipeline_steps/<script>`` and returns the JSON it printed."""
    done = subprocess.run(
        [str(steps_python), str(STEPS_DIR / script), *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR: ")]
        if done.returncode == 2 and errors:
            raise StepFailed(errors[-1].removeprefix("ERROR: "))
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise StepFailed(f"{script} crashed (exit {done.returncode}): {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- cdk.json


def read_cdk_json(path: Path) -> tuple[str, dict]:
    try:
        text = path.read_text(encoding="utf-8")
        doc = json.loads(text)
    except FileNotFoundError:
        raise AddModelError(
            f"{path}: no such file. Fix: run from the project (or restore it)"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AddModelError(f"{path}: not valid JSON ({error}). Fix: repair it") from None
    if not isinstance(doc.get("context", {}).get("mlops"), dict):
        raise AddModelError(f"{path}: no context.mlops object. Fix: restore it from the repository")
    return text, doc


def _entry_text(entry: dict, indent: str) -> str:
    """One ``models[]`` entry in cdk.json's layout: a key per line, nested values inline."""
    inner = indent + "  "
    lines = [f"{inner}{json.dumps(k)}: {json.dumps(v)}" for k, v in entry.items()]
    return indent + "{\n" + ",\n".join(lines) + "\n" + indent + "}"


def with_model(text: str, entry: dict) -> str:
    """``cdk.json``'s text with ``entry`` added to (or replacing its namesake in) ``models``,
    every other byte as it was."""
    doc = json.loads(text)
    models = doc["context"]["mlops"]["models"]
    start = text.index('"models"', text.index('"mlops"'))
    open_at = text.index("[", start)
    depth, i, in_string = 0, open_at, False
    while True:  # the matching "]" (strings may hold brackets)
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                break
        i += 1
    line_start = text.rfind("\n", 0, start) + 1
    indent = text[line_start:start] + "  "
    entries = [m for m in models if m["name"] != entry["name"]]
    old = {m["name"]: m for m in models}
    position = [m["name"] for m in models].index(entry["name"]) if entry["name"] in old else None
    if position is None:
        entries.append(entry)
    else:
        entries.insert(position, entry)
    rendered = [_entry_text(m, indent) for m in entries]
    body = "[\n" + ",\n".join(rendered) + "\n" + text[line_start:start] + "]"
    new = text[:open_at] + body + text[i + 1 :]
    assert json.loads(new)["context"]["mlops"]["models"] == entries
    return new


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- add-model


def _place_data(data: Path, files: list[Path], target_dir: Path, link: bool) -> list[Path]:
    """Copies (or links) ``files`` (the data files the profile read under ``data``) into
    ``target_dir`` by way of a staging directory, so a failure leaves the old directory
    as it was."""
    data = data.resolve()
    if target_dir.resolve() == data or data.is_relative_to(target_dir.resolve()):
        return files  # already in place
    staging = Path(tempfile.mkdtemp(dir=target_dir.parent, prefix=f".{target_dir.name}."))
    placed = []
    try:
        base = data if data.is_dir() else data.parent
        for file in files:
            dest = staging / file.resolve().relative_to(base)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if link:
                dest.symlink_to(file.resolve())
            else:
                shutil.copy2(file, dest)
            placed.append(target_dir / dest.relative_to(staging))
        if target_dir.exists():
            shutil.rmtree(target_dir)
        staging.rename(target_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return placed


def add_model(args: argparse.Namespace) -> int:
    from mlops.config import ConfigError, parse_config

    rules.check_name(args.name)
    root = Path(args.project_root).resolve()
    cdk_json = root / "cdk.json"
    text, doc = read_cdk_json(cdk_json)
    mlops = doc["context"]["mlops"]
    if any(m.get("name") == args.name for m in mlops.get("models", [])) and not args.force:
        raise AddModelError(
            f"NAME: a model {args.name!r} is already in cdk.json. Fix: choose another "
            "name, or pass --force to replace its entry and schema"
        )
    data = Path(args.data)
    if not data.exists():
        raise AddModelError(f"--data: {data} does not exist")
    steps_python = Path(args.steps_python)
    if not steps_python.exists():
        raise AddModelError(f"{steps_python} is missing. Fix: run `make steps-venv`")
    print(f"profiling {data} ...", file=sys.stderr)
    profile = run_step(steps_python, "profile_data.py", "--data", str(data))
    proposal = rules.propose(
        args.name, profile, args.target,
        problem=args.problem_type, positive_class=args.positive_class,
        id_column=args.id_column, time_column=args.time_column,
        event_time=args.event_time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        drop=args.drop,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        schema_tmp = Path(tmp) / f"{args.name}.json"
        schema_tmp.write_text(json.dumps(proposal.schema, indent=2) + "\n")
        print(
            f"checking the data as Preprocess does, and a {args.folds}-fold baseline ...",
            file=sys.stderr,
        )
        cv = run_step(
            steps_python, "quick_baseline.py", "--data", str(data), "--schema", str(schema_tmp),
            "--problem-type", proposal.problem_type,
            "--hyperparameters", json.dumps(proposal.hyperparameters),
            "--metric", proposal.gate_metric, "--folds", str(args.folds),
        )  # fmt: skip
    threshold = rules.gate_threshold(proposal.problem_type, proposal.gate_metric, cv["splits"])
    version = args.xgboost_version or _default_xgboost_version()
    entry = rules.model_entry(proposal, threshold, version)
    new_text = with_model(text, entry)
    new_doc = json.loads(new_text)
    try:  # the whole config as synth will read it, with the new schema, before writing
        parse_config(
            new_doc["context"]["mlops"], project_root=root,
            schema_documents={entry["schemaFile"]: proposal.schema},
        )  # fmt: skip
    except ConfigError as error:
        raise AddModelError(f"the new entry does not pass config validation:\n{error}") from None
    # Everything checked: write the data, then the schema, then cdk.json (each atomic).
    raw_dir = root / LOCAL_RAW / entry["dataPrefix"].rstrip("/")
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    files = [Path(f) for f in profile["files"]]  # as Preprocess's reader lists them
    placed = _place_data(data, files, raw_dir, args.link)
    _write_atomically(root / entry["schemaFile"], json.dumps(proposal.schema, indent=2) + "\n")
    _write_atomically(cdk_json, new_text)
    _print_summary(proposal, cv, threshold, entry, placed, root)
    return 0


def _default_xgboost_version() -> str:
    from mlops.config import AlgorithmConfig

    return AlgorithmConfig().version


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _print_summary(proposal, cv, threshold, entry, placed, root: Path) -> None:
    rows = [[c.source, c.name or "-", c.role, c.type or "-", c.evidence] for c in proposal.columns]
    print(_table(rows, ["data column", "schema name", "role", "type", "evidence"]))
    print()
    classes = f" {list(proposal.classes)}" if proposal.classes else ""
    print(f"problem type   {proposal.problem_type}{classes} ({proposal.problem_evidence})")
    print(f"rows           {proposal.rows} read; {json.dumps(cv['check'])}")
    print(f"hyperparameters {json.dumps(proposal.hyperparameters)}")
    folds = ", ".join(f"{v:.4f}" for v in cv["folds"])
    gate = rules.contract.gate_metric(proposal.problem_type, proposal.gate_metric)
    splits = cv["splits"]
    print(
        f"quality gate   {proposal.gate_metric} {'>=' if gate.higher_is_better else '<='} "
        f"{threshold:g}  ({len(cv['folds'])}-fold baseline {cv['mean']:.4f}: {folds}; on "
        f"{splits['count']} test splits of {splits['test_rows']} rows: 1st/50th/99th "
        f"percentile {splits['p01']:.4f} / {splits['p50']:.4f} / {splits['p99']:.4f})"
    )
    print()
    print("wrote")
    print(f"  {entry['schemaFile']}")
    print(f"  cdk.json: models[] entry {entry['name']!r}")
    for file in placed:
        print(f"  {file.relative_to(root)}")
    print()
    print("next")
    print(f"  make local-run LOCAL_RUN_ARGS='--model {entry['name']}'   # the dev pipeline, here")
    print(
        f"  aws s3 cp {LOCAL_RAW / entry['dataPrefix']}/ "
        f"s3://<RawDataBucket>/{entry['dataPrefix']} --recursive"
    )
    print("  npx cdk deploy 'dev/*'")


# --------------------------------------------------------------------------- check


def check(args: argparse.Namespace) -> int:
    from mlops.config import ConfigError, load_config

    root = Path(args.project_root).resolve()
    _, doc = read_cdk_json(root / "cdk.json")
    try:
        config = load_config(doc.get("context", {}).get("mlops"), project_root=root)
    except ConfigError as error:
        print(f"config: {error}", file=sys.stderr)
        return EXIT_USAGE
    models = list(config.models)
    if args.model:
        names = [m.name for m in models]
        unknown = [n for n in args.model if n not in names]
        if unknown:
            raise AddModelError(f"--model: no model named {unknown}; models are {names}")
        models = [m for m in models if m.name in args.model]
    steps_python = Path(args.steps_python)
    if not steps_python.exists():
        raise AddModelError(f"{steps_python} is missing. Fix: run `make steps-venv`")
    rows, failed = [], 0
    for model in models:
        data = root / LOCAL_RAW / model.data_prefix.rstrip("/")
        try:
            summary = run_step(
                steps_python, "preprocess.py", "--check-only", "--input-dir", str(data),
                "--schema", str(root / model.schema_file), "--problem-type", model.problem_type,
            )  # fmt: skip
            rows.append([model.name, "ok", f"{summary['rows_used']} rows; split "
                         f"{summary['train_rows']}/{summary['validation_rows']}/{summary['test_rows']}"])  # fmt: skip
        except StepFailed as error:
            failed += 1
            rows.append([model.name, "FAILED", str(error)])
    print("config and schemas: ok")
    print(_table(rows, ["model", "data", "detail"]))
    return EXIT_USAGE if failed else 0


# --------------------------------------------------------------------------- lock


def lock_feature_groups(args: argparse.Namespace) -> int:
    """Records the configured feature groups as deployed, for the stages given (all by
    default): run it after ``cdk deploy`` of those stages."""
    from mlops import feature_lock
    from mlops.config import ConfigError, load_config
    from pipeline_steps.steplib import contract

    root = Path(args.project_root).resolve()
    _, doc = read_cdk_json(root / "cdk.json")
    try:
        config = load_config(doc.get("context", {}).get("mlops"), project_root=root)
    except ConfigError as error:
        raise AddModelError(f"config:\n{error}") from None
    stages = args.stage or list(config.stages)
    unknown = [s for s in stages if s not in config.stages]
    if unknown:
        raise AddModelError(f"--stage: no stage named {unknown}; stages are {list(config.stages)}")
    path = root / feature_lock.LOCK_FILE
    locked = feature_lock.read(path)
    models = {m.name: m for m in config.models}
    for stage in stages:
        entries = {}
        for group in config.feature_groups:
            model = models[group.model]
            schema = contract.parse_schema(
                json.loads((root / model.schema_file).read_text()), model.schema_file
            )
            entries[group.name] = feature_lock.definition(
                schema, online_store=group.online_store,
                online_storage_type=group.online_storage_type, offline_store=group.offline_store,
            )  # fmt: skip
        locked[stage] = entries
    feature_lock.write(path, locked)
    print(f"{feature_lock.LOCK_FILE}: {', '.join(stages)} locked "
          f"({len(config.feature_groups)} feature group(s) each); commit it")  # fmt: skip
    return 0


# --------------------------------------------------------------------------- the command


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlops", description=__doc__.split("\n")[0])
    p.add_argument("--project-root", default=str(PROJECT_ROOT), help=argparse.SUPPRESS)
    p.add_argument(
        "--steps-python", default=str(DEFAULT_STEPS_PYTHON),
        help="the steps venv's python (default .venv-steps/bin/python)",
    )  # fmt: skip
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = verbs.add_parser(
        "add-model",
        help="infer a schema and a cdk.json entry from data, check them, write them",
        description=rules.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", metavar="NAME", help="the model's name (e.g. wine-quality)")
    add.add_argument("--data", required=True, help="a CSV or Parquet file, or a directory of them")
    add.add_argument("--target", required=True, help="the column to predict")
    add.add_argument("--problem-type", choices=list(rules.contract.PROBLEM_TYPES),
                     help="default: inferred from the target")  # fmt: skip
    add.add_argument(
        "--positive-class", help="binary: the class to detect (default: the second in sorted order)"
    )
    add.add_argument(
        "--id-column",
        help="the record id column (default: one named id/record_id/..., else derived)",
    )
    add.add_argument(
        "--time-column",
        help="the event time column (default: one named event_time/timestamp/..., else a fixed time)",
    )
    add.add_argument(
        "--event-time",
        help="the fixed event time when the data has none (ISO-8601 UTC; default now)",
    )
    add.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="COLUMN",
        help="leave a column out (repeatable)",
    )
    add.add_argument(
        "--folds", type=int, default=3, help="cross-validation folds of the baseline (default 3)"
    )
    add.add_argument(
        "--xgboost-version", help="the built-in XGBoost version (default: the config's)"
    )
    add.add_argument(
        "--link", action="store_true", help="symlink the data under data/raw/ instead of copying it"
    )
    add.add_argument("--force", action="store_true", help="replace a model of the same name")
    add.set_defaults(run=add_model)
    chk = verbs.add_parser(
        "check",
        help="config, schema and Preprocess's data checks on the local data, without training",
        description="Validates cdk.json and every schema as synth does, then runs Preprocess's "
        "data checks and split (no training, nothing written) on each model's local data, "
        "data/raw/<dataPrefix>.",
    )
    chk.add_argument("--model", action="append", default=[], help="only this model (repeatable)")
    chk.set_defaults(run=check)
    lock = verbs.add_parser(
        "lock-feature-groups",
        help="record the configured feature groups as deployed (after cdk deploy)",
        description="Writes feature-groups.lock.json: each stage's feature group definitions "
        "as deployed. Synth then refuses a config change that would make CloudFormation "
        "replace a group (removed, renamed or retyped features, a changed record id, event "
        "time or store). Run it after deploying, and commit the file.",
    )
    lock.add_argument("--stage", action="append", default=[], help="only this stage (repeatable)")
    lock.set_defaults(run=lock_feature_groups)
    from mlops import recommend, serving_record

    serve = verbs.add_parser(
        "serve",
        help="serve an approved version in a stage (the latest by default), then deploy",
        description=serving_record.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serving_record.add_arguments(serve, rollback=False)
    back = verbs.add_parser(
        "rollback",
        help="serve the approved version before the one a stage serves, then deploy",
        description=serving_record.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serving_record.add_arguments(back, rollback=True)
    smoke = verbs.add_parser(
        "smoke-test",
        help="send a few rows of a model's local data to its endpoint in a stage and check",
        description="Runs pipeline_steps/smoke_test.py against endpoint <stage>-<model> with "
        "the model's schema, problem type and local data (data/raw/<dataPrefix>).",
    )
    smoke.add_argument("--stage", required=True)
    smoke.add_argument("--model", required=True)
    smoke.add_argument("--data", help="default: data/raw/<dataPrefix>")
    smoke.add_argument("--rows", type=int, default=5)
    smoke.set_defaults(run=smoke_test)
    rec = verbs.add_parser("recommend", help=recommend.HELP, description=recommend.DESCRIPTION)
    recommend.add_arguments(rec)
    from mlops import release

    release.add_verbs(verbs)  # release-smoke-test, promote
    return p


def smoke_test(args: argparse.Namespace) -> int:
    """``mlops smoke-test``: the step script's exit status (0: the endpoint answered well)."""
    from mlops.config import ConfigError, load_config

    root = Path(args.project_root)
    try:
        config = load_config(
            read_cdk_json(root / "cdk.json")[1]["context"]["mlops"], project_root=root
        )
    except ConfigError as error:
        raise AddModelError(str(error)) from None
    models = {m.name: m for m in config.models}
    if args.stage not in config.stages or args.model not in models:
        raise AddModelError(
            f"unknown stage {args.stage!r} or model {args.model!r} (stages: "
            f"{sorted(config.stages)}; models: {sorted(models)})"
        )
    model = models[args.model]
    if not Path(args.steps_python).exists():
        raise AddModelError(f"{args.steps_python} is missing. Fix: run `make steps-venv`")
    if args.rows < 1:
        raise AddModelError(f"--rows: got {args.rows}. Fix: send at least 1 row")
    command = smoke_test_command(
        root, args.stage, model, args.steps_python, region=config.stages[args.stage].region,
        data=args.data, rows=args.rows,
    )  # fmt: skip
    return subprocess.run(command, check=False).returncode


def smoke_test_command(
    root: Path, stage: str, model, steps_python, *, region: str, data: str | None = None,
    rows: int = 5,
) -> list[str]:  # fmt: skip
    """The smoke test of ``model`` (a config model) in ``stage``: ``smoke-test``'s and
    ``release-smoke-test``'s command."""
    return [
        str(steps_python), str(STEPS_DIR / "smoke_test.py"),
        "--endpoint-name", serving_record.endpoint_name(stage, model.name),
        "--schema", str(root / model.schema_file), "--problem-type", model.problem_type,
        "--data", data or str(root / LOCAL_RAW / model.data_prefix), "--rows", str(rows),
        "--region", region,
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (AddModelError, StepFailed) as error:
        print(f"mlops {args.verb}: {error}", file=sys.stderr)
        if args.verb == "add-model":
            print("nothing was written", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
