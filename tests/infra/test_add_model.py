"""``mlops add-model``'s inference rules and error paths (mlops/add_model.py, mlops/cli.py).

The rules are pure functions of a data profile (what ``pipeline_steps/profile_data.py``
prints); the command runs here with the step scripts stubbed by profiles and baselines, so
every error path is checked for its message and for leaving the project untouched. The
real scripts on real data run in tests/steps/test_steps_add_model.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cdk_helpers import ROOT

from mlops import add_model as rules
from mlops import cli
from mlops.add_model import AddModelError
from mlops.config import parse_config
from pipeline_steps.steplib import contract

ROWS = 100
WHEN = "2026-01-01T00:00:00Z"


def col(name: str, *, storage: str = "text", missing: int = 0, distinct: int = 50,
        values: list[str] | None = None, parsed: int | None = None, integers: int = 0,
        first_text: list[Any] | None = None, unique: bool = False, iso: bool = False) -> dict:  # fmt: skip
    """One column of a profile: by default 100 rows of text numbers."""
    present = ROWS - missing
    profile = {
        "name": name, "storage": storage, "missing": missing, "distinct": distinct,
        "values": values if values is not None else [str(i) for i in range(min(distinct, 20))],
        "unique": unique, "iso_times": iso,
    }  # fmt: skip
    if storage in ("text", "number"):
        profile["numbers"] = {
            "parsed": present if parsed is None else parsed,
            "integers": integers, "first_text": first_text,
        }  # fmt: skip
    return profile


def text(name: str, levels: list[str], **kw: Any) -> dict:
    return col(name, distinct=len(levels), values=sorted(levels), parsed=0,
               first_text=[1, levels[0]], **kw)  # fmt: skip


def profile(*columns: dict) -> dict:
    return {"source": "data.csv", "files": ["data.csv"], "rows": ROWS, "columns": list(columns)}


def propose(prof: dict, target: str = "y", **kw: Any) -> rules.Proposal:
    return rules.propose("model-a", prof, target, event_time=WHEN, **kw)


# --------------------------------------------------------------------------- column types


def test_numbers_are_numeric_and_text_is_categorical_with_the_evidence() -> None:
    p = propose(profile(col("x"), text("colour", ["blue", "red"]), text("y", ["a", "b"])))
    by_name = {c.name: c for c in p.columns}
    assert (by_name["x"].type, by_name["x"].evidence) == (
        "numeric", "all 100 values are numbers (50 distinct)"
    )  # fmt: skip
    assert by_name["colour"].type == "categorical"
    assert "'blue' on data row 1 is not a number" in by_name["colour"].evidence
    assert p.schema["features"] == [
        {"name": "x", "type": "numeric"}, {"name": "colour", "type": "categorical"}
    ]  # fmt: skip


def test_one_text_value_among_numbers_makes_a_column_categorical_and_says_where() -> None:
    mixed = col("x", parsed=99, first_text=[42, "n/a?"])
    (x,) = [c for c in propose(profile(mixed, text("y", ["a", "b"]))).columns if c.source == "x"]
    assert x.type == "categorical" and "'n/a?' on data row 42" in x.evidence


def test_parquet_numbers_booleans_and_times() -> None:
    p = propose(profile(
        col("n", storage="number"), col("flag", storage="bool", distinct=2),
        col("when", storage="time", iso=True, unique=True), text("y", ["a", "b"]),
        col("empty", missing=ROWS, distinct=0, parsed=0),
        text("name", [f"n{i}" for i in range(ROWS)], unique=True),
    ), time_column=None)  # fmt: skip
    kinds = {c.source: (c.role, c.type) for c in p.columns}
    assert kinds["n"] == ("feature", "numeric") and kinds["flag"] == ("feature", "categorical")
    assert kinds["empty"] == ("left out", None) and kinds["name"] == ("left out", None)
    evidence = {c.source: c.evidence for c in p.columns}
    assert "no values" in evidence["empty"] and "identifier" in evidence["name"]
    assert kinds["when"] == ("left out", None)  # a time, but not named like an event time


def test_drop_leaves_a_column_out() -> None:
    p = propose(profile(col("x"), col("leak"), text("y", ["a", "b"])), drop=["leak"])
    assert [f["name"] for f in p.schema["features"]] == ["x"]


# --------------------------------------------------------------------------- problem type


@pytest.mark.parametrize(
    ("target", "expected", "classes"),
    [
        (text("y", ["no", "yes"]), contract.BINARY, ("no", "yes")),
        (col("y", distinct=2, values=["0", "1"], integers=ROWS), contract.BINARY, ("0", "1")),
        (text("y", ["a", "b", "c"]), contract.MULTICLASS, ("a", "b", "c")),
        (col("y", distinct=3, values=["10", "2", "3"], integers=ROWS), contract.MULTICLASS,
         ("2", "3", "10")),  # numeric labels sort as numbers
        (col("y", distinct=11, integers=ROWS), contract.REGRESSION, ()),
        (col("y", distinct=3, integers=50), contract.REGRESSION, ()),  # not whole numbers
    ],
)  # fmt: skip
def test_the_problem_type_follows_the_target(target: dict, expected: str, classes: tuple) -> None:
    p = propose(profile(col("x"), target))
    assert (p.problem_type, p.classes) == (expected, classes)
    assert p.schema["target"]["type"] == contract.problem(expected).target_type
    assert not contract.schema_fit_problems(contract.parse_schema(p.schema), expected)


def test_binary_positive_class_and_rows_without_a_target() -> None:
    p = propose(profile(col("x"), text("y", ["no", "yes"], missing=7)))
    assert p.classes[1] == "yes" and "positive class 'yes'" in p.problem_evidence
    assert "7 rows without a target are left out" in p.problem_evidence
    p = propose(profile(col("x"), text("y", ["no", "yes"])), positive_class="no")
    assert p.classes == ("yes", "no")


def test_num_class_and_objective_come_from_the_data_and_pass_the_contract() -> None:
    p = propose(profile(col("x"), text("y", ["a", "b", "c", "d"])))
    assert p.hyperparameters["num_class"] == 4
    assert p.hyperparameters["objective"] == "multi:softprob"
    assert p.gate_metric == "weighted_f1"
    assert not contract.hyperparameter_problems(p.hyperparameters, p.problem_type, p.classes)
    big = rules.hyperparameters(contract.REGRESSION, 200_000, ())
    assert (big["num_round"], big["max_depth"]) == (300, 6)


def test_each_problem_types_defaults_are_among_its_own_choices() -> None:
    for spec in contract.PROBLEMS.values():
        assert spec.default_gate in spec.metrics and spec.default_eval_metric in spec.eval_metrics


# --------------------------------------------------------------------------- names


def test_invalid_names_are_mapped_without_touching_the_data() -> None:
    p = propose(profile(
        col("od280/od315 of wines"), col("Write_Time"), col("1st"), col("od280_od315_of_wines"),
        text("class label", ["a", "b"]),
    ), target="class label")  # fmt: skip
    names = [f["name"] for f in p.schema["features"]]
    # A valid name is never renamed; an invalid one takes the next free suggestion.
    assert names == ["od280_od315_of_wines_2", "Write_Time_value", "c_1st", "od280_od315_of_wines"]
    assert p.schema["sourceColumns"] == {
        "class_label": "class label", "od280_od315_of_wines_2": "od280/od315 of wines",
        "Write_Time_value": "Write_Time", "c_1st": "1st",
    }  # fmt: skip
    schema = contract.parse_schema(p.schema)
    assert schema.source_of("class_label") == "class label"
    assert "od280/od315 of wines" in schema.raw_columns()
    assert "od280_od315_of_wines" in schema.raw_columns()
    assert p.schema["target"]["name"] == "class_label"


# --------------------------------------------------------------------------- id and time


def test_without_id_or_time_both_are_derived() -> None:
    p = propose(profile(col("x"), text("y", ["a", "b"])))
    assert p.schema["derived"] == {"recordId": contract.ROW_HASH, "eventTime": WHEN}
    assert (p.schema["recordIdColumn"], p.schema["eventTimeColumn"]) == ("record_id", "event_time")


def test_columns_named_like_an_id_and_a_time_are_used_when_their_values_fit() -> None:
    ids = text("ID", [f"r{i}" for i in range(ROWS)], unique=True)
    times = text("timestamp", ["2026-01-01T00:00:00Z"], iso=True)
    p = propose(profile(ids, times, col("x"), text("y", ["a", "b"])))
    assert "derived" not in p.schema
    assert (p.schema["recordIdColumn"], p.schema["eventTimeColumn"]) == ("ID", "timestamp")
    repeated = text("id", ["r1", "r2"])  # not unique: derived instead, and a feature
    p = propose(profile(repeated, col("x"), text("y", ["a", "b"])))
    assert p.schema["derived"]["recordId"] == contract.ROW_HASH
    assert "id" in [f["name"] for f in p.schema["features"]]


def test_a_derived_name_taken_by_a_feature_gets_its_own() -> None:
    p = propose(profile(col("event_time"), text("y", ["a", "b"])))  # numbers, not times
    assert p.schema["eventTimeColumn"] == "event_time_2"
    assert [f["name"] for f in p.schema["features"]] == ["event_time"]
    assert "sourceColumns" not in p.schema


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("columns", "kw", "message"),
    [
        ([col("x"), text("y", ["a", "b"])], {"target": "label"},
         "--target: no column 'label' in the data"),
        ([col("x"), text("y", ["a"])], {}, "every row has the same value ('a')"),
        ([col("x"), text("y", ["a", "b"], missing=ROWS)], {}, "the column has no values"),
        ([text("y", ["a", "b"])], {}, "no feature columns"),
        ([col("x"), text("y", ["a", "b"])], {"problem": contract.REGRESSION},
         "the target 'y' is not numeric"),
        ([col("x"), text("y", ["a", "b", "c"])], {"problem": contract.BINARY}, "has 3 distinct"),
        ([col("x"), text("y", ["a", "b"])], {"positive_class": "c"}, "--positive-class: got 'c'"),
        ([col("x"), text("y", ["a", "b", "c"])], {"positive_class": "a"}, "only a binary"),
        ([col("x"), text("y", ["a", "b"])], {"id_column": "x"}, "--id-column 'x': values repeat"),
        ([col("x"), text("y", ["a", "b"])], {"time_column": "x"}, "not an ISO-8601"),
        ([col("x"), text("y", ["a", "b"])], {"drop": ["z"]}, "--drop: no column 'z'"),
        ([col("x"), col("y", distinct=25, integers=ROWS)],
         {"problem": contract.MULTICLASS}, "too many classes to list"),
    ],
)  # fmt: skip
def test_every_mistake_is_named(columns: list[dict], kw: dict, message: str) -> None:
    target = kw.pop("target", "y")
    with pytest.raises(AddModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        propose(profile(*columns), target=target, **kw)


@pytest.mark.parametrize("name", ["Wine", "w", "wine_quality", "-wine", "wine-", "x" * 33])
def test_a_name_the_config_refuses_is_refused(name: str) -> None:
    with pytest.raises(AddModelError, match="NAME: got"):
        rules.check_name(name)


# --------------------------------------------------------------------------- the gate


def test_the_threshold_sits_below_what_a_test_split_can_give_by_chance() -> None:
    splits = {"p01": 0.9244, "p50": 0.99, "p99": 1.0}
    assert rules.gate_threshold(contract.MULTICLASS, "weighted_f1", splits) == 0.91
    assert rules.gate_threshold(contract.BINARY, "auc", {"p01": 0.004, "p99": 0.1}) == 0.0
    rmse = rules.gate_threshold(contract.REGRESSION, "rmse", {"p01": 2.0, "p99": 3.4857})
    assert rmse == 3.53  # the 99th percentile plus 1%, rounded up to 3 digits
    r2 = rules.gate_threshold(contract.REGRESSION, "r2", {"p01": 0.7198, "p99": 0.92})
    assert r2 == 0.7 and not contract.gate_problems(contract.REGRESSION, "r2", r2)


# --------------------------------------------------------------------------- cdk.json


def test_the_entry_is_added_and_every_other_byte_of_cdk_json_is_kept() -> None:
    text = (ROOT / "cdk.json").read_text()
    entry = {"name": "wine", "hyperparameters": {"num_round": 100}, "dataPrefix": "wine/"}
    new = cli.with_model(text, entry)
    assert json.loads(new)["context"]["mlops"]["models"][-1] == entry
    before, after = text.split('"models"')[0], new.split('"models"')[0]
    assert before == after and text.split('"featureGroups"')[1] == new.split('"featureGroups"')[1]
    # The existing entry keeps its text (one key per line, nested values inline).
    first = text[text.index('"models"') : text.index("\n      ],")]
    assert first in new
    # Replacing keeps the position; adding again gives the same bytes.
    replaced = cli.with_model(new, {**entry, "dataPrefix": "w/"})
    names = [m["name"] for m in json.loads(replaced)["context"]["mlops"]["models"]]
    assert names == ["breast-cancer", "wine"] and cli.with_model(new, entry) == new


# --------------------------------------------------------------------------- the command


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root: this repository's cdk.json and schemas, and a data file."""
    shutil.copy(ROOT / "cdk.json", tmp_path / "cdk.json")
    shutil.copytree(ROOT / "data" / "schemas", tmp_path / "data" / "schemas")
    (tmp_path / "data" / "raw").mkdir()
    (tmp_path / "in.csv").write_text("x,y\n1,a\n2,b\n")
    return tmp_path


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch, project: Path) -> dict[str, Any]:
    """The step scripts stubbed: ``profile`` and ``baseline`` are what they print, or an
    exception they raise."""
    outputs: dict[str, Any] = {
        "profile_data.py": {
            **profile(col("x"), text("y", ["a", "b"])),
            "files": [str(project / "in.csv")],
        },
        "quick_baseline.py": {
            "metric": "auc",
            "folds": [0.9, 0.95, 0.92],
            "mean": 0.923,
            "rows": ROWS,
            "splits": {"count": 200, "test_rows": 15, "p01": 0.8, "p50": 0.93, "p99": 1.0},
            "check": {"rows_read": ROWS, "test_rows": 15},
        },
    }

    def run_step(python: Path, script: str, *args: str) -> dict:
        result = outputs[script]
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(cli, "run_step", run_step)
    return outputs


