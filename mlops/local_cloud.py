"""A synthesized stage as local-run sees it: its templates, its assets and a local S3.

local-run executes the ``PipelineDefinitionBody`` that CloudFormation would receive. The
body's ``Fn::Sub`` variables are CloudFormation expressions (``Ref``, ``Fn::GetAtt``,
``Fn::Join``, SSM parameter types, asset URLs); :class:`Assembly` evaluates them as a
deployment into an empty local account would: every resource gets a physical name
derived from its logical ID, SSM parameters hold what the stage's own
``AWS::SSM::Parameter`` resources write, and CDK's file assets are "published" to the
asset bucket, exactly where ``cdk deploy`` would put them.

:class:`LocalS3` keeps buckets as directories. The raw-data bucket is the one exception:
it is backed by the repository's ``data/raw/`` (what a user uploads after deploying).
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.serving_record import TRAINING_PIPELINE_SUFFIX

#: The account a local run deploys to.
LOCAL_ACCOUNT = "000000000000"
_S3_URI = re.compile(r"s3://([^/]+)/?(.*)")


class LocalCloudError(ValueError):
    """The assembly holds something local-run cannot evaluate or find."""


@dataclass(frozen=True)
class PipelineResource:
    """One ``AWS::SageMaker::Pipeline`` of the assembly.

    Attributes:
        name: its ``PipelineName``.
        template: the file it is in.
        body: the definition body as embedded (``${Name}`` variables, ``${!`` escapes).
        variables: the ``Fn::Sub`` variables, evaluated locally.
    """

    name: str
    template: Path
    body: str
    variables: Mapping[str, Any]

    def definition(self) -> dict[str, Any]:
        """The definition CloudFormation would create: variables substituted."""
        text = re.sub(
            r"\$\{([A-Za-z0-9_]+)\}", lambda m: _json_escape(self.variables[m[1]]), self.body
        )
        return json.loads(text.replace("${!", "${"))


def _json_escape(value: Any) -> str:
    return json.dumps(str(value))[1:-1]


class Assembly:
    """The templates and assets of one stage's cloud assembly (``cdk.out/assembly-<stage>``).

    Args:
        directory: the stage's assembly directory.
        region: the stage's region (templates hold it literally or as ``AWS::Region``).
    """

    def __init__(self, directory: Path, region: str) -> None:
        self.directory = Path(directory)
        self.region = region
        paths = sorted(self.directory.glob("*.template.json"))
        if not paths:
            raise LocalCloudError(f"{self.directory}: no templates (is it a stage's assembly?)")
        self.templates = {p: json.loads(p.read_text()) for p in paths}
        self._ssm = self._ssm_parameters()
        self._assets = self._file_assets()

    # --- what the stage holds ------------------------------------------------------------

    def pipelines(self) -> list[PipelineResource]:
        """Every pipeline of the stage that exists before any approval (the training
        pipelines), with its variables evaluated."""
        found = []
        for path, template in self.templates.items():
            for resource in template.get("Resources", {}).values():
                if resource.get("Type") != "AWS::SageMaker::Pipeline":
                    continue
                if "Condition" in resource:
                    # The serving stack's batch pipelines exist only once a version is
                    # approved; local-run runs the training pipelines.
                    continue
                props = resource["Properties"]
                name = self.evaluate(props["PipelineName"], template)
                if not name.endswith(TRAINING_PIPELINE_SUFFIX):  # the stage's monitoring pipeline
                    continue
                sub = props["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
                body, variables = sub if isinstance(sub, list) else (sub, {})
                found.append(
                    PipelineResource(
                        name=name,
                        template=path,
                        body=body,
                        variables={k: self.evaluate(v, template) for k, v in variables.items()},
                    )
                )
        return sorted(found, key=lambda p: p.name)

    def asset_objects(self) -> dict[tuple[str, str], tuple[Path, str]]:
        """``(bucket, key) -> (source path, packaging)`` of every file asset."""
        return dict(self._assets)

    # --- evaluation ------------------------------------------------------------------------

    def evaluate(self, value: Any, template: Mapping[str, Any]) -> Any:
        """``value`` with every intrinsic function of ``template`` evaluated."""
        if isinstance(value, list):
            return [self.evaluate(v, template) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.evaluate(v, template) for k, v in value.items()}
        ((name, arg),) = value.items()
        if name == "Ref":
            return self._ref(arg, template)
        if name == "Fn::GetAtt":
            return self._get_att(arg, template)
        if name == "Fn::Join":
            delimiter, items = arg
            return delimiter.join(str(self.evaluate(i, template)) for i in items)
        if name == "Fn::Select":
            index, items = arg
            return self.evaluate(items, template)[int(self.evaluate(index, template))]
        if name == "Fn::Split":
            delimiter, text = arg
            return str(self.evaluate(text, template)).split(delimiter)
        if name == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else arg
            values = {k: self.evaluate(v, template) for k, v in names.items()}
            return re.sub(
                r"\$\{([^}!]+)\}",
                lambda m: str(values[m[1]] if m[1] in values else self._ref(m[1], template)),
                text,
            ).replace("${!", "${")
        if name.startswith("Fn::") or name == "Condition":
            raise LocalCloudError(f"local-run cannot evaluate {name} (in {value!r})")
        return {k: self.evaluate(v, template) for k, v in value.items()}

    def _ref(self, name: str, template: Mapping[str, Any]) -> Any:
        pseudo = {
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::Region": self.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "local",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        parameter = template.get("Parameters", {}).get(name)
        if parameter is not None:
            kind = parameter.get("Type", "")
            if kind.startswith("AWS::SSM::Parameter::Value<"):
                value = self._ssm_value(parameter["Default"])
                return value.split(",") if "List<" in kind else value
            if "Default" in parameter:
                return parameter["Default"]
            raise LocalCloudError(f"parameter {name} has no default to run with locally")
        if name in template.get("Resources", {}):
            return physical_name(name)
        raise LocalCloudError(f"Ref to {name!r}: no such parameter or resource")

    def _get_att(self, arg: list[str] | str, template: Mapping[str, Any]) -> str:
        logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        resource = template.get("Resources", {}).get(logical_id)
        if resource is None:
            raise LocalCloudError(f"GetAtt of {logical_id!r}: no such resource")
        name = physical_name(logical_id)
        kind = resource["Type"]
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:aws:s3:::{name}"
        service, _, resource_type = kind.removeprefix("AWS::").partition("::")
        return (
            f"arn:aws:{service.lower()}:{self.region}:{LOCAL_ACCOUNT}:"
            f"{resource_type.lower()}/{name}" + ("" if attribute == "Arn" else f"/{attribute}")
        )

    def _ssm_parameters(self) -> dict[str, tuple[Any, Mapping[str, Any]]]:
        found = {}
        for template in self.templates.values():
            for resource in template.get("Resources", {}).values():
                if resource.get("Type") == "AWS::SSM::Parameter":
                    props = resource["Properties"]
                    found[props["Name"]] = (props["Value"], template)
        return found

    def ssm_value(self, name: str) -> str:
        """What the stage's stacks write to the SSM parameter ``name``."""
        return self._ssm_value(name)

    def _ssm_value(self, name: str) -> str:
        if name not in self._ssm:
            raise LocalCloudError(f"SSM parameter {name} is not written by any stack of the stage")
        value, template = self._ssm[name]
        return str(self.evaluate(value, template))

    def _file_assets(self) -> dict[tuple[str, str], tuple[Path, str]]:
        found = {}
        for manifest in self.directory.glob("*.assets.json"):
            for asset in json.loads(manifest.read_text()).get("files", {}).values():
                source = asset["source"]
                for destination in asset["destinations"].values():
                    bucket = (
                        destination["bucketName"]
                        .replace("${AWS::AccountId}", LOCAL_ACCOUNT)
                        .replace("${AWS::Region}", self.region)
                        .replace("${AWS::Partition}", "aws")
                    )
                    found[bucket, destination["objectKey"]] = (
                        self.directory / source["path"],
                        source.get("packaging", "file"),
                    )
        return found


def physical_name(logical_id: str) -> str:
    """The name a local deployment gives a resource without an explicit name."""
    return f"local-{logical_id.lower()}"[:63]


class LocalS3:
    """Buckets as directories under ``root``; some buckets backed by another directory.

    Args:
        root: where buckets live (``<root>/<bucket>/<key>``).
        assets: CDK file assets, served at the keys ``cdk deploy`` publishes them to.
    """

    def __init__(
        self, root: Path, assets: Mapping[tuple[str, str], tuple[Path, str]] | None = None
    ) -> None:
        self.root = Path(root)
        self._assets = dict(assets or {})
        self._mounts: dict[str, Path] = {}

    def mount(self, bucket: str, directory: Path) -> None:
        """Serves ``bucket`` from ``directory`` (read as it is, never written)."""
        self._mounts[bucket] = Path(directory)

    def path(self, uri: str) -> Path:
        """The local file or directory of an ``s3://`` URI."""
        bucket, key = split_uri(uri)
        base = self._mounts.get(bucket, self.root / bucket)
        return base / key if key else base

    def download(self, uri: str, destination: Path) -> list[Path]:
        """Copies every object under the prefix ``uri`` into ``destination`` (as
        ``S3Prefix`` inputs are); returns the files written."""
        bucket, key = split_uri(uri)
        destination.mkdir(parents=True, exist_ok=True)
        if (bucket, key) in self._assets:
            source, packaging = self._assets[bucket, key]
            target = destination / Path(key).name
            if packaging == "zip":
                _zip_directory(source, target)
            else:
                shutil.copyfile(source, target)
            return [target]
        written = []
        for object_key, source in self._objects(bucket, key):
            relative = object_key[len(key) :].lstrip("/") or Path(object_key).name
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(target)
        if not written:
            raise LocalCloudError(f"{uri}: no objects under this prefix")
        return written

    def upload(self, source: Path, uri: str) -> None:
        """Copies the files of directory ``source`` under the prefix ``uri``."""
        bucket, _ = split_uri(uri)
        if bucket in self._mounts:
            raise LocalCloudError(f"{uri}: bucket {bucket} is read-only here")
        target = self.path(uri)
        for file in sorted(p for p in Path(source).rglob("*") if p.is_file()):
            out = target / file.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, out)

    def _objects(self, bucket: str, prefix: str) -> Iterator[tuple[str, Path]]:
        base = self._mounts.get(bucket, self.root / bucket)
        if not base.is_dir():
            return
        for file in sorted(p for p in base.rglob("*") if p.is_file()):
            key = file.relative_to(base).as_posix()
            if key.startswith(prefix):
                yield key, file


def split_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://`` URI."""
    match = _S3_URI.fullmatch(str(uri))
    if not match:
        raise LocalCloudError(f"{uri!r} is not an s3:// URI")
    return match[1], match[2]


def _zip_directory(source: Path, target: Path) -> None:
    """The zip ``cdk deploy`` makes of a directory asset (files only, sorted)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            archive.write(file, file.relative_to(source).as_posix())
