"""Monitoring: the scheduled engine in every serving stage, Model Monitor where a stage asks
for it, the alarms and the retrain rule, and monitoring's config errors."""

from __future__ import annotations

import copy
import fnmatch
import json
from typing import Any

import pytest
from cdk_helpers import all_templates, mlops_config, resources_of
from lint_helpers import lint_findings

from mlops import monitoring_definition as definition
from mlops.config import ConfigError, parse_config
from mlops.shape_check import check_definition
from pipeline_steps.steplib import monitoring
from stacks.data_stack import PROJECT_ROOT

STAGES = ("dev", "staging", "prod")
MODEL = "breast-cancer"


def _nested(templates: dict[str, Any], stage: str) -> dict[str, Any]:
    return templates[f"{stage}/Serving/BreastCancerServing"]


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Alarms by name (the monitoring alarms have literal names)."""
    found = {}
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        name = alarm["Properties"].get("AlarmName")
        if isinstance(name, str):
            found[name] = alarm["Properties"]
    return found


def _body(template: dict[str, Any]) -> dict[str, Any]:
    """The monitoring pipeline's definition, ``${...}`` variables left in."""
    (pipeline,) = [
        p
        for p in resources_of(template, "AWS::SageMaker::Pipeline").values()
        if p["Properties"]["PipelineName"].endswith("-monitoring")
    ]
    body = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
    text = (
        body
        if isinstance(body, str)
        else "".join(part if isinstance(part, str) else "TOKEN" for part in body["Fn::Join"][1])
    )
    return json.loads(text)


def test_every_serving_stage_has_the_scheduled_engine(templates: dict[str, Any]) -> None:
    """Pipeline, schedules, alarms and retrain rule in dev, staging and prod. Dev serves
    serverless (no capture): it checks batch capture only."""
    for stage in STAGES:
        parent = templates[f"{stage}/Serving"]
        assert _body(parent)["Steps"]
        nested = _nested(templates, stage)
        schedules = resources_of(nested, "AWS::Scheduler::Schedule").values()
        sources = sorted(
            p["Value"]
            for s in schedules
            for p in s["Properties"]["Target"]["SageMakerPipelineParameters"][
                "PipelineParameterList"
            ]
            if p["Name"] == "CaptureSource"
        )
        expected = ["batch"] if stage == "dev" else ["batch", "endpoint"]
        assert sources == expected, stage
        alarms = _alarms(nested)
        for source in expected:
            for what in ("drift", "quality", "missing-runs"):
                assert f"{stage}/{MODEL}/{what}-{source}" in alarms
        (rule,) = resources_of(nested, "AWS::Events::Rule").values()
        pattern = rule["Properties"]["EventPattern"]
        assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
        assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
        assert len(pattern["resources"]) == len(expected)  # the drift alarms' ARNs


def test_drift_alarms_watch_what_the_check_publishes(templates: dict[str, Any]) -> None:
    """Names and dimensions come from steplib.monitoring, as the check's entries do; the
    N of M windows and the cadence are the stage's, the quality gate the model's."""
    config = mlops_config()
    (model,) = config["models"]
    report = {
        "drift_detected": True,
        "drifted_features": ["f"],
        "window_row_count": 5,
        "features": {"f": {"psi": 0.5, "ks_p_value": 0.001, "window_missing_rate": 0.0}},
    }
    published = {
        (e["MetricName"], frozenset((d["Name"], d["Value"]) for d in e["Dimensions"]))
        for e in monitoring.drift_metrics(report, "staging", MODEL, "endpoint")
        + monitoring.quality_metrics(
            {"labeled_row_count": 3, "quality": {"auc": 0.9}}, "staging", MODEL, "endpoint"
        )
        + [monitoring.run_metric("staging", MODEL, "endpoint")]
    }
    alarms = _alarms(_nested(templates, "staging"))
    for what in ("drift", "quality", "missing-runs"):
        alarm = alarms[f"staging/{MODEL}/{what}-endpoint"]
        assert alarm["Namespace"] == monitoring.NAMESPACE
        # CloudWatch matches dimensions as a set.
        dims = frozenset((d["Name"], d["Value"]) for d in alarm["Dimensions"])
        assert (alarm["MetricName"], dims) in published
        assert alarm["Period"] == 3600
    drift = alarms[f"staging/{MODEL}/drift-endpoint"]
    assert drift["MetricName"] == monitoring.DRIFT_DETECTED
    assert (drift["DatapointsToAlarm"], drift["EvaluationPeriods"]) == (3, 4)
    assert drift["TreatMissingData"] == "notBreaching"  # an empty window is not drift
    quality = alarms[f"staging/{MODEL}/quality-endpoint"]
    assert {"Name": "QualityMetric", "Value": "auc"} in quality["Dimensions"]
    assert quality["Threshold"] == model["qualityGate"]["threshold"]
    assert quality["ComparisonOperator"] == "LessThanThreshold"
    missing = alarms[f"staging/{MODEL}/missing-runs-endpoint"]
    assert missing["TreatMissingData"] == "breaching"
    assert all(a["AlarmActions"] for a in alarms.values())  # to the stage's topic


