"""Helpers for the infrastructure tests: the repository's context and apps built from it."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
import re
import sys
import types
from pathlib import Path
from types import ModuleType
from typing import Any

import aws_cdk as cdk

import app as platform_app

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def cdk_context() -> dict[str, Any]:
    """The context block of the repository's cdk.json (a fresh copy)."""
    return copy.deepcopy(json.loads((ROOT / "cdk.json").read_text())["context"])


def mlops_config() -> dict[str, Any]:
    """The default ``mlops`` config from cdk.json (a fresh copy to edit)."""
    return cdk_context()["mlops"]


#: Context the CDK CLI adds when it runs the app: with it, an app synthesized in-process
#: writes the very bytes `cdk synth` writes (tests/infra/test_gates.py compares them).
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": False,
    "aws:cdk:bundling-stacks": ["**"],
}


def make_app(mlops: dict[str, Any] | None = None, outdir: Path | None = None) -> cdk.App:
    """An App with cdk.json's context (``mlops`` replaced if given) and the CLI's own
    context, failing on findings as the platform's app does."""
    context = {**cdk_context(), **CLI_CONTEXT}
    if mlops is not None:
        context["mlops"] = mlops
    return cdk.App(
        context=context,
        outdir=str(outdir) if outdir else None,
        post_cli_context={platform_app.FAIL_ON_FINDINGS: True},
    )


def normalize_template(template: dict[str, Any]) -> dict[str, Any]:
    """Replaces asset hashes and drops the CLI's construct-path and asset metadata, so
    snapshots show real changes, not rebuilt assets or moved constructs."""
    template = json.loads(json.dumps(template))
    for resource in template.get("Resources", {}).values():
        metadata = resource.get("Metadata", {})
        for key in [k for k in metadata if k.startswith(("aws:cdk:path", "aws:asset:"))]:
            del metadata[key]
        if "Metadata" in resource and not metadata:
            del resource["Metadata"]
    text = json.dumps(template, sort_keys=True)
    text = re.sub(r"[0-9a-f]{64}", "<asset-hash>", text)
    return json.loads(text)


def all_templates(stages: Any) -> dict[str, dict[str, Any]]:
    """``{"<stage>/<stack path>": template}`` of every stack of ``stages``, nested included."""
    result = {}
    for stage in stages:
        for stack in stage.node.find_all():
            if isinstance(stack, cdk.Stack):
                template = cdk.assertions.Template.from_stack(stack).to_json()
                result[stack.node.path] = template
    return result


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The resources of one type in a template, by logical ID."""
    return {k: r for k, r in template.get("Resources", {}).items() if r["Type"] == kind}


def ssm_parameter_of(template: dict[str, Any], value: Any) -> str | None:
    """The SSM parameter name a ``{"Ref": <parameter>}`` of an SSM type reads, else None."""
    if not (isinstance(value, dict) and set(value) == {"Ref"}):
        return None
    parameter = template.get("Parameters", {}).get(value["Ref"], {})
    if not str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::Value<"):
        return None
    return parameter.get("Default")


def load_handler(name: str) -> ModuleType:
    """``handlers/<name>/index.py`` as a module (registered in ``sys.modules``, which
    dataclasses look their module up in), without putting ``handlers/`` on the path."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_index", ROOT / "handlers" / name / "index.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def third_party_imports(path: Path) -> set[str]:
    """The top-level modules a file imports that are not the standard library's (what a
    handler's Lambda package needs besides the file)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"__future__"}


def dummy_aws_credentials(monkeypatch: Any, folder: Path) -> None:
    """Dummy credentials and region from the environment, no configuration files, no
    instance metadata: making a boto3 client then calls nothing (for Stubber tests)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(folder / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def lambda_context(function_name: str, account: str = "111122223333") -> Any:
    """The attributes of a Lambda context that Powertools' Logger reads."""
    return types.SimpleNamespace(
        function_name=function_name,
        memory_limit_in_mb=256,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:{account}:function:{function_name}",
        aws_request_id="0f6a7c1e-0000-0000-0000-000000000000",
    )
