"""Run a stage's training pipelines on this machine, from the synthesized definitions.

``make local-run`` synthesizes a stage (dev by default) and executes, step by step, each
``PipelineDefinitionBody`` CloudFormation would receive, with no Docker and no AWS:

* **Processing** steps run their container's entrypoint and arguments with the step
  scripts' interpreter (``.venv-steps``, pinned to the images' libraries), every
  ``/opt/ml/`` path moved under the job's local root; inputs are downloaded from, and
  outputs uploaded to, a local S3 (:mod:`mlops.local_cloud`).
* **Training** with the built-in XGBoost image runs ``pipeline_steps/train_local.py``,
  a stand-in with the same library version, channels and hyperparameters.
* **Condition** steps evaluate their conditions (``Std:JsonGet`` on property files with
  the SageMaker SDK's own resolver, the one its local mode uses).
* **RegisterModel** writes the ``CreateModelPackage`` request it would send, checked
  against botocore's request shape, to ``<work-dir>/registry/<group>/<version>.json``.
* **Fail** steps fail the execution with their message.

Nothing here knows the platform's DAG: the steps, their order and their data come from
the definition. After an execution that registered a model, the registered version is
served locally (``pipeline_steps/serve_local.py``) with rows of the model's raw data, and
the drift check runs on that capture twice: as sent (no drift expected) and with three
features shifted by one standard deviation (drift expected).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.local_cloud import Assembly, LocalCloudError, LocalS3, split_uri
from mlops.pipeline_definition import all_steps
from mlops.shape_check import check_step_arguments
from pipeline_steps.steplib import contract

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STEPS_DIR = PROJECT_ROOT / "pipeline_steps"
DEFAULT_STEPS_PYTHON = PROJECT_ROOT / ".venv-steps" / "bin" / "python"
#: Where the models' local raw data lives: ``data/raw/<dataPrefix>``.
LOCAL_RAW_DATA = PROJECT_ROOT / "data" / "raw"
#: The exit code of a step script for bad input data (steplib.errors.EXIT_DATA_ERROR).
EXIT_DATA_ERROR = 2
SHIFTED_FEATURES = 3
_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[\s*'([^']*)'\s*\]|\[(\d+)\]")


class StepFailed(Exception):
    """A step did not succeed; ``kind`` says how (``data error``, ``crash``, ...)."""

    def __init__(self, kind: str, message: str, log: Path | None = None) -> None:
        self.kind, self.message, self.log = kind, message, log
        super().__init__(f"{kind}: {message}")


@dataclass
class StepRecord:
    """What happened to one step."""

    name: str
    type: str
    status: str = "NotRun"
    seconds: float = 0.0
    note: str = ""


@dataclass
class Execution:
    """One local execution of one pipeline definition.

    Attributes:
        status: ``Succeeded`` or ``Failed``.
        failure: why it failed (a Fail step's message, or the failed step's error).
        steps: every step that ran, in order.
        property_files: the property files steps wrote, by ``<step>.<name>``.
        registered: the model package request written by RegisterModel, if any.
        conditions: each condition step's evaluated conditions.
    """

    pipeline: str
    status: str = "Executing"
    failure: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    property_files: dict[str, Any] = field(default_factory=dict)
    registered: Path | None = None
    request: dict[str, Any] | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)


class LocalPipeline:
    """Executes one pipeline definition locally.

    Args:
        definition: the definition, variables substituted.
        s3: where inputs come from and outputs go.
        name: the pipeline's name.
        work_dir: this execution's directory (job roots, logs).
        registry_dir: the local Model Registry (``<group>/<version>.json``).
        feature_store_dir: the local Feature Store (``<group>.jsonl``, one line a write,
            kept across executions like the real one); default ``<work_dir>/feature-store``.
        steps_python: the interpreter that runs step scripts (``python3`` in containers).
        parameters: start-time parameter values overriding the defaults.
        label: how progress lines name this execution (default: the pipeline's name).
        progress: called with each progress line.
    """

    def __init__(
        self,
        definition: Mapping[str, Any],
        s3: LocalS3,
        *,
        name: str,
        work_dir: Path,
        registry_dir: Path,
        steps_python: Path,
        feature_store_dir: Path | None = None,
        parameters: Mapping[str, str] | None = None,
        label: str = "",
        progress: Callable[[str], None] = print,
    ) -> None:
        self.definition = definition
        self.s3 = s3
        self.name = name
        self.label = label or name
        self.work_dir = Path(work_dir)
        self.registry_dir = Path(registry_dir)
        self.feature_store_dir = Path(feature_store_dir or self.work_dir / "feature-store")
        self.steps_python = Path(steps_python)
        self.progress = progress
        self.execution_id = "local-" + time.strftime("%Y%m%dT%H%M%S")
        # As SageMaker gives it (a training set from the offline store is built as of it).
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.parameters = _parameters(definition, parameters or {})
        self.properties: dict[str, Any] = {}
        self._steps = {s["Name"]: s for s in all_steps(definition.get("Steps", []))}

    # --- running -------------------------------------------------------------------------

    def run(self) -> Execution:
        """Runs the definition's steps in dependency order; never raises for a step."""
        execution = Execution(self.name)
        try:
            self._run_steps(self.definition.get("Steps", []), execution)
            execution.status = "Succeeded" if execution.status == "Executing" else execution.status
        except StepFailed as failure:
            execution.status = "Failed"
            execution.failure = f"{failure.kind}: {failure.message}"
        return execution

    def _run_steps(self, steps: Sequence[Mapping[str, Any]], execution: Execution) -> None:
        for step in _in_dependency_order(steps):
            record = StepRecord(step["Name"], step["Type"])
            execution.steps.append(record)
            number = len(execution.steps)
            self.progress(f"[{self.label}] {number}. {record.name} ({record.type}) ...")
            started = time.perf_counter()
            try:
                try:
                    record.note = self._run_step(step, execution) or ""
                except StepFailed:
                    raise
                except Exception as error:  # the executor's own failure, named as such
                    raise StepFailed("crash", f"{type(error).__name__}: {error}") from error
                record.status = "Succeeded"
            except StepFailed as failure:
                record.status = "Failed"
                record.note = f"{failure.kind}: {failure.message}"
                raise
            finally:
                record.seconds = time.perf_counter() - started
                self.progress(
                    f"[{self.label}] {number}. {record.name}: {record.status.lower()} "
                    f"({record.seconds:.1f} s){' ' + record.note if record.note else ''}"
                )
            if execution.status == "Failed":
                return

    def _run_step(self, step: Mapping[str, Any], execution: Execution) -> str | None:
        kind = step["Type"]
        runner = {
            "Processing": self._processing,
            "Training": self._training,
            "Condition": self._condition,
            "RegisterModel": self._register,
            "Fail": self._fail,
        }.get(kind)
        if runner is None:
            raise StepFailed("no local stand-in", f"step type {kind} cannot run locally")
        return runner(step, execution)

    def _processing(self, step: Mapping[str, Any], execution: Execution) -> str:
        name = step["Name"]
        args = self.resolve(step["Arguments"])
        root = self.work_dir / "jobs" / name
        shutil.rmtree(root, ignore_errors=True)
        local = _Remap(root)
        for item in args.get("ProcessingInputs", []):
            source = item["S3Input"]
            self._download(source["S3Uri"], local(source["LocalPath"]), f"{name} input")
        app = args["AppSpecification"]
        command = [
            local(str(p)) for p in app["ContainerEntrypoint"] + app.get("ContainerArguments", [])
        ]
        for output in args["ProcessingOutputConfig"]["Outputs"]:
            Path(local(output["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        self._run(command, root, name, env=args.get("Environment", {}))
        for output in args["ProcessingOutputConfig"]["Outputs"]:
            self.s3.upload(
                Path(local(output["S3Output"]["LocalPath"])), output["S3Output"]["S3Uri"]
            )
        self.properties[name] = {**args, "ProcessingJobName": self._job_name(name)}
        for file in step.get("PropertyFiles", []):
            (output,) = [
                o
                for o in args["ProcessingOutputConfig"]["Outputs"]
                if o["OutputName"] == file["OutputName"]
            ]
            path = Path(local(output["S3Output"]["LocalPath"])) / file["FilePath"]
            try:
                execution.property_files[f"{name}.{file['PropertyFileName']}"] = json.loads(
                    path.read_text()
                )
            except (OSError, ValueError) as error:
                raise StepFailed("bad property file", f"{path}: {error}") from None
        count = args["ProcessingResources"]["ClusterConfig"]["InstanceCount"]
        return f"(1 of {count} instances run locally)" if int(count) > 1 else ""

    def _training(self, step: Mapping[str, Any], execution: Execution) -> str:
        name = step["Name"]
        args = self.resolve(step["Arguments"])
        image = args["AlgorithmSpecification"]["TrainingImage"]
        if "/sagemaker-xgboost:" not in image:
            raise StepFailed("no local stand-in", f"training image {image}")
        root = self.work_dir / "jobs" / name
        shutil.rmtree(root, ignore_errors=True)
        env = {}
        for channel in args["InputDataConfig"]:
            target = root / "opt/ml/input/data" / channel["ChannelName"]
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], target, name)
            env[f"SM_CHANNEL_{channel['ChannelName'].upper()}"] = str(target)
        config = root / "opt/ml/input/config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(args.get("HyperParameters", {})))
        env["SM_MODEL_DIR"] = str(root / "opt/ml/model")
        command = [
            str(self.steps_python),
            str(STEPS_DIR / "train_local.py"),
            "--hyperparameters-file",
            str(config / "hyperparameters.json"),
            "--tarball-dir",
            str(root / "output"),
        ]
        self._run(command, root, name, env=env)
        job = self._job_name(name)
        artifact = f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job}/output"
        self.s3.upload(root / "output", artifact)
        self.properties[name] = {
            **args,
            "TrainingJobName": job,
            "ModelArtifacts": {"S3ModelArtifacts": f"{artifact}/model.tar.gz"},
        }
        count = int(args["ResourceConfig"]["InstanceCount"])
        notes = ["built-in XGBoost stand-in (pipeline_steps/train_local.py)"]
        if count > 1:
            notes.append(f"1 of {count} instances, all shards")
        if args.get("MlflowConfig"):
            notes.append("MLflow tracking is SageMaker's, not run locally")
        return "; ".join(notes)

    def _condition(self, step: Mapping[str, Any], execution: Execution) -> str:
        args = step["Arguments"]
        outcomes = []
        for condition in args["Conditions"]:
            outcome, shown = self._evaluate_condition(condition, execution)
            outcomes.append(outcome)
            execution.conditions.append({"step": step["Name"], **shown, "outcome": outcome})
        passed = all(outcomes)
        self.properties[step["Name"]] = {"Outcome": passed}
        branch = args["IfSteps"] if passed else args["ElseSteps"]
        note = f"{'true' if passed else 'false'}: " + "; ".join(
            f"{c['left']} {c['type']} {c['right']}" for c in execution.conditions[-len(outcomes) :]
        )
        self.progress(f"[{self.label}]    {step['Name']} is {note}")
        self._run_steps(branch, execution)
        return note

    def _register(self, step: Mapping[str, Any], execution: Execution) -> str:
        request = self.resolve(step["Arguments"])
        problems = check_step_arguments(step["Name"], "CreateModelPackage", request)
        if problems:
            raise StepFailed(
                "invalid request", "CreateModelPackage: " + "; ".join(str(p) for p in problems)
            )
        group = str(request["ModelPackageGroupName"]).rsplit("/", 1)[-1]
        directory = self.registry_dir / group
        directory.mkdir(parents=True, exist_ok=True)
        version = len(list(directory.glob("*.json"))) + 1
        path = directory / f"{version:04d}.json"
        path.write_text(json.dumps(request, indent=2, sort_keys=True))
        execution.registered, execution.request = path, request
        self.properties[step["Name"]] = {"ModelPackageArn": f"local:{group}/{version}"}
        return f"CreateModelPackage request (checked against botocore) -> {path}"

    def _fail(self, step: Mapping[str, Any], execution: Execution) -> str:
        message = str(self.resolve(step["Arguments"].get("ErrorMessage", "")))
        execution.status = "Failed"
        execution.failure = message
        return message

    # --- expressions ---------------------------------------------------------------------

    def resolve(self, value: Any, execution: Execution | None = None) -> Any:
        """``value`` with every pipeline expression (``Get``, ``Std:Join``,
        ``Std:JsonGet``) replaced by its value in this execution."""
        if isinstance(value, list):
            return [self.resolve(v, execution) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Get":
                return self._get(arg)
            if key == "Std:Join":
                return arg["On"].join(_text(self.resolve(v, execution)) for v in arg["Values"])
            if key == "Std:JsonGet":
                return self._json_get(arg)
        return {k: self.resolve(v, execution) for k, v in value.items()}

    def _get(self, path: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "Parameters":
            return self.parameters[rest]
        if head == "Execution":
            return {
                "PipelineExecutionId": self.execution_id,
                "PipelineExecutionArn": f"local:{self.name}/execution/{self.execution_id}",
                "PipelineName": self.name,
                "PipelineArn": f"local:{self.name}",
                "StartDateTime": self.started,
                "CurrentDateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }[rest]
        if head == "Steps":
            step, _, attribute = rest.partition(".")
            if step not in self.properties:
                raise StepFailed("bad reference", f"{path}: step {step} has not run")
            return _navigate(self.properties[step], attribute, path)
        raise StepFailed("bad reference", f"{path}: unknown root {head!r}")

    def _json_get(self, arg: Mapping[str, Any]) -> Any:
        from sagemaker.core.local.utils import get_using_dot_notation

        reference = arg["PropertyFile"]
        name = reference["Get"] if isinstance(reference, dict) else reference
        match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.([^.]+)", name)
        if not match:
            raise StepFailed("bad reference", f"JsonGet of {name!r}")
        step = self._steps[match[1]]
        (file,) = [f for f in step.get("PropertyFiles", []) if f["PropertyFileName"] == match[2]]
        output = _navigate(self.properties[match[1]], "ProcessingOutputConfig.Outputs", name)
        (uri,) = [o["S3Output"]["S3Uri"] for o in output if o["OutputName"] == file["OutputName"]]
        document = json.loads((self.s3.path(uri) / file["FilePath"]).read_text())
        try:
            return get_using_dot_notation(document, arg["Path"])
        except (KeyError, ValueError, IndexError) as error:
            raise StepFailed(
                "bad JsonGet", f"{arg['Path']} in {file['FilePath']}: {error}"
            ) from None

    def _evaluate_condition(
        self, condition: Mapping[str, Any], execution: Execution
    ) -> tuple[bool, dict[str, Any]]:
        kind = condition["Type"]
        if kind == "Not":
            inner, shown = self._evaluate_condition(condition["Expression"], execution)
            return not inner, {**shown, "type": f"not {shown['type']}"}
        if kind == "Or":
            results = [self._evaluate_condition(c, execution) for c in condition["Conditions"]]
            return any(r for r, _ in results), {"left": "", "type": "or", "right": ""}
        if kind == "In":
            left = self.resolve(condition["QueryValue"])
            right = [self.resolve(v) for v in condition["Values"]]
            return left in right, {"left": left, "type": "in", "right": right}
        left, right = self.resolve(condition["LeftValue"]), self.resolve(condition["RightValue"])
        compare = {
            "Equals": lambda a, b: a == b,
            "GreaterThan": lambda a, b: a > b,
            "GreaterThanOrEqualTo": lambda a, b: a >= b,
            "LessThan": lambda a, b: a < b,
            "LessThanOrEqualTo": lambda a, b: a <= b,
        }.get(kind)
        if compare is None:
            raise StepFailed("no local stand-in", f"condition type {kind}")
        symbol = {"Equals": "==", "GreaterThan": ">", "GreaterThanOrEqualTo": ">=",
                  "LessThan": "<", "LessThanOrEqualTo": "<="}[kind]  # fmt: skip
        return bool(compare(left, right)), {"left": left, "type": symbol, "right": right}

    # --- helpers -------------------------------------------------------------------------

    def _download(self, uri: str, target: Path | str, what: str) -> None:
        try:
            self.s3.download(uri, Path(target))
        except LocalCloudError as error:
            raise StepFailed("missing input", f"{what}: {error}") from None

    def _run(self, command: list[str], root: Path, name: str, *, env: Mapping[str, str]) -> None:
        log = self.work_dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        path = f"{self.steps_python.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        environment = {
            "PATH": path,
            "HOME": os.environ.get("HOME", str(root)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            # Ingestion writes to, and the training-set step reads, a local stand-in of the
            # Feature Store (its runtime and its offline store).
            contract.LOCAL_FEATURE_STORE_VARIABLE: str(self.feature_store_dir),
            **{k: str(v) for k, v in env.items()},
        }
        with log.open("w") as out:
            result = subprocess.run(
                command, cwd=root, env=environment, stdout=out, stderr=subprocess.STDOUT
            )
        if result.returncode == 0:
            return
        text = log.read_text(errors="replace")
        if result.returncode == EXIT_DATA_ERROR:
            errors = [
                line.removeprefix("ERROR: ")
                for line in text.splitlines()
                if line.startswith("ERROR:")
            ]
            raise StepFailed("data error", " | ".join(errors) or _last_line(text), log)
        raise StepFailed(
            "crash", f"exit code {result.returncode}: {_exception_line(text)} (log: {log})", log
        )

    def _job_name(self, step: str) -> str:
        return f"pipelines-{self.execution_id}-{step.lower()}"


class _Remap:
    """Moves container paths (``/opt/ml/...``) under a job's local root."""

    def __init__(self, root: Path) -> None:
        self.prefix = f"{root}/opt/ml/"

    def __call__(self, value: str) -> str:
        return str(value).replace("/opt/ml/", self.prefix)


def _parameters(definition: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """The definition's parameters at their defaults, ``overrides`` applied (typed)."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ValueError(f"no parameter {unknown} in the definition (it has {sorted(declared)})")
    values = {}
    for name, parameter in declared.items():
        raw = overrides.get(name, parameter.get("DefaultValue"))
        kind = parameter["Type"]
        try:
            values[name] = (
                int(raw) if kind == "Integer" else float(raw) if kind == "Float"
                else str(raw).lower() == "true" if kind == "Boolean" else raw
            )  # fmt: skip
        except (TypeError, ValueError):
            raise ValueError(f"parameter {name} ({kind}): {raw!r} is not a valid value") from None
        if parameter.get("EnumValues") and values[name] not in parameter["EnumValues"]:
            raise ValueError(f"parameter {name}: {raw!r} is not one of {parameter['EnumValues']}")
    return values


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _navigate(value: Any, path: str, whole: str) -> Any:
    """Follows a property path (``A.B['name'][0].C``); a list indexed by a name is
    searched for the member whose ``*Name`` field is that name (``Outputs['train']``)."""
    for attribute, name, index in _PATH_TOKEN.findall(path):
        try:
            if attribute:
                value = value[attribute]
            elif index:
                value = value[int(index)]
            else:
                (value,) = [
                    item
                    for item in value
                    if any(k.endswith("Name") and v == name for k, v in item.items())
                ]
        except (KeyError, IndexError, TypeError, ValueError):
            raise StepFailed("bad reference", f"{whole}: nothing at {path!r}") from None
    return value


def _in_dependency_order(steps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``steps`` ordered so each runs after the steps it depends on (``DependsOn`` and
    ``Steps.<name>`` references); their order otherwise."""
    names = {s["Name"] for s in steps}
    needs = {
        s["Name"]: ({*s.get("DependsOn", [])} | set(re.findall(r'"Steps\.([^."]+)', json.dumps(s))))
        & (names - {s["Name"]})
        for s in steps
    }
    ordered: list[Mapping[str, Any]] = []
    done: set[str] = set()
    while len(ordered) < len(steps):
        ready = [s for s in steps if s["Name"] not in done and needs[s["Name"]] <= done]
        if not ready:
            raise StepFailed(
                "bad definition", f"circular dependencies among {sorted(names - done)}"
            )
        ordered.append(ready[0])
        done.add(ready[0]["Name"])
    return ordered


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _exception_line(text: str) -> str:
    """The exception a crashed script raised (its traceback's last line), or its last line."""
    for line in reversed(text.splitlines()):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", line):
            return line.strip()
    return _last_line(text)


# --------------------------------------------------------------------------- the command


@dataclass
class ModelRun:
    """One model's row of the summary."""

    model: str
    pipeline: str = ""
    problem_type: str = ""
    execution: Execution | None = None
    metrics: str = ""
    gate: str = ""
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str = ""
    work_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and self.execution is not None
            and self.execution.status == "Succeeded"
            and all(d["detected"] == d["expected"] for d in self.drift.values())
        )


def synthesize(cdk_json: Path, stage: str, outdir: Path) -> Path:
    """Synthesizes ``stage`` as ``cdk synth`` would; returns its assembly directory."""
    import aws_cdk as cdk

    import app as platform_app

    context = json.loads(Path(cdk_json).read_text())["context"]
    context["stages"] = stage
    shutil.rmtree(outdir, ignore_errors=True)
    application = cdk.App(
        context=context,
        outdir=str(outdir),
        post_cli_context={platform_app.FAIL_ON_FINDINGS: True},
    )
    platform_app.build(application)
    application.synth()
    return Path(outdir) / f"assembly-{stage}"


def model_of(definition: Mapping[str, Any]) -> tuple[str, str]:
    """``(model name, problem type)`` a definition registers (its model package metadata)."""
    for step in all_steps(definition.get("Steps", [])):
        if step["Type"] == "RegisterModel":
            meta = step["Arguments"].get("CustomerMetadataProperties", {})
            return meta.get("model_name", ""), meta.get("problem_type", "")
    return "", ""


def run_stage(
    *,
    cdk_json: Path,
    stage: str,
    models: Sequence[str],
    parameters: Mapping[str, str],
    work_dir: Path,
    steps_python: Path,
    progress: Callable[[str], None] = print,
    raw_data: Path = LOCAL_RAW_DATA,
) -> list[ModelRun]:
    """Synthesizes ``stage`` and runs the pipelines of ``models`` (all when empty), on the
    raw data under ``raw_data`` (``<raw_data>/<dataPrefix>``, the raw bucket's layout)."""
    from mlops.config import load_config

    raw = json.loads(Path(cdk_json).read_text())["context"].get("mlops")
    config = load_config(raw, project_root=PROJECT_ROOT)
    if stage not in config.stages:
        raise ValueError(f"no stage is called {stage!r} (stages: {', '.join(config.stages)})")
    names = [m.name for m in config.models]
    unknown = [m for m in models if m not in names]
    if unknown:
        raise ValueError(f"no model has the name {unknown} (models: {', '.join(names)})")
    progress(f"synthesizing stage {stage} from {cdk_json} ...")
    started = time.perf_counter()
    assembly_dir = synthesize(cdk_json, stage, work_dir / "cdk.out")
    assembly = Assembly(assembly_dir, config.stages[stage].region)
    progress(f"synthesized in {time.perf_counter() - started:.1f} s: {assembly_dir}")
    s3 = LocalS3(work_dir / "s3", assembly.asset_objects())
    raw_bucket, _ = split_uri(
        "s3://" + assembly.ssm_value(f"/mlops/{stage}/data/raw-data-bucket-arn").split(":::")[1]
    )
    s3.mount(raw_bucket, raw_data)
    work: list[tuple[ModelRun, dict[str, Any]]] = []
    for pipeline in assembly.pipelines():
        definition = pipeline.definition()
        model, problem_type = model_of(definition)
        if not models or model in models:
            work.append((ModelRun(model or pipeline.name, pipeline.name, problem_type), definition))

    def execute(item: tuple[ModelRun, dict[str, Any]]) -> None:
        run, definition = item
        try:
            _run_model(
                run, definition, s3, config, work_dir, steps_python, parameters, progress,
                raw_data,
            )  # fmt: skip
        except Exception as error:  # one model's crash does not stop the others
            run.error = f"{type(error).__name__}: {error}"
            progress(f"[{run.model}] crashed: {run.error}")

    # Models are independent executions, as in the cloud: one per core at a time (each
    # step is a subprocess; this thread only waits for it).
    with ThreadPoolExecutor(max_workers=max(1, min(len(work), os.cpu_count() or 1))) as pool:
        list(pool.map(execute, work))
    return [run for run, _ in work]


def _run_model(
    run: ModelRun,
    definition: Mapping[str, Any],
    s3: LocalS3,
    config: Any,
    work_dir: Path,
    steps_python: Path,
    parameters: Mapping[str, str],
    progress: Callable[[str], None],
    raw_data: Path,
) -> None:
    model = config.model(run.model)
    raw = raw_data / model.data_prefix
    if not raw.is_dir():
        shown = raw.relative_to(PROJECT_ROOT) if raw.is_relative_to(PROJECT_ROOT) else raw
        run.error = f"no local raw data at {shown}/ (see README)"
        progress(f"[{run.model}] skipped: {run.error}")
        return
    run.work_dir = work_dir / run.model
    shutil.rmtree(run.work_dir, ignore_errors=True)
    executor = LocalPipeline(
        definition,
        s3,
        name=run.pipeline,
        work_dir=run.work_dir / "execution",
        registry_dir=work_dir / "registry",
        steps_python=steps_python,
        feature_store_dir=work_dir / "feature-store",
        parameters=parameters,
        label=run.model,
        progress=progress,
    )
    execution = run.execution = executor.run()
    for report in execution.property_files.values():
        section = report.get(contract.problem(run.problem_type).report_section, {})
        run.metrics = ", ".join(
            f"{name} {section[name]['value']:.4f}" for name in list(section)[:3] if name in section
        )
    if execution.conditions:
        c = execution.conditions[0]
        run.gate = f"{c['left']:.4f} {c['type']} {c['right']}: {'PASS' if c['outcome'] else 'FAIL'}"
    if execution.request is not None:
        _serve_and_check_drift(run, execution.request, s3, raw, model, steps_python, progress)


def _serve_and_check_drift(
    run: ModelRun,
    request: Mapping[str, Any],
    s3: LocalS3,
    raw: Path,
    model: Any,
    steps_python: Path,
    progress: Callable[[str], None],
) -> None:
    """Serves the registered version (its two containers' artifacts) with raw rows and
    runs the drift check on the capture, as sent and shifted."""
    root = run.work_dir / "serving"  # type: ignore[operator]
    transform, booster = (
        c["ModelDataUrl"] for c in request["InferenceSpecification"]["Containers"]
    )
    # The project's own baseline (the drift-check baselines are Model Monitor's files).
    statistics = request["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    s3.download(transform, root / "transform")
    s3.download(booster, root / "model")
    s3.download(statistics.rsplit("/", 1)[0], root / "baseline")
    thresholds = model.drift.thresholds()
    for label, shift in (("as sent", 0), ("shifted", SHIFTED_FEATURES)):
        window = root / label.replace(" ", "-")
        progress(f"[{run.model}] serving the registered version, drift check {label} ...")
        serve = subprocess.run(
            [str(steps_python), str(STEPS_DIR / "serve_local.py"),
             "--transform-dir", str(root / "transform"), "--model-dir", str(root / "model"),
             "--input", str(raw), "--output-dir", str(window / "capture"),
             "--shift-features", str(shift), "--statistics", str(root / "baseline/statistics.json")],
            capture_output=True, text=True,
        )  # fmt: skip
        if serve.returncode != 0:
            raise RuntimeError(f"serve_local.py: {_exception_line(serve.stderr)}")
        served = json.loads(serve.stdout.strip().splitlines()[-1])
        check = subprocess.run(
            [str(steps_python), str(STEPS_DIR / "drift_check.py"),
             "--baseline-dir", str(root / "baseline"), "--capture-dir", str(window / "capture"),
             "--schema", str(window / "capture/schema.json"), "--output-dir", str(window / "report"),
             "--psi-threshold", str(thresholds.psi),
             "--ks-p-value-threshold", str(thresholds.p_value),
             "--missing-rate-increase", str(thresholds.missing_rate_increase),
             "--model-name", run.model],
            capture_output=True, text=True,
        )  # fmt: skip
        if check.returncode != 0:
            raise RuntimeError(f"drift_check.py: {_exception_line(check.stderr)}")
        report = json.loads((window / "report/drift_report.json").read_text())
        run.drift[label] = {
            "detected": report["drift_detected"],
            "expected": bool(shift),
            "features": report["drifted_features"],
            "shifted": served["shifted_features"],
            "requests": served["requests"],
            "report": str(window / "report/drift_report.json"),
        }
        progress(
            f"[{run.model}]    {served['requests']} requests; drift detected: "
            f"{report['drift_detected']} {report['drifted_features']}"
        )


def print_summary(runs: Sequence[ModelRun], stage: str, work_dir: Path) -> bool:
    """The final table (always printed); returns whether everything went as expected."""
    line = "=" * 100
    print(
        f"\n{line}\nLOCAL RUN SUMMARY   stage {stage}, the synthesized pipeline definitions\n{line}"
    )
    header = f"{'model':<16} {'execution':<10} {'test metrics':<40} {'quality gate':<30}"
    print(header)
    print("-" * len(header))
    for run in runs:
        status = "ERROR" if run.error else (run.execution.status if run.execution else "-")
        print(f"{run.model:<16} {status:<10} {run.metrics:<40} {run.gate:<30}")
    print()
    header = f"{'model':<16} {'drift: rows as sent (expect none)':<36} {'drift: 3 features shifted (expect drift)':<44}"
    print(header)
    print("-" * len(header))
    for run in runs:
        cells = []
        for label in ("as sent", "shifted"):
            d = run.drift.get(label)
            if d is None:
                cells.append("-")
                continue
            mark = "ok" if d["detected"] == d["expected"] else "UNEXPECTED"
            found = f" in {len(d['features'])}" if d["features"] else ""
            cells.append(f"{'DRIFT' if d['detected'] else 'no drift'}{found} [{mark}]")
        print(f"{run.model:<16} {cells[0]:<36} {cells[1]:<44}")
    print()
    for run in runs:
        execution = run.execution
        if run.error:
            print(f"{run.model}: {run.error}")
        elif execution is not None and execution.status != "Succeeded":
            print(f"{run.model}: {execution.failure}")
        elif execution is not None and execution.registered:
            print(f"{run.model}: registered {execution.registered}")
    ok = bool(runs) and all(run.ok for run in runs)
    print(f"\nRESULT: {'OK' if ok else 'NOT OK'} (work dir {work_dir})")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make local-run", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="dev", help="the stage to synthesize (default dev)")
    parser.add_argument("--model", action="append", default=[], help="only this model (repeatable)")
    parser.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE",
        help="a pipeline parameter at start time (repeatable), e.g. TrainingInstanceCount=2",
    )  # fmt: skip
    parser.add_argument("--cdk-json", default=str(PROJECT_ROOT / "cdk.json"))
    parser.add_argument("--work-dir", default=str(PROJECT_ROOT / "build" / "local-run"))
    parser.add_argument("--steps-python", default=str(DEFAULT_STEPS_PYTHON))
    parser.add_argument(
        "--raw-data", default=str(LOCAL_RAW_DATA),
        help="the models' raw data, <raw-data>/<dataPrefix> (default data/raw)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    parameters = dict(p.split("=", 1) for p in args.parameter if "=" in p)
    bad = [p for p in args.parameter if "=" not in p]
    if bad:
        parser.error(f"--parameter takes NAME=VALUE, got {bad}")
    # Fork the definition-build worker before CDK loads (see app.py): the SDK imports on
    # the other core while the stage is constructed.
    from mlops import definition_builds

    definition_builds.start()
    steps_python = Path(args.steps_python).absolute()  # not resolve(): keep the venv's link
    if not steps_python.exists():
        print(f"{steps_python} is missing: run `make steps-venv`", file=sys.stderr)
        return 2
    work_dir = Path(args.work_dir).resolve() / args.stage
    from mlops.config import ConfigError

    try:
        runs = run_stage(
            cdk_json=Path(args.cdk_json), stage=args.stage, models=args.model,
            parameters=parameters, work_dir=work_dir, steps_python=steps_python,
            raw_data=Path(args.raw_data).resolve(),
        )  # fmt: skip
    except (ConfigError, ValueError) as error:
        print(f"local-run: {error}", file=sys.stderr)
        return 2
    (work_dir / "summary.json").write_text(
        json.dumps([_as_json(run) for run in runs], indent=2, default=str)
    )
    return 0 if print_summary(runs, args.stage, work_dir) else 1


def _as_json(run: ModelRun) -> dict[str, Any]:
    execution = run.execution
    return {
        "model": run.model,
        "pipeline": run.pipeline,
        "error": run.error,
        "status": execution.status if execution else None,
        "failure": execution.failure if execution else None,
        "steps": [vars(s) for s in execution.steps] if execution else [],
        "conditions": execution.conditions if execution else [],
        "property_files": execution.property_files if execution else {},
        "registered": execution.registered if execution else None,
        "metrics": run.metrics,
        "gate": run.gate,
        "drift": run.drift,
        "work_dir": run.work_dir,
    }


if __name__ == "__main__":
    sys.exit(main())
