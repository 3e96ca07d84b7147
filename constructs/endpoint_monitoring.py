"""Alarms and a dashboard of one endpoint, through cdk-monitoring-constructs, built only
from the endpoint's ``metric_*`` methods."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
import cdk_monitoring_constructs as monitoring
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.endpoint import ModelEndpoint

GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
LT = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD


@dataclass(frozen=True)
class EndpointAlarmThresholds:
    """When an endpoint alarms (each over three of three five-minute periods)."""

    invocation_5xx_errors: int = 1
    invocation_4xx_percent: float = 5.0
    model_latency_p99_ms: int = 1000
    #: Instances only: CPUUtilization is summed over an instance's cores (100 per core).
    cpu_percent: float = 90.0
    memory_percent: float = 85.0
    disk_percent: float = 85.0


class EndpointMonitoring(Construct):
    """Alarms to ``topic`` (5xx, 4xx rate, latency p99; CPU, memory and disk on instances;
    invocations dropping to zero when traffic is expected) and a dashboard.

    Attributes:
        facade: the ``MonitoringFacade`` (its dashboard and alarms).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint: ModelEndpoint,
        topic: sns.ITopic,
        dashboard_name: str,
        on_instances: bool,
        traffic_expected: bool = False,
        thresholds: EndpointAlarmThresholds | None = None,
    ) -> None:
        super().__init__(scope, id)
        limits = thresholds or EndpointAlarmThresholds()
        period = cdk.Duration.minutes(5)
        self.facade = monitoring.MonitoringFacade(
            self,
            "Facade",
            alarm_factory_defaults=monitoring.AlarmFactoryDefaults(
                actions_enabled=True,
                alarm_name_prefix=endpoint.endpoint_name,
                action=monitoring.SnsAlarmActionStrategy(on_alarm_topic=topic),
                evaluation_periods=3,
                datapoints_to_alarm=3,
            ),
            metric_factory_defaults=monitoring.MetricFactoryDefaults(period=period),
            dashboard_factory=monitoring.DefaultDashboardFactory(
                self,
                "Dashboards",
                dashboard_name_prefix=dashboard_name,
                create_dashboard=True,
                create_alarm_dashboard=False,
                create_summary_dashboard=False,
            ),
        )

        def alarmed(metric: cloudwatch.Metric | cloudwatch.MathExpression, name: str, operator: cloudwatch.ComparisonOperator,
                    threshold: float, *, breaching_when_missing: bool = False) -> monitoring.CustomMetricWithAlarm:  # fmt: skip
            missing = (
                cloudwatch.TreatMissingData.BREACHING
                if breaching_when_missing
                else cloudwatch.TreatMissingData.NOT_BREACHING
            )
            return monitoring.CustomMetricWithAlarm(
                metric=metric,
                alarm_friendly_name=name,
                add_alarm={
                    "Critical": monitoring.CustomThreshold(
                        comparison_operator=operator,
                        threshold=threshold,
                        treat_missing_data_override=missing,
                    )
                },
            )

        invocations = endpoint.metric_invocations(period=period)
        rate_4xx = cloudwatch.MathExpression(
            expression="100 * errors / MAX([errors, invocations])",
            using_metrics={
                "errors": endpoint.metric_invocation_4xx_errors(period=period),
                "invocations": invocations,
            },
            label="4xx errors (% of invocations)",
            period=period,
        )
        groups = [
            monitoring.CustomMetricGroup(
                title="Errors",
                metrics=[
                    alarmed(
                        endpoint.metric_invocation_5xx_errors(period=period),
                        "5xx",
                        GT,
                        limits.invocation_5xx_errors - 0.5,
                    ),
                    alarmed(rate_4xx, "4xxRate", GT, limits.invocation_4xx_percent),
                ],
            ),
            monitoring.CustomMetricGroup(
                title="Model latency p99 (microseconds)",
                metrics=[
                    alarmed(
                        endpoint.metric_model_latency(statistic="p99", period=period),
                        "LatencyP99",
                        GT,
                        limits.model_latency_p99_ms * 1000,
                    ),
                ],
            ),
            monitoring.CustomMetricGroup(
                title="Invocations",
                metrics=[
                    alarmed(invocations, "NoTraffic", LT, 1, breaching_when_missing=True)
                    if traffic_expected
                    else invocations
                ],
            ),
        ]
        if on_instances:
            groups.append(
                monitoring.CustomMetricGroup(
                    title="Instances (%)",
                    metrics=[
                        alarmed(endpoint.metric_cpu_utilization(period=period), "Cpu", GT,
                                limits.cpu_percent),
                        alarmed(endpoint.metric_memory_utilization(period=period), "Memory",
                                GT, limits.memory_percent),
                        alarmed(endpoint.metric_disk_utilization(period=period), "Disk", GT,
                                limits.disk_percent),
                    ],
                )
            )  # fmt: skip
        self.facade.monitor_custom(
            metric_groups=groups,
            human_readable_name=f"Endpoint {endpoint.endpoint_name}",
            alarm_friendly_name=endpoint.endpoint_name,
        )
