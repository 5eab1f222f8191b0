"""What makes a service a worker: no load balancer, ECS's rolling controller, alarms that roll
back, and scaling on a queue's backlog (the fields `ServiceConfig` takes from here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ecs_delivery.inputs import Model, Problems

Engine = Literal["codedeploy", "ecs"]
# Keys only a service behind the load balancer has: a worker given one is refused by name.
LOAD_BALANCER_KEYS = {
    "container_port": "containerPort",
    "health_check": "healthCheck",
    "deregistration_delay_seconds": "deregistrationDelaySeconds",
    "health_check_grace_period_seconds": "healthCheckGracePeriodSeconds",
    "routing": "routing",
    "validation": "validation",
    "deployment_config": "deploymentConfig",
    "service_connect": "serviceConnect",
}
MAX_ROLLBACK_ALARMS = 10  # what ECS takes in a service's `alarms`
NO_LOAD_BALANCER = "a worker has no load balancer; remove it, or set kind: web"


class QueueScalingConfig(Model):
    """Scaling a worker on its SQS queue's backlog per task (visible messages / running tasks)."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$",
        description="The SQS queue's name (in the stack's account and region).",
    )
    backlog_per_task: int = Field(
        ge=1,
        le=1000000,
        description="Visible messages per running task the worker is scaled to (what one task clears within the delay you accept).",
    )
    consume: bool = Field(
        True,
        description="The worker's task role may consume the queue: `sqs:ReceiveMessage`, `DeleteMessage`, `ChangeMessageVisibility` and `GetQueueAttributes` on this queue's ARN only. A queue encrypted with a customer managed KMS key also needs `kms:Decrypt` on that key (not granted here). false: grant its access yourself.",
    )


class WorkerFields(Model):
    """The kind of a service, and what only a worker has."""

    kind: Literal["web", "worker"] = Field(
        "web",
        description="`web`: behind the load balancer, deployed blue/green by `deployment.engine`. `worker`: no load balancer, target groups, listener rules or port (a background job, a queue consumer), deployed by ECS's rolling controller whatever `deployment.engine` says, with the deployment circuit breaker and `rollbackAlarms` rolling back (README: Workers); the load-balancer keys (`containerPort`, `healthCheck`, `routing`, `validation`, ...) are refused.",
    )
    rollback_alarms: list[str] = Field(
        default_factory=list,
        max_length=MAX_ROLLBACK_ALARMS,
        description=f"Worker only: names of CloudWatch alarms (made elsewhere: the queue's age of oldest message, the worker's error count) that stop and roll back its deployments; at most {MAX_ROLLBACK_ALARMS}. Omitted: the circuit breaker alone rolls back.",
    )

    @model_validator(mode="after")
    def _kind(self) -> WorkerFields:
        scaling = getattr(self, "autoscaling", None)
        if self.kind == "web":
            problems = []
            if not getattr(self, "container_port", None):
                problems.append(
                    (
                        "containerPort",
                        "required (the port the load balancer routes to); set it, or kind: "
                        "worker for a service without a load balancer",
                    )
                )
            if self.rollback_alarms:
                problems.append(
                    (
                        "rollbackAlarms",
                        "only for kind: worker (a web service rolls back on deployment.alarms); "
                        "remove it",
                    )
                )
            if scaling and scaling.queue:
                problems.append(
                    ("autoscaling.queue", "only for kind: worker; remove it, or set kind: worker")
                )
        else:
            problems = [
                (key, NO_LOAD_BALANCER)
                for name, key in LOAD_BALANCER_KEYS.items()
                if name in self.model_fields_set
            ]
            if scaling and scaling.requests_per_target is not None:
                problems.append(
                    (
                        "autoscaling.requestsPerTarget",
                        "a worker has no load balancer to count requests on; scale it on "
                        "targetCpuPercent, targetMemoryPercent or autoscaling.queue",
                    )
                )
        if problems:
            raise Problems(problems)
        return self

    @property
    def is_worker(self) -> bool:
        return self.kind == "worker"

    def engine(self, stack_engine: Engine) -> Engine:
        """Who deploys the service: a worker ECS (its rolling controller), a web service the
        stack's `deployment.engine`."""
        return "ecs" if self.is_worker else stack_engine


def queue_scaling_problems(
    services: dict[str, Any], container_insights: bool
) -> list[tuple[str, str]]:
    """A worker's backlog per task divides by RunningTaskCount, which only Container Insights
    reports: without it the policy never has data and the worker never scales."""
    if container_insights:
        return []
    return [
        (
            f"services.{name}.autoscaling.queue",
            "needs containerInsights: true (RunningTaskCount, the backlog's divisor, comes "
            "from Container Insights); set it, or scale the worker on cpu or memory",
        )
        for name, svc in sorted(services.items())
        if svc.autoscaling and svc.autoscaling.queue
    ]
