"""SageMaker Data Wrangler flows (``.flow`` files) read and checked offline, at synth time.

A model's config may name a ``.flow`` file committed in the project. The training pipeline
runs it as a processing job in the Data Wrangler container before Preprocess, and the
job's output is Preprocess's raw-data input, so the flow must produce exactly the raw
columns the model's schema expects. This module reads the file without AWS, a network or
the container: :func:`load_flow` checks its structure and works out the processing job's
wiring and the flow's output columns; :func:`schema_problems` compares those columns with
the schema. Standard library only (and the model contract).

The format, as real flows and AWS's own tooling show it:

* A flow is a JSON object: ``metadata`` (``version`` 1 in every published flow, plus
  optional ``disable_limits``, ``instance_type``, ...), an optional ``parameters`` list
  and ``nodes``. A node has ``node_id``, ``type`` (``SOURCE``, ``TRANSFORM``,
  ``VISUALIZATION``, ``DATASET``, ``DESTINATION``), ``operator``
  (``sagemaker.s3_source_0.1``, ``sagemaker.spark.manage_columns_0.1``, ...),
  ``parameters``, optional ``trained_parameters``, ``inputs``
  (``[{name, node_id, output_name}]``, in the order left, right for a join) and
  ``outputs`` (``[{name}]``, ``default`` for most nodes). Nodes are not stored in graph
  order. (Flows published in ``aws/amazon-sagemaker-examples`` and ``aws-samples``
  repositories; ``sagemaker.wrangler.ingestion`` of the SageMaker Python SDK v2.)
* An S3 source's ``parameters.dataset_definition`` names the dataset (``name``) and its
  ``s3ExecutionContext`` gives ``s3Uri``, ``s3ContentType``, ``s3HasHeader``,
  ``s3FieldDelimiter``, ... Sources record no columns: the *Data types* step that Data
  Wrangler adds after each import (``infer_and_cast_type``) records them in
  ``trained_parameters.schema`` (column -> type, in column order), and at run time the
  container requires that schema to name exactly the columns it receives and selects
  them in that order. Without a recorded schema the types are inferred from the data, so
  the columns are not known offline. (AWS docs, "Create and Use a Data Wrangler Flow",
  "Import"; the operator code of Data Wrangler's "Export to Python code".)
* A processing job runs a flow in the image ``image_uris.retrieve("data-wrangler",
  region)``: the flow file is the input named ``flow`` at ``/opt/ml/processing/flow``,
  each source is an input named after its dataset at ``/opt/ml/processing/<name>``, and
  the exported data is the output ``<node_id>.<output name>`` (``abc123.default``) from
  ``/opt/ml/processing/output``, selected by the container argument
  ``--output-config '{"<output name>": {"content_type": "CSV"}}'`` (CSV, the default, or
  PARQUET; CSV is written with a header row). (SDK v2 ``DataWranglerProcessor`` and
  ``ingestion``; the Data Wrangler job notebook template as reproduced in
  ``aws-samples/sm-data-wrangler-mlops-workflows``; AWS docs "Export".)
* A destination node (``DESTINATION``, ``...s3_destination_0.1``, parameters
  ``output_config`` with ``output_path``, ``output_content_type``, ``compression``,
  ``delimiter``, optional ``partition_config``) marks what a Data Wrangler job exports:
  its input (AWS docs "Export", "Destination Node"; ``s3_destination`` in exported code).
  Flows without destination nodes are exported from a node the user picks ("Export to").
  So the exported dataset is the input of the flow's one destination node or, in a flow
  without any, its one dataset that nothing but analyses consumes. The pipeline writes it
  where its own processing output says; a destination's ``output_path`` is not used.
* ``CreateProcessingJob`` (botocore's service model) puts no pattern on ``InputName`` or
  ``OutputName``; it allows at most 10 inputs, a ``LocalPath`` of at most 256 characters
  and container arguments of at most 256 characters each.

Column tracking follows the operators' code (Data Wrangler's "Export to Python code") and
the AWS docs "Transform Data" (join, concatenate, custom formula). :data:`SUPPORTED_OPERATORS`
lists what is tracked; any other operator upstream of the export raises :class:`FlowError`.
Not confirmed by a real flow: the exact operator names of the concatenate and S3
destination nodes (matched as ``concatenate_datasets`` and ``s3_destination``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any, TypeAlias

from pipeline_steps.steplib import contract

PROCESSING_DIR = "/opt/ml/processing"
#: The processing input that holds the flow file, and where the container reads it.
FLOW_INPUT_NAME = "flow"
FLOW_DIR = f"{PROCESSING_DIR}/flow"
#: Where the container writes the exported dataset (the processing output's LocalPath).
OUTPUT_DIR = f"{PROCESSING_DIR}/output"
#: The processing-job output content types the container writes (``--output-config``).
OUTPUT_CONTENT_TYPES = ("CSV", "PARQUET")
#: Source content types the pipeline can feed: the model's raw data is CSV or Parquet.
SOURCE_CONTENT_TYPES = ("CSV", "PARQUET")
#: ``metadata.version`` values understood here (every published flow has 1).
SUPPORTED_VERSIONS = (1,)
#: CreateProcessingJob allows 10 processing inputs; one of them is the flow file.
MAX_SOURCES = 9
#: CreateProcessingJob's limits on an input's LocalPath and on one container argument.
MAX_LOCAL_PATH = 256
MAX_CONTAINER_ARGUMENT = 256
#: Source names whose directory would be the flow's or the output's.
RESERVED_SOURCE_NAMES = frozenset({FLOW_INPUT_NAME, "output"})

NODE_TYPES = ("SOURCE", "TRANSFORM", "VISUALIZATION", "DATASET", "DESTINATION")

#: What each supported operator (its name without the ``_<version>`` suffix) does to
#: the columns. Every other operator upstream of the export is a :class:`FlowError`.
SUPPORTED_OPERATORS: Mapping[str, str] = {
    "sagemaker.s3_source": "reads an S3 dataset (columns come from the Data types step)",
    "sagemaker.spark.infer_and_cast_type": "Data types: the columns of its recorded "
    "schema (trained_parameters.schema), in that order; without one, its input's",
    "sagemaker.spark.manage_columns": "Drop column, Duplicate column, Rename column "
    "(one or columns_to_rename), Move column (to start/end/index, after/before), "
    "Concatenate columns",
    "sagemaker.spark.handle_missing": "Impute, Fill missing (in place, or into "
    "output_column), Add indicator for missing (adds <column>_indicator), Drop missing",
    "sagemaker.spark.handle_outliers": "the numeric outlier options and Replace rare "
    "values (in place, or into output_column)",
    "sagemaker.spark.process_numeric": "Scale values with the min-max or standard "
    "scaler (in place, or into output_column)",
    "sagemaker.spark.format_string": "every option (in place, or into output_column)",
    "sagemaker.spark.encode_categorical": "Ordinal encode only (in place, or into output_column)",
    "sagemaker.spark.custom_formula": "adds (or replaces) its output_column",
    "sagemaker.spark.manage_rows": "Shuffle, Sort, Drop duplicates, Drop empty, Filter (rows only)",
    "sagemaker.spark.balance_data": "Random oversample, Random undersample, SMOTE (rows only)",
    "sagemaker.spark.split": "rows only; each split is an output with the same columns",
    "sagemaker.spark.join_tables": "left columns then right columns, names in both "
    "suffixed _0 (left) and _1 (right); left columns only for semi and anti joins",
    "sagemaker.spark.join_multi_keys": "as join_tables, on several key pairs",
    "sagemaker.spark.concatenate_datasets": "only when both inputs have the same "
    "columns and no source-indicator column is added",
    "sagemaker.dataset.identity": "passes its input through",
}

#: Why some common operators cannot be tracked, for the error message.
_UNTRACKABLE = {
    "sagemaker.spark.custom_code": "custom code's output columns are only known by running it",
    "sagemaker.spark.custom_pandas": "custom code's output columns are only known by running it",
}

_VERSIONED = re.compile(r"(?P<base>.+)_(?P<version>\d+(?:\.\d+)*)")
_VALID_JOIN_TYPES = frozenset(
    {"anti", "cross", "full", "full_outer", "fullouter", "inner", "left", "left_anti"}
    | {"left_outer", "left_semi", "leftanti", "leftouter", "leftsemi", "outer", "right"}
    | {"right_outer", "rightouter", "semi"}
)
#: Spark's semi and anti joins return the left side's columns only.
_LEFT_ONLY_JOIN_TYPES = frozenset(
    {"anti", "left_anti", "leftanti", "left_semi", "leftsemi", "semi"}
)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_REFRESH_SCHEMA_FIX = (
    "open the flow in Data Wrangler, select its Data types step (so that it records the "
    "schema in trained_parameters.schema), save the flow and commit it again"
)


def source_dir(name: str) -> str:
    """Where the container reads the source dataset called ``name``."""
    return f"{PROCESSING_DIR}/{name}"


class FlowError(ValueError):
    """A flow the pipeline cannot run, or whose output cannot be known offline.

    Attributes:
        path: the flow file.
        node_id, operator: the node at fault (None for the file as a whole).
        problem: what is wrong.
        fix: what to do about it.
    """

    def __init__(
        self,
        path: Path | str,
        problem: str,
        fix: str,
        node_id: str | None = None,
        operator: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        self.node_id = node_id
        self.operator = operator
        where = f"{path}: "
        if node_id is not None:
            where += f"node {node_id} ({operator or 'no operator'}): "
        super().__init__(f"{where}{problem}. Fix: {fix}")


@dataclass(frozen=True)
class FlowSource:
    """One S3 source of a flow, a processing input named ``name`` at ``source_dir(name)``.

    Attributes:
        node_id: the SOURCE node.
        name: the dataset's name (``dataset_definition.name``).
        s3_uri: where the flow read it when it was made (the pipeline feeds the model's
            raw data instead); may be empty.
        content_type: ``CSV`` or ``PARQUET``.
        has_header: whether a CSV file's first line names the columns.
    """

    node_id: str
    name: str
    s3_uri: str
    content_type: str
    has_header: bool

    @property
    def local_path(self) -> str:
        return source_dir(self.name)


@dataclass(frozen=True)
class Flow:
    """A checked flow, and how a processing job runs it.

    Attributes:
        path: the flow file.
        sources: every SOURCE node, in file order (each a processing input).
        output_node_id: the node whose data is exported.
        output_name: the processing output's name, ``<output_node_id>.<output>``.
        output_columns: the exported dataset's columns, in order.
        output_content_type: ``CSV`` or ``PARQUET`` (a destination node's, else CSV).
        destination_node_id: the destination node, if the flow has one.
    """

    path: Path
    sources: tuple[FlowSource, ...]
    output_node_id: str
    output_name: str
    output_columns: tuple[str, ...]
    output_content_type: str
    destination_node_id: str | None = None


def job_arguments(flow: Flow) -> list[str]:
    """The container arguments that make the job export ``flow``'s output, in the form the
    Data Wrangler job notebooks pass them (one argument, the JSON in single quotes)."""
    config = {flow.output_name: {"content_type": flow.output_content_type}}
    return [f"--output-config '{json.dumps(config)}'"]


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Ref:
    node_id: str
    output: str


@dataclass(frozen=True)
class _Node:
    id: str
    type: str
    operator: str
    parameters: Mapping[str, Any]
    trained: Mapping[str, Any]
    inputs: tuple[_Ref, ...]
    outputs: tuple[str, ...]

    @property
    def base(self) -> str:
        """The operator without its ``_<version>`` suffix."""
        match = _VERSIONED.fullmatch(self.operator)
        return match.group("base") if match else self.operator


@dataclass(frozen=True)
class _Unknown:
    """Columns that cannot be known offline, and why."""

    reason: str


_Frame: TypeAlias = tuple[str, ...] | _Unknown


class _Reader:
    """One flow file being checked; raises :class:`FlowError` naming ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, problem: str, fix: str, node: _Node | None = None) -> FlowError:
        if node is None:
            return FlowError(self.path, problem, fix)
        return FlowError(self.path, problem, fix, node.id, node.operator)

    # ------------------------------------------------------------------ document

    def document(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise self.error(
                f"cannot be read ({err})", "commit the .flow file that Data Wrangler saved"
            ) from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise self.error(
                f"is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})",
                "commit the .flow file exactly as Data Wrangler saved it (download it "
                "from Studio again)",
            ) from None
        if not isinstance(doc, dict):
            raise self.error(
                "a flow is a JSON object with metadata and nodes",
                "commit the .flow file that Data Wrangler saved",
            )
        metadata = doc.get("metadata")
        if not isinstance(metadata, dict) or "version" not in metadata:
            raise self.error(
                "metadata.version is missing",
                f'a Data Wrangler flow starts with "metadata": {{"version": '
                f"{SUPPORTED_VERSIONS[0]}, ...}}; commit the file that Data Wrangler saved",
            )
        version = metadata["version"]
        if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
            raise self.error(
                f"metadata.version {version!r} is not supported (supported: "
                f"{', '.join(map(str, SUPPORTED_VERSIONS))})",
                "save the flow with a Data Wrangler release that writes version 1 flows",
            )
        if not isinstance(doc.get("nodes"), list) or not doc["nodes"]:
            raise self.error(
                "nodes is missing or empty", "commit a flow that imports and prepares data"
            )
        return doc

    def nodes(self, doc: Mapping[str, Any]) -> dict[str, _Node]:
        nodes: dict[str, _Node] = {}
        for index, raw in enumerate(doc["nodes"]):
            node = self.node(index, raw)
            if node.id in nodes:
                raise self.error(
                    f"node id {node.id!r} is used twice ({nodes[node.id].operator} and "
                    f"{node.operator})",
                    "give every node its own node_id (Data Wrangler writes a new UUID for "
                    "each step; do not copy nodes by hand)",
                    node,
                )
            nodes[node.id] = node
        for node in nodes.values():
            for ref in node.inputs:
                target = nodes.get(ref.node_id)
                if target is None:
                    raise self.error(
                        f"its input names node {ref.node_id!r}, which is not in the flow",
                        "restore the missing step, or reconnect this step in Data Wrangler",
                        node,
                    )
                if ref.output not in target.outputs:
                    raise self.error(
                        f"its input names output {ref.output!r} of node {ref.node_id} "
                        f"({target.operator}), which has outputs "
                        f"{', '.join(map(repr, target.outputs)) or '(none)'}",
                        "reconnect this step in Data Wrangler",
                        node,
                    )
        return nodes

    def node(self, index: int, raw: Any) -> _Node:
        where = f"nodes[{index}]"
        if not isinstance(raw, dict):
            raise self.error(f"{where} is not an object", "commit the flow Data Wrangler saved")
        node_id = raw.get("node_id")
        if not isinstance(node_id, str) or not node_id:
            raise self.error(f"{where} has no node_id", "commit the flow Data Wrangler saved")
        operator = raw.get("operator")
        stub = _Node(node_id, "", operator if isinstance(operator, str) else "", {}, {}, (), ())
        kind = raw.get("type")
        if kind not in NODE_TYPES:
            raise self.error(
                f"type {kind!r} is not a node type ({', '.join(NODE_TYPES)})",
                "commit the flow Data Wrangler saved",
                stub,
            )
        if not isinstance(operator, str) or not operator:
            raise self.error("it has no operator", "commit the flow Data Wrangler saved", stub)
        parameters = raw.get("parameters") or {}
        trained = raw.get("trained_parameters") or {}
        if not isinstance(parameters, dict) or not isinstance(trained, dict):
            raise self.error(
                "parameters and trained_parameters must be objects",
                "commit the flow Data Wrangler saved",
                stub,
            )
        inputs = []
        for item in raw.get("inputs") or []:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("node_id"), str)
                and isinstance(item.get("output_name"), str)
            ):
                raise self.error(
                    f"input {item!r} is not {{name, node_id, output_name}}",
                    "reconnect this step in Data Wrangler",
                    stub,
                )
            inputs.append(_Ref(item["node_id"], item["output_name"]))
        outputs = []
        for item in raw.get("outputs") or []:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise self.error(
                    f"output {item!r} is not {{name}}", "commit the flow Data Wrangler saved", stub
                )
            outputs.append(item["name"])
        return _Node(node_id, kind, operator, parameters, trained, tuple(inputs), tuple(outputs))

    # ------------------------------------------------------------------ graph

    def graph_order(self, nodes: Mapping[str, _Node]) -> list[str]:
        """Node ids, each after the nodes it reads (file order otherwise)."""
        pending = {node_id: {r.node_id for r in n.inputs} for node_id, n in nodes.items()}
        order: list[str] = []
        done: set[str] = set()
        while pending:
            ready = [node_id for node_id, needs in pending.items() if needs <= done]
            if not ready:
                raise self.cycle(nodes, set(pending))
            for node_id in ready:
                order.append(node_id)
                done.add(node_id)
                del pending[node_id]
        return order

    def cycle(self, nodes: Mapping[str, _Node], stuck: set[str]) -> FlowError:
        # Every stuck node reads a stuck node, so walking inputs from one ends in a loop.
        path = [next(node_id for node_id in nodes if node_id in stuck)]
        while True:
            step = next(r.node_id for r in nodes[path[-1]].inputs if r.node_id in stuck)
            if step in path:
                loop = [*path[path.index(step) :], step]
                break
            path.append(step)
        node = nodes[loop[0]]
        return self.error(
            "the flow has a cycle: " + " <- ".join(f"{n} ({nodes[n].operator})" for n in loop),
            "a flow's steps must not read their own output; reconnect the steps in Data Wrangler",
            node,
        )

    # ------------------------------------------------------------------ sources

    def sources(self, nodes: Mapping[str, _Node]) -> tuple[FlowSource, ...]:
        found = [self.source(n) for n in nodes.values() if n.type == "SOURCE"]
        if not found:
            raise self.error(
                "the flow has no source node",
                "import the model's raw data from Amazon S3 in the flow",
            )
        if len(found) > MAX_SOURCES:
            raise self.error(
                f"the flow has {len(found)} sources; a processing job takes at most "
                f"{MAX_SOURCES + 1} inputs, one of them the flow file",
                f"use at most {MAX_SOURCES} sources",
            )
        seen: dict[str, FlowSource] = {}
        for source in found:
            if source.name in seen:
                raise self.error(
                    f"two sources are called {source.name!r} (nodes {seen[source.name].node_id} "
                    f"and {source.node_id}); each becomes a processing input named after it",
                    "give every imported dataset its own name in Data Wrangler",
                    nodes[source.node_id],
                )
            seen[source.name] = source
        return tuple(found)

    def source(self, node: _Node) -> FlowSource:
        definition = node.parameters.get("dataset_definition")
        if not isinstance(definition, dict):
            raise self.error(
                "a source has parameters.dataset_definition",
                "import the data again in Data Wrangler",
                node,
            )
        kind = definition.get("datasetSourceType")
        if node.base != "sagemaker.s3_source" or kind not in (None, "S3"):
            raise self.error(
                f"the source reads from {kind or node.operator}, not Amazon S3; the "
                "pipeline runs a flow on the model's raw data in S3 (it replaces every "
                "source with that data)",
                "import the model's raw data from Amazon S3 (CSV or Parquet) in the flow instead",
                node,
            )
        name = definition.get("name")
        problem = _source_name_problem(name)
        if problem:
            raise self.error(
                f"dataset name {name!r} cannot name its processing input: {problem}",
                "rename the dataset in Data Wrangler, e.g. after its file (breast-cancer.csv)",
                node,
            )
        context = definition.get("s3ExecutionContext")
        if not isinstance(context, dict):
            raise self.error(
                "an S3 source has dataset_definition.s3ExecutionContext",
                "import the data again in Data Wrangler",
                node,
            )
        uri = context.get("s3Uri") or ""
        if not isinstance(uri, str) or (uri and not uri.startswith("s3://")):
            raise self.error(
                f"s3Uri {uri!r} is not an s3:// URI", "import the data from S3 again", node
            )
        content_type = str(context.get("s3ContentType", "")).upper()
        if content_type not in SOURCE_CONTENT_TYPES:
            raise self.error(
                f"the source reads {context.get('s3ContentType')!r} files; the model's raw "
                f"data is CSV or Parquet",
                "import the raw data as CSV or Parquet",
                node,
            )
        has_header = bool(context.get("s3HasHeader", content_type == "PARQUET"))
        if content_type == "CSV":
            self.csv_options(node, context, has_header)
        data_type = context.get("s3DataType") or "S3Prefix"
        if data_type != "S3Prefix":
            raise self.error(
                f"s3DataType is {data_type!r}; the pipeline mounts the raw data as an S3 prefix",
                "import the raw data from an S3 prefix or file, not a manifest",
                node,
            )
        return FlowSource(node.id, str(name), uri, content_type, has_header)

    def csv_options(self, node: _Node, context: Mapping[str, Any], has_header: bool) -> None:
        """The platform's raw CSV files are comma-delimited, with a header row first."""
        if not has_header:
            raise self.error(
                "the CSV source is read without a header row, but the model's raw CSV "
                "files start with one (the header would be read as data)",
                "tick 'First row is header' when importing the data",
                node,
            )
        delimiter = context.get("s3FieldDelimiter") or ","
        if delimiter != ",":
            raise self.error(
                f"the CSV source is read with delimiter {delimiter!r}; the model's raw CSV "
                "files are comma-delimited",
                "import the data with the comma delimiter",
                node,
            )
        if context.get("s3SkipLines"):
            raise self.error(
                f"the CSV source skips {context['s3SkipLines']} line(s) before the header; "
                "the model's raw CSV files start with the header",
                "set 'Skip lines' to 0 when importing the data",
                node,
            )

    # ------------------------------------------------------------------ the export

    def export(self, nodes: Mapping[str, _Node]) -> tuple[_Ref, _Node | None]:
        """What the job exports (a node's output), and the destination node if any."""
        destinations = [n for n in nodes.values() if n.type == "DESTINATION"]
        if len(destinations) > 1:
            raise self.error(
                f"the flow has {len(destinations)} destination nodes ("
                + ", ".join(f"{d.id} ({d.operator})" for d in destinations)
                + "); the pipeline exports one dataset, Preprocess's raw data",
                "keep one destination node (after the step whose data the model trains on) "
                "and delete the others",
            )
        if destinations:
            destination = destinations[0]
            self.destination(destination)
            return destination.inputs[0], destination
        consumed = {
            (r.node_id, r.output)
            for n in nodes.values()
            if n.type != "VISUALIZATION"
            for r in n.inputs
        }
        leaves = [
            _Ref(n.id, output)
            for n in nodes.values()
            if n.type in ("SOURCE", "TRANSFORM", "DATASET")
            for output in n.outputs
            if (n.id, output) not in consumed
        ]
        if len(leaves) != 1:
            listed = ", ".join(
                f"{ref.node_id} ({nodes[ref.node_id].operator}) output {ref.output!r}"
                for ref in leaves
            )
            raise self.error(
                f"the flow has {len(leaves)} datasets that no step consumes"
                + (f" ({listed})" if leaves else "")
                + "; the pipeline exports exactly one",
                "add an Amazon S3 destination node after the step whose data the model "
                "trains on (Add destination > Amazon S3), or delete the other branches",
            )
        return leaves[0], None

    def destination(self, node: _Node) -> None:
        if "s3_destination" not in node.base:
            raise self.error(
                "only an Amazon S3 destination can feed Preprocess",
                "replace the destination with an Amazon S3 destination",
                node,
            )
        if len(node.inputs) != 1:
            raise self.error(
                f"a destination has one input, not {len(node.inputs)}",
                "connect the destination to the step to export",
                node,
            )
        config = node.parameters.get("output_config") or {}
        if not isinstance(config, dict):
            raise self.error(
                "parameters.output_config is not an object", "add the destination again", node
            )
        partition = config.get("partition_config") or {}
        if isinstance(partition, dict) and partition.get("partition_by"):
            raise self.error(
                f"the destination partitions its output by {partition['partition_by']!r}, "
                "which moves those columns out of the files into directory names; "
                "Preprocess reads columns from the files",
                "remove the destination's partition columns",
                node,
            )

    def content_type(self, destination: _Node | None) -> str:
        if destination is None:
            return OUTPUT_CONTENT_TYPES[0]
        config = destination.parameters.get("output_config") or {}
        value = str(config.get("output_content_type") or OUTPUT_CONTENT_TYPES[0]).upper()
        if value not in OUTPUT_CONTENT_TYPES:
            raise self.error(
                f"the destination writes {value}; Preprocess reads CSV or Parquet",
                "set the destination's file type to CSV or Parquet",
                destination,
            )
        return value