def _add(project: Path, *args: str) -> int:
    return cli.main(["--project-root", str(project), "--steps-python", "/bin/sh",
                     "add-model", *args])  # fmt: skip


def test_add_model_writes_schema_entry_and_data_that_pass_config(
    project: Path, steps: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _add(project, "model-a", "--data", str(project / "in.csv"), "--target", "y",
                "--event-time", WHEN) == 0  # fmt: skip
    doc = json.loads((project / "cdk.json").read_text())
    entry = doc["context"]["mlops"]["models"][-1]
    assert entry["qualityGate"] == {"metric": "auc", "threshold": 0.79}
    assert entry["schemaFile"] == "data/schemas/model-a.json"
    assert (project / "data/raw/model-a/in.csv").read_text() == "x,y\n1,a\n2,b\n"
    config = parse_config(doc["context"]["mlops"], project_root=project)
    assert config.model("model-a").drift.psi_threshold == contract.DriftThresholds().psi
    out = capsys.readouterr().out
    assert "make local-run LOCAL_RUN_ARGS='--model model-a'" in out and "auc >= 0.79" in out


@pytest.mark.parametrize(
    ("args", "stub", "message"),
    [
        (["Bad_Name"], None, "NAME: got 'Bad_Name'"),
        (["breast-cancer"], None, "a model 'breast-cancer' is already in cdk.json"),
        (["model-a", "--target", "nope"], None, "--target: no column 'nope'"),
        (["model-a"], ("profile_data.py", cli.StepFailed("in.csv: file is empty")),
         "in.csv: file is empty"),
        (["model-a"], ("quick_baseline.py", cli.StepFailed("in.csv: column 'y': the class 'b' "
                       "has 1 row")), "has 1 row"),
        (["model-a", "--xgboost-version", "0.9"], None, "does not pass config validation"),
    ],
)  # fmt: skip
def test_add_model_mistakes_exit_2_and_write_nothing(
    project: Path, steps: dict, capsys: pytest.CaptureFixture[str],
    args: list[str], stub: tuple | None, message: str,
) -> None:  # fmt: skip
    if stub:
        steps[stub[0]] = stub[1]
    before = _tree(project)
    name, *rest = args
    if "--target" not in rest:
        rest += ["--target", "y"]
    assert _add(project, name, "--data", str(project / "in.csv"), *rest) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing was written" in err and "Traceback" not in err
    assert _tree(project) == before


def test_add_model_force_replaces_an_entry(project: Path, steps: dict) -> None:
    data = ["--data", str(project / "in.csv"), "--target", "y"]
    assert _add(project, "model-a", *data) == 0
    assert _add(project, "model-a", *data) == 2
    assert _add(project, "model-a", *data, "--force") == 0
    names = [
        m["name"]
        for m in json.loads((project / "cdk.json").read_text())["context"]["mlops"]["models"]
    ]
    assert names == ["breast-cancer", "model-a"]


def test_check_names_an_unknown_model(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--project-root", str(project), "--steps-python", "/bin/sh",
                     "check", "--model", "nope"]) == 2  # fmt: skip
    assert "no model named ['nope']" in capsys.readouterr().err


