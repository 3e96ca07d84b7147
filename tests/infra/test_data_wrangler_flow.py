"""Data Wrangler flows read offline: structure checks, column tracking, schema comparison."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops import data_wrangler as dw
from pipeline_steps.steplib import contract

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "flows" / "breast-cancer.flow"


def _schema(model: str) -> contract.Schema:
    doc = json.loads((ROOT / "data" / "schemas" / f"{model}.json").read_text())
    return contract.parse_schema(doc, model)


# --------------------------------------------------------------------------- flow builders


def _out(*names: str) -> list[dict[str, str]]:
    return [{"name": n} for n in names or ("default",)]


def _in(*refs: str) -> list[dict[str, str]]:
    """Inputs ``node`` or ``node:output``."""
    pairs = [[*r.split(":"), "default"][:2] for r in refs]
    return [{"name": "df", "node_id": n, "output_name": o} for n, o in pairs]


def source(node_id: str, name: str = "data.csv", **context: Any) -> dict[str, Any]:
    execution = {"s3Uri": f"s3://bucket/{name}", "s3ContentType": "csv", "s3HasHeader": True}
    execution.update(context)
    return {
        "node_id": node_id,
        "type": "SOURCE",
        "operator": "sagemaker.s3_source_0.1",
        "parameters": {
            "dataset_definition": {
                "datasetSourceType": "S3",
                "name": name,
                "s3ExecutionContext": execution,
            }
        },
        "inputs": [],
        "outputs": _out(),
    }


def types(node_id: str, reads: str, columns: list[str] | None) -> dict[str, Any]:
    trained = {"schema": {c: "float" for c in columns}} if columns is not None else {}
    return {
        "node_id": node_id,
        "type": "TRANSFORM",
        "operator": "sagemaker.spark.infer_and_cast_type_0.1",
        "parameters": {},
        "trained_parameters": trained,
        "inputs": _in(reads),
        "outputs": _out(),
    }


def step(node_id: str, operator: str, params: dict[str, Any], *reads: str, **extra: Any):
    return {
        "node_id": node_id,
        "type": extra.pop("type", "TRANSFORM"),
        "operator": f"sagemaker.spark.{operator}_0.1",
        "parameters": params,
        "inputs": _in(*reads),
        "outputs": extra.pop("outputs", _out()),
    }


def destination(node_id: str, reads: str, **config: Any) -> dict[str, Any]:
    output_config = {"output_path": "s3://bucket/out/", "output_content_type": "CSV"}
    output_config.update(config)
    return step(
        node_id, "s3_destination", {"output_config": output_config}, reads, type="DESTINATION"
    )


def manage(node_id: str, reads: str, operator: str, **params: Any) -> dict[str, Any]:
    key = dw._MANAGE_COLUMNS[operator]
    return step(node_id, "manage_columns", {"operator": operator, key: params}, reads)


def write(tmp_path: Path, *nodes: dict[str, Any], version: Any = 1) -> Path:
    path = tmp_path / "test.flow"
    doc = {"metadata": {"version": version, "disable_limits": False}, "nodes": list(nodes)}
    path.write_text(json.dumps(doc))
    return path


def columns_of(tmp_path: Path, *nodes: dict[str, Any]) -> tuple[str, ...]:
    return dw.load_flow(write(tmp_path, *nodes)).output_columns


ABC = ["a", "b", "c"]


def base(*after: dict[str, Any], columns: list[str] = ABC) -> list[dict[str, Any]]:
    """A source ``src`` with Data types ``t`` recording ``columns``, then ``after``."""
    return [source("src"), types("t", "src", columns), *after]


# --------------------------------------------------------------------------- the fixture


def test_fixture_loads_with_its_sources_output_and_columns() -> None:
    flow = dw.load_flow(FIXTURE)
    assert flow.sources == (
        dw.FlowSource(
            node_id="3f1c2a9e-6b0d-4c1e-9a57-0d8e4b2f7c11",
            name="breast-cancer.csv",
            s3_uri="s3://example-mlops-raw-data/breast-cancer/breast-cancer.csv",
            content_type="CSV",
            has_header=True,
        ),
    )
    assert flow.sources[0].local_path == "/opt/ml/processing/breast-cancer.csv"
    assert flow.output_node_id == "1b6d9f4a-7e3c-45a2-8d0b-3c5e7f9a2b16"
    assert flow.output_name == "1b6d9f4a-7e3c-45a2-8d0b-3c5e7f9a2b16.default"
    assert flow.destination_node_id == "9f2e4a6c-8d1b-4f3e-a5c7-0e2b4d6f8a31"
    assert flow.output_content_type == "CSV"
    assert flow.output_columns == tuple(_schema("breast-cancer").raw_columns())
    assert "mean concave points" not in flow.output_columns
    assert "sample_batch" not in flow.output_columns


def test_fixture_fits_the_breast_cancer_schema() -> None:
    assert dw.schema_problems(dw.load_flow(FIXTURE), _schema("breast-cancer")) == []


def test_a_mismatching_schema_names_each_missing_column() -> None:
    schema = _schema("diabetes")
    problems = dw.schema_problems(dw.load_flow(FIXTURE), schema)
    missing = [c for c in schema.raw_columns() if c not in ("record_id", "event_time")]
    assert len(problems) == len(missing)
    assert all(str(FIXTURE) in p and "Fix:" in p for p in problems)
    assert "target column 'disease_progression'" in problems[0]
    assert any("feature 'bmi'" in p for p in problems)


def test_a_column_differing_in_case_is_suggested_for_renaming(tmp_path: Path) -> None:
    nodes = base(manage("r", "t", "Rename column", input_column="a", new_name="Diagnosis"))
    flow = dw.load_flow(write(tmp_path, *nodes, destination("d", "r")))
    schema = contract.Schema("b", "c", "diagnosis", contract.CATEGORICAL, ())
    (problem,) = dw.schema_problems(flow, schema)
    assert "target column 'diagnosis'" in problem
    assert "rename 'Diagnosis' to 'diagnosis'" in problem


def test_processing_job_wiring() -> None:
    flow = dw.load_flow(FIXTURE)
    assert (dw.FLOW_INPUT_NAME, dw.FLOW_DIR, dw.OUTPUT_DIR) == (
        "flow",
        "/opt/ml/processing/flow",
        "/opt/ml/processing/output",
    )
    assert dw.source_dir("x.csv") == "/opt/ml/processing/x.csv"
    (argument,) = dw.job_arguments(flow)
    assert argument.startswith("--output-config '") and argument.endswith("'")
    assert json.loads(argument[len("--output-config '") : -1]) == {
        flow.output_name: {"content_type": "CSV"}
    }


# --------------------------------------------------------------------------- structure errors


def _cycle() -> list[dict[str, Any]]:
    return [
        source("src"),
        types("t", "src", ABC),
        step("j", "join_tables", {"join_type": "inner"}, "t", "k"),
        step("k", "manage_rows", {"operator": "Shuffle"}, "j"),
        destination("d", "k"),
    ]


def _athena() -> list[dict[str, Any]]:
    node = source("ath", "q")
    node["operator"] = "sagemaker.athena_source_0.1"
    node["parameters"]["dataset_definition"] = {
        "datasetSourceType": "Athena",
        "name": "q",
        "queryString": "SELECT 1",
    }
    return [node, types("t", "ath", ABC)]


STRUCTURE_ERRORS: dict[str, tuple[Callable[[], list[dict[str, Any]]], list[str]]] = {
    "duplicate node id": (
        lambda: base(step("t", "manage_rows", {"operator": "Shuffle"}, "src")),
        ["node t", "used twice"],
    ),
    "dangling input node": (
        lambda: base(step("x", "manage_rows", {"operator": "Shuffle"}, "nowhere")),
        ["node x (sagemaker.spark.manage_rows_0.1)", "'nowhere'", "not in the flow"],
    ),
    "dangling output name": (
        lambda: base(step("x", "manage_rows", {"operator": "Shuffle"}, "t:Train")),
        ["node x", "output 'Train' of node t"],
    ),
    "cycle": (_cycle, ["cycle", "j (sagemaker.spark.join_tables_0.1)", "k ("]),
    "two outputs": (
        lambda: base(
            step("x", "manage_rows", {"operator": "Shuffle"}, "t"),
            step("y", "manage_rows", {"operator": "Sort"}, "t"),
        ),
        ["2 datasets that no step consumes", "x (sagemaker.spark.manage_rows_0.1)", "y ("],
    ),
    "two destinations": (
        lambda: base(destination("d1", "t"), destination("d2", "t")),
        ["2 destination nodes", "d1 (sagemaker.spark.s3_destination_0.1)", "d2"],
    ),
    "no source": (
        lambda: [step("x", "manage_rows", {"operator": "Shuffle"})],
        ["no source node"],
    ),
    "non-S3 source": (
        _athena,
        ["node ath (sagemaker.athena_source_0.1)", "Athena", "replaces every source"],
    ),
    "custom code": (
        lambda: base(
            step("cc", "custom_code", {"operator": "Python (PySpark)"}, "t"),
            destination("d", "cc"),
        ),
        ["node cc (sagemaker.spark.custom_code_0.1)", "not supported", "Supported operators"],
    ),
    "one-hot encoding": (
        lambda: base(
            step(
                "oh",
                "encode_categorical",
                {
                    "operator": "One-hot encode",
                    "one_hot_encode_parameters": {"input_column": "a", "output_style": "Columns"},
                },
                "t",
            )
        ),
        ["node oh (sagemaker.spark.encode_categorical_0.1)", "depend on the data"],
    ),
    "source name 'flow'": (
        lambda: [source("src", "flow"), types("t", "src", ABC)],
        ["node src (sagemaker.s3_source_0.1)", "'flow'", "/opt/ml/processing/flow"],
    ),
    "source name with a slash": (
        lambda: [source("src", "raw/data.csv"), types("t", "src", ABC)],
        ["node src", "'raw/data.csv'", "slash"],
    ),
    "two sources of one name": (
        lambda: [
            source("s1"),
            source("s2"),
            types("t1", "s1", ["a"]),
            types("t2", "s2", ["b"]),
            step(
                "j",
                "join_tables",
                {"left_column": "a", "right_column": "b", "join_type": "inner"},
                "t1",
                "t2",
            ),
        ],
        ["two sources are called 'data.csv'", "s1", "s2"],
    ),
    "CSV without header": (
        lambda: [source("src", s3HasHeader=False), types("t", "src", ABC)],
        ["node src", "without a header row"],
    ),
    "columns never recorded": (
        lambda: [
            source("src"),
            types("t", "src", None),
            manage("x", "t", "Drop column", column_to_drop="a"),
        ],
        ["node x (sagemaker.spark.manage_columns_0.1)", "not known offline", "'data.csv'"],
    ),
    "column not there": (
        lambda: base(manage("x", "t", "Drop column", column_to_drop="zz")),
        ["node x", "column 'zz' is not among the columns entering this step (a, b, c)"],
    ),
    "rename onto an existing column": (
        lambda: base(manage("x", "t", "Rename column", input_column="a", new_name="B")),
        ["node x", "two columns of that name ('b' exists)"],
    ),
    "partitioned destination": (
        lambda: base(destination("d", "t", partition_config={"partition_by": ["a"]})),
        ["node d (sagemaker.spark.s3_destination_0.1)", "partitions"],
    ),
}


@pytest.mark.parametrize("case", list(STRUCTURE_ERRORS))
def test_structure_errors_name_the_node_and_the_fix(tmp_path: Path, case: str) -> None:
    nodes, expected = STRUCTURE_ERRORS[case]
    path = write(tmp_path, *nodes())
    with pytest.raises(dw.FlowError) as caught:
        dw.load_flow(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "Fix: " in message
    for text in expected:
        assert text in message


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.flow"
    path.write_text('{"metadata": {"version": 1}, "nodes": [')
    with pytest.raises(dw.FlowError, match=r"broken\.flow: is not valid JSON \(line 1"):
        dw.load_flow(path)


@pytest.mark.parametrize(
    ("version", "message"),
    [(None, "metadata.version is missing"), (2, "metadata.version 2 is not supported")],
)
def test_metadata_version(tmp_path: Path, version: Any, message: str) -> None:
    path = write(tmp_path, *base(), version=version)
    if version is None:
        doc = json.loads(path.read_text())
        del doc["metadata"]["version"]
        path.write_text(json.dumps(doc))
    with pytest.raises(dw.FlowError, match=message):
        dw.load_flow(path)


def test_flow_error_attributes(tmp_path: Path) -> None:
    with pytest.raises(dw.FlowError) as caught:
        dw.load_flow(write(tmp_path, *base(manage("x", "t", "Drop column", column_to_drop="zz"))))
    assert (caught.value.node_id, caught.value.operator) == (
        "x",
        "sagemaker.spark.manage_columns_0.1",
    )
    assert caught.value.fix


# --------------------------------------------------------------------------- column tracking


def test_rename_one_column_and_several(tmp_path: Path) -> None:
    one = manage("r", "t", "Rename column", input_column="a", new_name="x")
    assert columns_of(tmp_path, *base(one)) == ("x", "b", "c")
    several = manage(
        "r",
        "t",
        "Rename column",
        columns_to_rename=[{"input_column": "b", "new_name": "y"}],
        input_column="c",
        new_name="z",
    )
    assert columns_of(tmp_path, *base(several)) == ("a", "y", "z")


def test_drop_one_column_and_several(tmp_path: Path) -> None:
    assert columns_of(tmp_path, *base(manage("x", "t", "Drop column", column_to_drop="b"))) == (
        "a",
        "c",
    )
    drop = manage("x", "t", "Drop column", column_to_drop=["a", "c"])
    assert columns_of(tmp_path, *base(drop)) == ("b",)


def test_join_suffixes_shared_names_and_semi_joins_keep_the_left(tmp_path: Path) -> None:
    def flow(join_type: str, operator: str = "join_tables") -> list[dict[str, Any]]:
        params: dict[str, Any] = {"join_type": join_type}
        if operator == "join_tables":
            params.update(left_column="id", right_column="ID")
        else:
            params["join_keys"] = [{"left": "id", "right": "ID"}, {"left": "v", "right": "v"}]
        return [
            source("s1", "left.csv"),
            types("t1", "s1", ["id", "v", "id_0"]),
            source("s2", "right.csv"),
            types("t2", "s2", ["ID", "v", "w"]),
            step("j", operator, params, "t1", "t2"),
        ]

    assert columns_of(tmp_path, *flow("inner")) == ("id_0_dup", "v_0", "id_0", "ID_1", "v_1", "w")
    assert columns_of(tmp_path, *flow("leftouter", "join_multi_keys"))[-1] == "w"
    assert columns_of(tmp_path, *flow("left_semi")) == ("id", "v", "id_0")
    drop = manage("x", "j", "Drop column", column_to_drop=["id_0_dup", "ID_1"])
    loaded = dw.load_flow(write(tmp_path, *flow("inner"), drop))
    assert loaded.output_columns == ("v_0", "id_0", "v_1", "w")
    assert [s.name for s in loaded.sources] == ["left.csv", "right.csv"]


def test_custom_formula_adds_or_replaces_its_column(tmp_path: Path) -> None:
    def formula(output: str) -> dict[str, Any]:
        params = {"output_column": output, "formula": "a * 2"}
        return step("f", "custom_formula", params, "t")

    assert columns_of(tmp_path, *base(formula("a2"))) == ("a", "b", "c", "a2")
    assert columns_of(tmp_path, *base(formula("B"))) == ("a", "B", "c")


def test_move_duplicate_and_concatenate_columns(tmp_path: Path) -> None:
    to_start = {"move_type": "Move to start", "move_to_start_parameters": {"column_to_move": "c"}}
    assert columns_of(tmp_path, *base(manage("m", "t", "Move column", **to_start))) == (
        "c",
        "a",
        "b",
    )
    after = {
        "move_type": "Move after",
        "move_after_parameters": {"column_to_move": ["a", "b"], "target_column": "c"},
    }
    assert columns_of(tmp_path, *base(manage("m", "t", "Move column", **after))) == ("c", "a", "b")
    copy = manage("m", "t", "Duplicate column", input_column="a", new_name="a_copy")
    assert columns_of(tmp_path, *base(copy)) == ("a", "b", "c", "a_copy")
    concat = manage("m", "t", "Concatenate columns", left_column="a", right_column="b")
    assert columns_of(tmp_path, *base(concat)) == ("a", "b", "c", "a_b")


def test_handle_missing_in_place_or_into_new_columns(tmp_path: Path) -> None:
    def missing(operator: str, params: dict[str, Any]) -> dict[str, Any]:
        key = dw._HANDLE_MISSING[operator]
        return step("h", "handle_missing", {"operator": operator, key: params}, "t")

    fill = missing("Fill missing", {"input_column": ["a"], "fill_value": "0"})
    assert columns_of(tmp_path, *base(fill)) == tuple(ABC)
    into = missing("Fill missing", {"input_column": ["a", "b"], "output_column": "f"})
    assert columns_of(tmp_path, *base(into)) == ("a", "b", "c", "f_a", "f_b")
    indicator = missing("Add indicator for missing", {"input_column": "c"})
    assert columns_of(tmp_path, *base(indicator)) == ("a", "b", "c", "c_indicator")
    assert columns_of(tmp_path, *base(missing("Drop missing", {}))) == tuple(ABC)


def test_analyses_and_unexported_branches_are_ignored(tmp_path: Path) -> None:
    chart = step("v", "histogram", {"x_axis": "a"}, "t", type="VISUALIZATION")
    chart["operator"] = "sagemaker.visualizations.histogram_0.1"
    side = step("cc", "custom_code", {"operator": "Python (PySpark)"}, "t")
    rows = step("r", "manage_rows", {"operator": "Drop duplicates"}, "t")
    flow = dw.load_flow(write(tmp_path, *base(chart, side, rows, destination("d", "r"))))
    assert (flow.output_node_id, flow.output_columns) == ("r", tuple(ABC))
    # Without a destination the one unconsumed dataset is the export.
    assert dw.load_flow(write(tmp_path, *base(chart, rows))).output_name == "r.default"


def test_a_split_output_can_be_exported_and_parquet_is_kept(tmp_path: Path) -> None:
    split = step("s", "split", {"operator": "Randomized split"}, "t", outputs=_out("Train", "Test"))
    test = step("x", "manage_rows", {"operator": "Shuffle"}, "s:Test")
    flow = dw.load_flow(
        write(
            tmp_path, *base(split, test, destination("d", "s:Train", output_content_type="Parquet"))
        )
    )
    assert (flow.output_name, flow.output_content_type) == ("s.Train", "PARQUET")


def test_columns_recorded_after_a_row_step_are_known(tmp_path: Path) -> None:
    nodes = [
        source("src"),
        step("r", "manage_rows", {"operator": "Shuffle"}, "src"),
        types("t", "r", ABC),
        manage("x", "t", "Drop column", column_to_drop="a"),
    ]
    assert columns_of(tmp_path, *nodes) == ("b", "c")