def _source_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a processing input and its directory, or None."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name != name.strip():
        return "it starts or ends with a space"
    if "/" in name or "\\" in name:
        return "it contains a slash, which would make it a path"
    if name in (".", ".."):
        return "it is a relative directory name"
    if _CONTROL_CHARS.search(name):
        return "it contains a control character"
    if name in RESERVED_SOURCE_NAMES:
        return f"{source_dir(name)} is the job's {name} directory"
    if len(source_dir(name)) > MAX_LOCAL_PATH:
        return f"{source_dir(name)} is longer than {MAX_LOCAL_PATH} characters"
    return None


# --------------------------------------------------------------------------- columns


class _Columns:
    """Works out each node's output columns from its inputs' columns."""

    def __init__(self, reader: _Reader, nodes: Mapping[str, _Node]) -> None:
        self.reader = reader
        self.nodes = nodes

    def error(self, node: _Node, problem: str, fix: str) -> FlowError:
        return self.reader.error(problem, fix, node)

    def known(self, node: _Node, frame: _Frame) -> tuple[str, ...]:
        if isinstance(frame, _Unknown):
            raise self.error(
                node,
                f"the columns entering this step are not known offline: {frame.reason}",
                _REFRESH_SCHEMA_FIX,
            )
        return frame

    def of(self, order: Sequence[str], export: _Ref) -> tuple[str, ...]:
        """The exported dataset's columns (only the export's upstream nodes are read)."""
        needed = {export.node_id}
        for node_id in reversed(order):
            if node_id in needed:
                needed.update(r.node_id for r in self.nodes[node_id].inputs)
        frames: dict[tuple[str, str], _Frame] = {}
        for node_id in order:
            if node_id not in needed:
                continue
            node = self.nodes[node_id]
            inputs = [frames[(r.node_id, r.output)] for r in node.inputs]
            result = self.apply(node, inputs)
            for output in node.outputs:
                frames[(node.id, output)] = result
        columns = self.known(self.nodes[export.node_id], frames[(export.node_id, export.output)])
        duplicates = [c for c, n in Counter(c.lower() for c in columns).items() if n > 1]
        if duplicates:
            raise self.error(
                self.nodes[export.node_id],
                f"the exported dataset has more than one column named {duplicates[0]!r}",
                "rename or drop the duplicates before the export",
            )
        return columns

    def apply(self, node: _Node, inputs: list[_Frame]) -> _Frame:
        if node.type == "SOURCE":
            name = node.parameters.get("dataset_definition", {}).get("name")
            return _Unknown(
                f"source {name!r} (node {node.id}) records no columns, and no Data types "
                "step with a recorded schema follows it"
            )
        if node.type == "VISUALIZATION":
            raise self.error(
                node,
                "an analysis is upstream of the exported dataset; analyses produce charts, "
                "not data",
                "export a transform step, not an analysis",
            )
        handler = _HANDLERS.get(node.base)
        if handler is None:
            reason = _UNTRACKABLE.get(node.base, "its effect on the columns is not known here")
            raise self.error(
                node,
                f"operator {node.operator} is not supported: {reason}. Supported operators "
                f"(mlops/data_wrangler.py SUPPORTED_OPERATORS): {', '.join(SUPPORTED_OPERATORS)}",
                "replace this step with supported steps, or move this transformation into "
                "the model's Preprocess code",
            )
        expected = 2 if node.base in _TWO_INPUTS else 1
        if len(inputs) != expected:
            raise self.error(
                node,
                f"it has {len(inputs)} inputs; this operator takes {expected}",
                "reconnect the step in Data Wrangler",
            )
        return handler(self, node, inputs)

    # ------------------------------------------------------------------ helpers

    def sub(self, node: _Node, params: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = params.get(key)
        if not isinstance(value, dict):
            raise self.error(
                node, f"parameters.{key} is missing", "configure the step again in Data Wrangler"
            )
        return value

    def choice(self, node: _Node, params: Mapping[str, Any], key: str, allowed: Any) -> str:
        value = params.get(key)
        if not isinstance(value, str) or value not in allowed:
            raise self.error(
                node,
                f"{key} {value!r} is not supported (supported: {', '.join(allowed)})",
                "use a supported option, or move this transformation into the model's "
                "Preprocess code",
            )
        return str(value)

    def names(self, node: _Node, params: Mapping[str, Any], key: str) -> list[str]:
        """A parameter holding one column name or a list of them."""
        value = params.get(key)
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise self.error(
                node, f"{key} {value!r} names no column", "choose the columns in Data Wrangler"
            )
        return [str(v) for v in values]

    def require(self, node: _Node, columns: Sequence[str], names: Sequence[str]) -> None:
        missing = [n for n in names if n not in columns]
        if missing:
            raise self.error(
                node,
                f"column {missing[0]!r} is not among the columns entering this step "
                f"({', '.join(columns)})",
                "choose a column that exists at this step",
            )

    def columnwise(
        self,
        node: _Node,
        columns: tuple[str, ...],
        params: Mapping[str, Any],
        default_suffix: str | None = None,
    ) -> tuple[str, ...]:
        """An operator on ``input_column`` (one or several) that writes in place, or into
        ``output_column`` (``<output_column>_<input>`` for several inputs), or, with
        ``default_suffix``, into ``<input><default_suffix>`` when no output is named."""
        inputs = self.names(node, params, "input_column")
        self.require(node, columns, inputs)
        for key in ("output_prefix", "output_column_prefix"):
            if params.get(key):
                raise self.error(
                    node,
                    f"{key} makes columns whose names are not known here",
                    "write the result into output_column, or in place",
                )
        output = params.get("output_column") or ""
        if not isinstance(output, str):
            raise self.error(
                node, f"output_column {output!r} is not a name", "name the output column"
            )
        if not output and default_suffix is None:
            return columns
        for name in inputs:
            if output:
                new = output if len(inputs) == 1 else f"{output}_{name}"
            else:
                new = f"{name}{default_suffix}"
            columns = _with_column(columns, new)
        return columns


def _with_column(columns: tuple[str, ...], name: str) -> tuple[str, ...]:
    """Spark's ``withColumn``: replace the column of that name (names compare without
    case, as Spark's default resolver does) in place, else append it."""
    for index, existing in enumerate(columns):
        if existing.lower() == name.lower():
            return (*columns[:index], name, *columns[index + 1 :])
    return (*columns, name)


def _dedupe_joined(columns: list[str]) -> tuple[str, ...]:
    """Names a join produces twice get ``_0`` (first), ``_1`` (second), ...; ``_dup`` is
    appended while such a name is already taken. Names compare without case."""
    lowered = [c.lower() for c in columns]
    counts = Counter(lowered)
    seen: Counter[str] = Counter()
    result = []
    for original, low in zip(columns, lowered, strict=True):
        if counts[low] == 1:
            result.append(original)
            continue
        suffix = f"_{seen[low]}"
        seen[low] += 1
        while f"{low}{suffix}" in counts:
            suffix += "_dup"
        result.append(f"{original}{suffix}")
    return tuple(result)


# --------------------------------------------------------------------------- operators


def _infer_and_cast(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    schema = node.trained.get("schema")
    if not isinstance(schema, dict) or not schema:
        return inputs[0]  # types are inferred at run time; the names stay the input's
    columns = tuple(schema)
    if not isinstance(inputs[0], _Unknown) and set(inputs[0]) != set(columns):
        entering = set(inputs[0])
        raise ctx.error(
            node,
            "its recorded schema does not name the columns entering it (only in the "
            f"schema: {sorted(set(columns) - entering)}; only entering: "
            f"{sorted(entering - set(columns))}), which fails the job",
            _REFRESH_SCHEMA_FIX,
        )
    return columns


def _manage_columns(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    columns = ctx.known(node, inputs[0])
    params = node.parameters
    operator = ctx.choice(node, params, "operator", _MANAGE_COLUMNS)
    sub = ctx.sub(node, params, _MANAGE_COLUMNS[operator])
    if operator == "Drop column":
        drop = ctx.names(node, sub, "column_to_drop")
        ctx.require(node, columns, drop)
        return tuple(c for c in columns if c not in drop)
    if operator == "Duplicate column":
        source, new = sub.get("input_column"), sub.get("new_name")
        ctx.require(node, columns, ctx.names(node, sub, "input_column"))
        if not isinstance(new, str) or not new or new == source:
            raise ctx.error(
                node, f"new_name {new!r} is not a new column name", "name the copy differently"
            )
        return _with_column(columns, new)
    if operator == "Rename column":
        return _rename(ctx, node, columns, sub)
    if operator == "Move column":
        return _move(ctx, node, columns, sub)
    left, right = sub.get("left_column"), sub.get("right_column")
    ctx.require(node, columns, [*ctx.names(node, sub, "left_column")])
    ctx.require(node, columns, [*ctx.names(node, sub, "right_column")])
    output = sub.get("output_column") or f"{left}_{right}"
    return _with_column(columns, str(output))


_MANAGE_COLUMNS = {
    "Drop column": "drop_column_parameters",
    "Duplicate column": "duplicate_column_parameters",
    "Rename column": "rename_column_parameters",
    "Move column": "move_column_parameters",
    "Concatenate columns": "concat_columns_parameters",
}


def _rename(
    ctx: _Columns, node: _Node, columns: tuple[str, ...], sub: Mapping[str, Any]
) -> tuple[str, ...]:
    pairs = list(sub.get("columns_to_rename") or [])
    single = {"input_column": sub.get("input_column"), "new_name": sub.get("new_name")}
    if not pairs:
        pairs = [single]
    elif single["input_column"] and single["new_name"]:
        pairs.append(single)
    for pair in pairs:
        old = pair.get("input_column") if isinstance(pair, dict) else None
        new = pair.get("new_name") if isinstance(pair, dict) else None
        ctx.require(node, columns, ctx.names(node, {"input_column": old}, "input_column"))
        if not isinstance(new, str) or not new or new == old:
            raise ctx.error(
                node, f"new_name {new!r} for {old!r} is not a new name", "name the column"
            )
        clash = [c for c in columns if c != old and c.lower() == new.lower()]
        if clash:
            raise ctx.error(
                node,
                f"renaming {old!r} to {new!r} makes two columns of that name ({clash[0]!r} exists)",
                f"drop or rename {clash[0]!r} first, or choose another name",
            )
        columns = tuple(new if c == old else c for c in columns)
    return columns


_MOVES = {
    "Move to start": "move_to_start_parameters",
    "Move to end": "move_to_end_parameters",
    "Move to index": "move_to_index_parameters",
    "Move after": "move_after_parameters",
    "Move before": "move_before_parameters",
}


def _move(
    ctx: _Columns, node: _Node, columns: tuple[str, ...], sub: Mapping[str, Any]
) -> tuple[str, ...]:
    move_type = ctx.choice(node, sub, "move_type", _MOVES)
    params = ctx.sub(node, sub, _MOVES[move_type])
    moved = ctx.names(node, params, "column_to_move")
    ctx.require(node, columns, moved)
    moved = sorted(set(moved), key=columns.index)  # moved columns keep their order
    rest = [c for c in columns if c not in moved]
    if move_type == "Move to start":
        index = 0
    elif move_type == "Move to end":
        index = len(rest)
    elif move_type == "Move to index":
        raw = params.get("index")
        try:
            index = -1 if isinstance(raw, bool) else int(str(raw))
        except ValueError:
            index = -1
        if not 0 <= index < len(columns):
            raise ctx.error(
                node,
                f"index {params.get('index')!r} is not between 0 and {len(columns) - 1}",
                "choose an index within the columns",
            )
    else:
        target = params.get("target_column")
        if target in moved:
            raise ctx.error(
                node, f"target column {target!r} is itself moved", "choose another target"
            )
        ctx.require(node, rest, ctx.names(node, params, "target_column"))
        index = rest.index(str(target)) + (1 if move_type == "Move after" else 0)
    return (*rest[:index], *moved, *rest[index:])


_IMPUTE_TYPES = {"Numeric": "numeric_parameters", "Categorical": "categorical_parameters"}


def _handle_missing(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    columns = ctx.known(node, inputs[0])
    params = node.parameters
    operator = ctx.choice(node, params, "operator", _HANDLE_MISSING)
    if operator == "Drop missing":
        sub = params.get(_HANDLE_MISSING[operator])
        sub = sub if isinstance(sub, dict) else {}
        rows = sub.get("drop_rows_parameters")
        column = sub.get("input_column") or (
            rows.get("input_column") if isinstance(rows, dict) else None
        )
        if column:
            ctx.require(node, columns, ctx.names(node, {"input_column": column}, "input_column"))
        return columns
    sub = ctx.sub(node, params, _HANDLE_MISSING[operator])
    if operator == "Impute":
        kind = ctx.choice(node, sub, "column_type", _IMPUTE_TYPES)
        return ctx.columnwise(node, columns, ctx.sub(node, sub, _IMPUTE_TYPES[kind]))
    suffix = "_indicator" if operator == "Add indicator for missing" else None
    return ctx.columnwise(node, columns, sub, default_suffix=suffix)


_HANDLE_MISSING = {
    "Impute": "impute_parameters",
    "Fill missing": "fill_missing_parameters",
    "Add indicator for missing": "add_indicator_for_missing_parameters",
    "Drop missing": "drop_missing_parameters",
}


def _parameters_key(option: str) -> str:
    """Data Wrangler's key for an option's parameters: ``Remove symbols`` ->
    ``remove_symbols_parameters``."""
    return re.sub(r"[^a-z0-9]+", "_", option.lower()).strip("_") + "_parameters"


_OUTLIERS = (
    "Standard deviation numeric outliers",
    "Robust standard deviation numeric outliers",
    "Quantile numeric outliers",
    "Min-max numeric outliers",
    "Replace rare values",
)


def _handle_outliers(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    columns = ctx.known(node, inputs[0])
    operator = ctx.choice(node, node.parameters, "operator", _OUTLIERS)
    return ctx.columnwise(node, columns, ctx.sub(node, node.parameters, _parameters_key(operator)))


_SCALERS = {
    "Min-max scaler": "min_max_scaler_parameters",
    "Standard scaler": "standard_scaler_parameters",
}


def _process_numeric(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    columns = ctx.known(node, inputs[0])
    ctx.choice(node, node.parameters, "operator", ("Scale values",))
    sub = ctx.sub(node, node.parameters, "scale_values_parameters")
    scaler = ctx.choice(node, sub, "scaler", _SCALERS)
    return ctx.columnwise(node, columns, ctx.sub(node, sub, _SCALERS[scaler]))


def _format_string(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    columns = ctx.known(node, inputs[0])
    operator = node.parameters.get("operator")
    if not isinstance(operator, str) or not operator:
        raise ctx.error(node, "parameters.operator is missing", "configure the step again")
    return ctx.columnwise(node, columns, ctx.sub(node, node.parameters, _parameters_key(operator)))


def _encode_categorical(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    columns = ctx.known(node, inputs[0])
    if node.parameters.get("operator") != "Ordinal encode":
        raise ctx.error(
            node,
            f"{node.parameters.get('operator')!r} is not supported: one-hot and similarity "
            "encodings make columns that depend on the data (or vector columns a CSV file "
            "cannot hold)",
            "leave the column as it is and declare it categorical in the model's schema: "
            "Preprocess encodes categorical features itself",
        )
    return ctx.columnwise(
        node, columns, ctx.sub(node, node.parameters, "ordinal_encode_parameters")
    )


def _custom_formula(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    columns = ctx.known(node, inputs[0])
    output = node.parameters.get("output_column")
    if not isinstance(output, str) or not output:
        raise ctx.error(node, "output_column is missing", "name the formula's output column")
    return _with_column(columns, output)


_ROW_OPERATORS = {
    "sagemaker.spark.manage_rows": ("Shuffle", "Sort", "Drop duplicates", "Drop empty", "Filter"),
    "sagemaker.spark.balance_data": ("Random oversample", "Random undersample", "SMOTE"),
}


def _rows_only(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    ctx.choice(node, node.parameters, "operator", _ROW_OPERATORS[node.base])
    return inputs[0]


def _pass_through(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    return inputs[0]


def _join(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    left, right = ctx.known(node, inputs[0]), ctx.known(node, inputs[1])
    params = node.parameters
    join_type = params.get("join_type")
    if join_type not in _VALID_JOIN_TYPES:
        raise ctx.error(
            node,
            f"join_type {join_type!r} is not a join type ({', '.join(sorted(_VALID_JOIN_TYPES))})",
            "choose the join type again in Data Wrangler",
        )
    if node.base == "sagemaker.spark.join_multi_keys":
        keys = params.get("join_keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
            raise ctx.error(node, "join_keys names no key columns", "choose the join keys")
        pairs = [(k.get("left"), k.get("right")) for k in keys]
    else:
        pairs = [(params.get("left_column"), params.get("right_column"))]
    for left_key, right_key in pairs:
        if join_type == "cross" and not (left_key or right_key):
            continue
        ctx.require(node, left, ctx.names(node, {"left": left_key}, "left"))
        ctx.require(node, right, ctx.names(node, {"right": right_key}, "right"))
    if join_type in _LEFT_ONLY_JOIN_TYPES:
        return left
    return _dedupe_joined([*left, *right])


def _concatenate(ctx: _Columns, node: _Node, inputs: list[_Frame]) -> _Frame:
    left, right = ctx.known(node, inputs[0]), ctx.known(node, inputs[1])
    indicator = [k for k, v in node.parameters.items() if "indicator" in k.lower() and v]
    if indicator:
        raise ctx.error(
            node,
            f"{indicator[0]} adds a column whose name the flow does not record",
            "clear 'Add column to indicate source dataframe', or add the column with a "
            "Custom formula step on each input before concatenating",
        )
    if left != right:
        raise ctx.error(
            node,
            f"the inputs have different columns (left: {', '.join(left)}; right: "
            f"{', '.join(right)}), so the result's columns are not known here",
            "give both inputs the same columns, in the same order, before concatenating",
        )
    return left


_HANDLERS = {
    "sagemaker.spark.infer_and_cast_type": _infer_and_cast,
    "sagemaker.spark.manage_columns": _manage_columns,
    "sagemaker.spark.handle_missing": _handle_missing,
    "sagemaker.spark.handle_outliers": _handle_outliers,
    "sagemaker.spark.process_numeric": _process_numeric,
    "sagemaker.spark.format_string": _format_string,
    "sagemaker.spark.encode_categorical": _encode_categorical,
    "sagemaker.spark.custom_formula": _custom_formula,
    "sagemaker.spark.manage_rows": _rows_only,
    "sagemaker.spark.balance_data": _rows_only,
    "sagemaker.spark.split": _pass_through,
    "sagemaker.spark.join_tables": _join,
    "sagemaker.spark.join_multi_keys": _join,
    "sagemaker.spark.concatenate_datasets": _concatenate,
    "sagemaker.dataset.identity": _pass_through,
}
_TWO_INPUTS = frozenset(
    {
        "sagemaker.spark.join_tables",
        "sagemaker.spark.join_multi_keys",
        "sagemaker.spark.concatenate_datasets",
    }
)


# --------------------------------------------------------------------------- public API


def load_flow(path: Path) -> Flow:
    """Read and check the flow at ``path`` and work out how a processing job runs it.

    Raises:
        FlowError: naming the file, the node (id and operator) and the problem and its
            fix: not JSON; metadata.version missing or unsupported; a node id used twice;
            an input naming a node or output that does not exist; a cycle; no source; a
            source that is not S3 (or not CSV/Parquet, or a CSV read without a header or
            not comma-delimited); two sources of one name, or a name that cannot name a
            processing input; not exactly one dataset to export; an upstream operator
            whose output columns cannot be known offline.
    """
    path = Path(path)
    reader = _Reader(path)
    doc = reader.document()
    nodes = reader.nodes(doc)
    order = reader.graph_order(nodes)
    sources = reader.sources(nodes)
    export, destination = reader.export(nodes)
    content_type = reader.content_type(destination)
    exported = nodes[export.node_id]
    if exported.type == "VISUALIZATION":
        raise reader.error(
            "the exported node is an analysis, which produces charts, not data",
            "export the transform step the analysis reads",
            destination or exported,
        )
    columns = _Columns(reader, nodes).of(order, export)
    flow = Flow(
        path=path,
        sources=sources,
        output_node_id=export.node_id,
        output_name=f"{export.node_id}.{export.output}",
        output_columns=columns,
        output_content_type=content_type,
        destination_node_id=destination.id if destination else None,
    )
    if _CONTROL_CHARS.search(flow.output_name) or any(
        len(arg) > MAX_CONTAINER_ARGUMENT for arg in job_arguments(flow)
    ):
        raise reader.error(
            f"output name {flow.output_name!r} cannot name the processing output (a "
            f"container argument holds at most {MAX_CONTAINER_ARGUMENT} characters)",
            "give the exported node a shorter id and output name",
            exported,
        )
    return flow


def schema_problems(flow: Flow, schema: contract.Schema) -> list[str]:
    """Why the flow's output cannot be the model's raw data, one message per column.

    Mirrors how Preprocess reads raw data (``steplib.rawio``): every column of
    ``schema.raw_columns()`` (record id and event time unless derived, target, features,
    under the raw data's names) must be present, compared exactly; other columns are not
    read and the order does not matter, so neither is a problem.
    """
    present = set(flow.output_columns)
    roles = {
        schema.source_of(schema.record_id_column): (
            "record id column",
            f'or declare the id derived in the schema ("derived": {{"recordId": '
            f'"{contract.ROW_HASH}"}})',
        ),
        schema.source_of(schema.event_time_column): (
            "event time column",
            'or give every row a fixed time in the schema ("derived": {"eventTime": ...})',
        ),
        schema.source_of(schema.target_name): (
            "target column",
            "(the label the model learns: rename the flow's label column to it)",
        ),
    }
    problems = []
    for column in schema.raw_columns():
        if column in present:
            continue
        role, alternative = roles.get(column, ("feature", "or remove the feature from the schema"))
        close = [c for c in flow.output_columns if c.lower() == column.lower()]
        close = close or get_close_matches(column, flow.output_columns, n=1, cutoff=0.8)
        if close:
            fix = (
                f"rename {close[0]!r} to {column!r} in the flow (Manage columns > Rename "
                "column, before the export), or map it in the schema's sourceColumns"
            )
        else:
            fix = f"make the flow output a column {column!r} {alternative}"
        problems.append(
            f"{flow.path}: the exported dataset (node {flow.output_node_id}) has no "
            f"{role} {column!r}, which Preprocess requires. Fix: {fix}"
        )
    return problems
