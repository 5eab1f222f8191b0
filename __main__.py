"""ecs-delivery: one environment per stack. Loads config, composes components, exports outputs."""

import pulumi

from components import config, platform

settings = config.load()
aws_settings = config.aws_settings()
environment = platform.read_environment(
    project=pulumi.get_project(),
    stack=pulumi.get_stack(),
    region=aws_settings["region"],
    profile=aws_settings["profile"],
    role_arn=aws_settings["role_arn"],
)
images = {name: svc.image or svc.bootstrap_image for name, svc in settings.services.items()}
environment_platform = platform.build(settings, environment, images)
for key, value in environment_platform.outputs.items():
    pulumi.export(key, value)
