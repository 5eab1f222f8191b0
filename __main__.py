"""ecs-delivery: one environment per stack. Loads config, builds the environment, exports."""

import pulumi

from ecs_delivery.components import config
from ecs_delivery.components.environment import DeliveryEnvironment, DeliveryEnvironmentArgs

stack = pulumi.get_stack()
environment = DeliveryEnvironment(
    stack,
    DeliveryEnvironmentArgs(
        settings=config.load(),
        project=pulumi.get_project(),
        stack=stack,
        **config.aws_settings(),
    ),
)
for key, value in environment.outputs.items():
    pulumi.export(key, value)