def test_schedules_pass_the_models_drift_settings(templates: dict[str, Any]) -> None:
    (model,) = mlops_config()["models"]
    for schedule in resources_of(_nested(templates, "prod"), "AWS::Scheduler::Schedule").values():
        props = schedule["Properties"]
        params = {
            p["Name"]: p["Value"]
            for p in props["Target"]["SageMakerPipelineParameters"]["PipelineParameterList"]
        }
        assert set(params) == set(definition.PARAMETERS)
        assert float(params["PsiThreshold"]) == model["drift"]["psiThreshold"]
        assert float(params["KsPValueThreshold"]) == model["drift"]["ksPValueThreshold"]
        assert float(params["MissingRateIncrease"]) == model["drift"]["missingRateIncrease"]
        assert params["ProblemType"] == model["problemType"]
        assert params["WindowMinutes"] == "60"
        assert props["ScheduleExpression"] == "rate(1 hour)"
        assert props["Target"]["DeadLetterConfig"]["Arn"]


def test_monitoring_pipeline_jobs_are_isolated_and_valid(templates: dict[str, Any]) -> None:
    """Both checks are processing jobs with network isolation in the VPC and the key, whose
    arguments pass botocore's CreateProcessingJob shape; the Lambda steps call the functions."""
    body = _body(templates["staging/Serving"])
    assert check_definition(json.dumps(body)) == []
    steps = {s["Name"]: s for s in body["Steps"]}
    assert list(steps) == [
        definition.STEP_SELECT_WINDOW,
        definition.STEP_DRIFT_CHECK,
        definition.STEP_QUALITY_CHECK,
        definition.STEP_PUBLISH,
    ]
    for name in (definition.STEP_DRIFT_CHECK, definition.STEP_QUALITY_CHECK):
        args = steps[name]["Arguments"]
        assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert args["NetworkConfig"]["VpcConfig"]["Subnets"]
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${KmsKeyArn}"
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
        container = args["AppSpecification"]["ContainerArguments"]
        assert container[container.index("--stage") + 1] == "staging"
    assert steps[definition.STEP_PUBLISH]["DependsOn"] == [
        definition.STEP_DRIFT_CHECK,
        definition.STEP_QUALITY_CHECK,
    ]
    assert {
        o["OutputName"] for o in steps[definition.STEP_SELECT_WINDOW]["OutputParameters"]
    } == set(definition.WINDOW_OUTPUTS)


def test_only_the_publish_step_reaches_cloudwatch(templates: dict[str, Any]) -> None:
    """PutMetricData in the monitoring namespace only, by the publish function's role."""
    parent = templates["staging/Serving"]
    statements = [
        (key, st)
        for key, policy in resources_of(parent, "AWS::IAM::Policy").items()
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
        if "cloudwatch:PutMetricData" in json.dumps(st.get("Action"))
    ]
    mine = [st for _, st in statements if st.get("Sid") == "PublishMonitoringMetrics"]
    assert mine and all(
        st["Condition"] == {"StringEquals": {"cloudwatch:namespace": monitoring.NAMESPACE}}
        for st in mine
    )
    others = [st for _, st in statements if st.get("Sid") != "PublishMonitoringMetrics"]
    assert all(
        st["Condition"]["StringLike"]["cloudwatch:namespace"] == "/aws/sagemaker/*" for st in others
    )