def test_every_verb_documents_itself(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("add-model", "check"):
        with pytest.raises(SystemExit) as done:
            cli.main([verb, "--help"])
        assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--target" in text and "Quality gate" in text and "--model" in text


def test_config_checks_a_schema_document_in_place_of_its_file(project: Path) -> None:
    raw = json.loads((project / "cdk.json").read_text())["context"]["mlops"]
    raw["models"][0] = {**raw["models"][0], "schemaFile": "data/schemas/not-yet.json"}
    doc = json.loads((ROOT / "data/schemas/breast-cancer.json").read_text())
    parse_config(raw, project_root=project, schema_documents={"data/schemas/not-yet.json": doc})


def test_regression_on_a_boolean_target_is_named_not_a_crash() -> None:
    flags = col("y", storage="bool", distinct=2, values=["false", "true"])
    with pytest.raises(AddModelError, match=r"the target 'y' is not numeric\. Fix"):
        propose(profile(col("x"), flags), problem=contract.REGRESSION)


@pytest.mark.parametrize(("text", "message"), [("{", "not valid JSON"), ("{}", "no context.mlops")])
def test_a_broken_cdk_json_is_named(
    project: Path, steps: dict, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    (project / "cdk.json").write_text(text)
    assert _add(project, "model-a", "--data", str(project / "in.csv"), "--target", "y") == 2
    assert message in capsys.readouterr().err
