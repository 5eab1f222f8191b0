"""A worker's deployment and queue scaling: a FargateService without a load balancer, deployed
by ECS's rolling controller (the deployment core's ECS engine, with no load-balancer parts)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_aws as aws

from ecs_delivery.components import iam, naming
from ecs_delivery.components.args import from_config
from ecs_delivery.components.config.workers import QueueScalingConfig, WorkerFields

# A rolling update never runs fewer tasks than asked for while it replaces them.
MINIMUM_HEALTHY_PERCENT = 100
MAXIMUM_PERCENT = 200


@dataclass(frozen=True, kw_only=True)
class QueueBacklog:
    """Target tracking on an SQS queue's visible messages per running task."""

    queue_name: str
    backlog_per_task: int
    # The task role may consume the queue (`queue_statements`).
    consume: bool = from_config(QueueScalingConfig, "consume")


# What a queue consumer calls: receive, delete, extend a message's visibility, read the backlog.
CONSUME_ACTIONS = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
]


def queue_statements(queue: QueueBacklog | None, *, region: str, account_id: str) -> list[dict]:
    """The task role's access to the queue it scales on, that queue only (when it consumes)."""
    if queue is None or not queue.consume:
        return []
    arn = naming.arn("sqs", queue.queue_name, region=region, account=account_id)
    return [iam.allow("ConsumeQueue", CONSUME_ACTIONS, arn)]


@dataclass(frozen=True, kw_only=True)
class RollingWorker:
    """A service without a load balancer: ECS's rolling update, the circuit breaker and these
    alarms roll a failed deployment back."""

    # CloudWatch alarms (made elsewhere: names only) that stop and roll back a deployment.
    alarm_names: list[str] = from_config(WorkerFields, "rollback_alarms")


def deployment_settings(worker: RollingWorker) -> dict:
    """The ECS service's inputs that make ECS's rolling controller deploy it (no load balancer,
    no target groups: the core's ECS engine starts each deployment with UpdateService)."""
    return {
        "deployment_controller": aws.ecs.ServiceDeploymentControllerArgs(type="ECS"),
        "deployment_configuration": aws.ecs.ServiceDeploymentConfigurationArgs(strategy="ROLLING"),
        "deployment_circuit_breaker": aws.ecs.ServiceDeploymentCircuitBreakerArgs(
            enable=True, rollback=True
        ),
        "deployment_minimum_healthy_percent": MINIMUM_HEALTHY_PERCENT,
        "deployment_maximum_percent": MAXIMUM_PERCENT,
        "alarms": aws.ecs.ServiceAlarmsArgs(
            alarm_names=list(worker.alarm_names), enable=True, rollback=True
        )
        if worker.alarm_names
        else None,
        "load_balancers": None,
    }


def backlog_metric(
    queue: QueueBacklog, cluster_name: str, service_name: str
) -> aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs:
    """Backlog per task: the queue's visible messages over the service's running tasks (AWS's
    documented metric math for SQS; RunningTaskCount comes from Container Insights)."""
    spec = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs
    metric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricArgs
    stat = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatArgs
    cw_metric = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricArgs
    dimension = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricMetricStatMetricDimensionArgs

    def one(id_: str, namespace: str, name: str, statistic: str, dimensions: dict) -> metric:
        return metric(
            id=id_,
            metric_stat=stat(
                metric=cw_metric(
                    namespace=namespace,
                    metric_name=name,
                    dimensions=[dimension(name=k, value=v) for k, v in dimensions.items()],
                ),
                stat=statistic,
            ),
            return_data=False,
        )

    return spec(
        metrics=[
            one(
                "m1",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "Sum",
                {"QueueName": queue.queue_name},
            ),
            one(
                "m2",
                "ECS/ContainerInsights",
                "RunningTaskCount",
                "Average",
                {"ClusterName": cluster_name, "ServiceName": service_name},
            ),
            metric(
                id="backlog",
                expression="m1 / m2",
                label=f"Visible messages of {queue.queue_name} per task of {service_name}",
                return_data=True,
            ),
        ]
    )