def test_the_retrain_handler_is_guarded_by_reserved_concurrency(templates: dict[str, Any]) -> None:
    parent = templates["prod/Serving"]
    (handler,) = [
        f["Properties"]
        for f in resources_of(parent, "AWS::Lambda::Function").values()
        if f["Properties"]["Environment"]["Variables"].get("TRAINING_PIPELINE_TEMPLATE")
    ]
    env = handler["Environment"]["Variables"]
    assert handler["ReservedConcurrentExecutions"] == 1
    assert env["TRAINING_PIPELINE_TEMPLATE"] == "prod-{model}-training"
    assert env["MAX_RETRAINS_PER_DAY"] == "1"
    # A retrain that fails after Lambda's retries lands in a queue that alarms.
    queue = handler["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    assert resources_of(parent, "AWS::SQS::Queue")[queue]["Properties"]["KmsMasterKeyId"]
    failed = _alarms(parent)["prod/drift-retrain-failed"]
    assert failed["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
    ]
    assert failed["AlarmActions"]


@pytest.fixture(scope="module")
def model_monitor(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Templates of a config whose staging uses Model Monitor (cdk-nag checked at synth)."""
    from cdk_helpers import make_app

    import app as platform_app

    config = mlops_config()
    config["stages"]["staging"]["monitoring"] = {"engine": "model_monitor"}
    app = make_app(config, tmp_path_factory.mktemp("model-monitor"))
    stages = platform_app.build(app)
    app.synth()
    return all_templates(stages.values())


def test_model_monitor_stage_has_both_schedules_per_endpoint(model_monitor: dict[str, Any]) -> None:
    nested = _nested(model_monitor, "staging")
    schedules = {
        s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"]: s["Properties"]
        for s in resources_of(nested, "AWS::SageMaker::MonitoringSchedule").values()
    }
    assert set(schedules) == {"DataQuality", "ModelQuality"}
    assert all(s["EndpointName"] == f"staging-{MODEL}" for s in schedules.values())
    (endpoint,) = resources_of(nested, "AWS::SageMaker::Endpoint")
    for kind in ("MonitoringSchedule", "DataQualityJobDefinition", "ModelQualityJobDefinition"):
        for resource in resources_of(nested, f"AWS::SageMaker::{kind}").values():
            assert endpoint in resource["DependsOn"], kind  # it names the endpoint
    assert all(
        s["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
        for s in schedules.values()
    )
    for kind in ("DataQualityJobDefinition", "ModelQualityJobDefinition"):
        (job,) = resources_of(nested, f"AWS::SageMaker::{kind}").values()
        props = job["Properties"]
        assert props["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert props["NetworkConfig"]["VpcConfig"]["Subnets"]
        assert props["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"]
        output = props[kind.replace("JobDefinition", "JobOutputConfig")]
        assert output["KmsKeyId"]
    (mq,) = resources_of(nested, "AWS::SageMaker::ModelQualityJobDefinition").values()
    spec = mq["Properties"]["ModelQualityAppSpecification"]
    assert spec["ProblemType"] == "BinaryClassification"
    assert "sagemaker-model-monitor-analyzer" in json.dumps(spec["ImageUri"])
    gt = mq["Properties"]["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"]
    assert f"ground-truth/{MODEL}" in json.dumps(gt)
    # Only batch capture stays on the scheduled engine; the alarms watch Model Monitor.
    alarms = _alarms(nested)
    assert f"staging/{MODEL}/drift-endpoint" not in alarms
    assert f"staging/{MODEL}/drift-batch" in alarms
    drift = [a for n, a in alarms.items() if "drift-model-monitor" in n]
    assert len(drift) == 3  # 30 features, at most 10 metrics per alarm
    metrics = [m for a in drift for m in a["Metrics"] if "MetricStat" in m]
    assert {m["MetricStat"]["Metric"]["Namespace"] for m in metrics} == {
        monitoring.MODEL_MONITOR_DATA_NAMESPACE
    }
    assert len(metrics) == 30
    quality = alarms[f"staging/{MODEL}/quality-model-monitor"]
    assert (quality["Namespace"], quality["MetricName"]) == (
        monitoring.MODEL_MONITOR_MODEL_NAMESPACE,
        "auc",
    )
    (rule,) = resources_of(nested, "AWS::Events::Rule").values()
    assert len(rule["Properties"]["EventPattern"]["resources"]) == 4  # batch + 3 Model Monitor


def test_both_engines_are_cfn_lint_clean(
    templates: dict[str, Any], model_monitor: dict[str, Any]
) -> None:
    for found in (templates, model_monitor):
        for stage in STAGES:
            for name in (f"{stage}/Serving", f"{stage}/Serving/BreastCancerServing"):
                assert lint_findings(found[name], "us-east-1") == [], name


def _problems(edit: dict[str, Any], stage: str = "prod") -> list[str]:
    config = copy.deepcopy(mlops_config())
    config["stages"][stage].update(edit)
    with pytest.raises(ConfigError) as error:
        parse_config(config, project_root=PROJECT_ROOT)
    return error.value.problems


@pytest.mark.parametrize(
    ("edit", "stage", "field", "message"),
    [
        ({"monitoring": {"engine": "model_monitor", "cadenceMinutes": 30}}, "prod",
         "monitoring.cadenceMinutes", "runs at most every 60 minutes"),
        ({"monitoring": {"cadenceMinutes": 10}}, "prod",
         "monitoring.cadenceMinutes", "runs at most every 15 minutes"),
        ({"monitoring": {"engine": "model_monitor", "cadenceMinutes": 300}}, "prod",
         "monitoring.cadenceMinutes", "N dividing 24"),
        ({"monitoring": {"retrain": {"driftWindows": 5, "ofLastWindows": 3}}}, "prod",
         "monitoring.retrain.driftWindows", "more than ofLastWindows"),
        ({"monitoring": {"cadenceMinutes": 15, "retrain": {"ofLastWindows": 100}}}, "prod",
         "monitoring.retrain.ofLastWindows", "exceed the 1 day(s)"),
        ({"monitoring": {"batch": False}}, "dev", "monitoring.enabled", "nothing to monitor"),
        ({"monitoring": {"engine": "model_monitor"}}, "dev", "monitoring.engine",
         "serverless or capture nothing"),
        ({"monitoring": {"groundTruthPrefix": "labels"}}, "prod",
         "monitoring.groundTruthPrefix", "ending with /"),
    ],
)  # fmt: skip
def test_a_bad_monitoring_config_names_the_field(
    edit: dict[str, Any], stage: str, field: str, message: str
) -> None:
    problems = [p for p in _problems(edit, stage) if p.startswith(f"stages.{stage}.{field}")]
    assert problems and message in problems[0], _problems(edit, stage)


def test_model_monitor_refuses_a_multiclass_model() -> None:
    config = copy.deepcopy(mlops_config())
    config["stages"]["prod"]["monitoring"] = {"engine": "model_monitor"}
    config["models"].append(
        {
            "name": "wine", "problemType": "multiclass_classification", "targetColumn": "class",
            "schemaFile": "data/schemas/breast-cancer.json", "dataPrefix": "wine/",
            "hyperparameters": {"objective": "multi:softprob", "num_class": 3},
            "qualityGate": {"metric": "accuracy", "threshold": 0.8},
        }
    )  # fmt: skip
    with pytest.raises(ConfigError) as error:
        parse_config(config, project_root=PROJECT_ROOT)
    assert any(
        p.startswith("stages.prod.monitoring.engine") and "models[1:wine]" in p
        for p in error.value.problems
    ), error.value.problems


def test_monitoring_can_be_turned_off() -> None:
    config = copy.deepcopy(mlops_config())
    config["stages"]["dev"]["monitoring"] = {"enabled": False, "batch": False}
    parsed = parse_config(config, project_root=PROJECT_ROOT)
    assert parsed.stages["dev"].monitoring.enabled is False


def _statements(template: dict[str, Any], role_fragment: str) -> list[dict[str, Any]]:
    """The statements of the policies attached to roles whose logical ID has ``role_fragment``."""
    found = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"].get("Roles", []))
        if role_fragment in roles:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def _lists(statements: list[dict[str, Any]], pattern: str) -> bool:
    return any(
        st.get("Action") == "s3:ListBucket"
        and pattern in st.get("Condition", {}).get("StringLike", {}).get("s3:prefix", [])
        for st in statements
    )


def test_the_jobs_may_list_what_they_read(templates: dict[str, Any]) -> None:
    """SageMaker lists an S3Prefix input (the baseline directory) before it downloads it;
    batch capture points at the batch jobs' own files, which the window step reads."""
    from stacks.serving_stack import BASELINE_KEYS

    parent = templates["staging/Serving"]
    jobs = _statements(parent, "MonitoringJobRole")
    assert _lists(jobs, BASELINE_KEYS)
    assert _lists(jobs, "batch/*/input/*") and _lists(jobs, "batch/*/output/*")
    window = _statements(parent, "MonitoringWindowRole")
    assert _lists(window, "*/batch/*")


def test_model_monitor_may_publish_its_own_metrics(model_monitor: dict[str, Any]) -> None:
    statements = _statements(_nested(model_monitor, "staging"), "ModelMonitorRole")
    (publish,) = [st for st in statements if st.get("Sid") == "PublishModelMonitorMetrics"]
    namespaces = publish["Condition"]["StringLike"]["cloudwatch:namespace"]
    for namespace in (
        monitoring.MODEL_MONITOR_DATA_NAMESPACE,
        monitoring.MODEL_MONITOR_MODEL_NAMESPACE,
    ):
        assert any(fnmatch.fnmatchcase(namespace, n) for n in namespaces)
    assert _lists(statements, "pipelines/*/executions/*/preprocess/baseline/*")


@pytest.mark.parametrize(
    ("hours", "expression"),
    [(1, "cron(0 * ? * * *)"), (2, "cron(0 0/2 ? * * *)"), (24, "cron(0 0 ? * * *)")],
)
def test_model_monitor_schedules_use_the_documented_cron_forms(hours: int, expression: str) -> None:
    from constructs.model_monitor import schedule_expression

    assert schedule_expression(hours) == expression
    with pytest.raises(ValueError):
        schedule_expression(5)
