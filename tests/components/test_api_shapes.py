"""The registered delivery resources, mapped to AWS API requests, fit botocore's shapes.

ParamValidator checks member names, types and required members offline (not enum values:
those are asserted exactly in the other tests).
"""

from __future__ import annotations

import pytest

from ecs_delivery.offline.simcloud import plain
from tests.conftest import make_plan
from tests.support import shapes
from tests.support.plans import (
    ALARM,
    CONFIG,
    FUNCTION,
    GROUP,
    PIPELINE,
    PROJECT,
    inputs,
)


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("service", ["api", "web"])
def test_deployment_groups_fit_the_create_deployment_group_request(dev, prod, stack, service):
    plan = {"dev": dev, "prod": prod}[stack]
    request = shapes.create_deployment_group(inputs(plan, GROUP, f"codedeploy-{service}"))
    assert shapes.validation_errors("codedeploy", "CreateDeploymentGroup", request) == ""


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pipelines_fit_the_create_pipeline_request(dev, prod, stack):
    plan = {"dev": dev, "prod": prod}[stack]
    request = shapes.create_pipeline(inputs(plan, PIPELINE, "pipeline"))
    assert shapes.validation_errors("codepipeline", "CreatePipeline", request) == ""


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("project", ["pipeline", "pipeline-deploy", "pipeline-publish"])
def test_build_projects_fit_the_create_project_request(dev, prod, stack, project):
    plan = {"dev": dev, "prod": prod}[stack]
    request = shapes.create_project(inputs(plan, PROJECT, project))
    assert shapes.validation_errors("codebuild", "CreateProject", request) == ""


def test_alarms_fit_the_put_metric_alarm_request(dev, prod):
    alarms = dev.of_type(ALARM) + prod.of_type(ALARM)
    assert len(alarms) == 8 + 12
    for alarm in alarms:
        request = shapes.put_metric_alarm(plain(alarm.inputs))
        assert shapes.validation_errors("cloudwatch", "PutMetricAlarm", request) == "", alarm.name


def test_validation_hook_fits_the_create_function_request(dev):
    request = shapes.create_function(inputs(dev, FUNCTION, "validation-hook"))
    assert shapes.validation_errors("lambda", "CreateFunction", request) == ""


def test_custom_deployment_configs_fit_the_create_deployment_config_request():
    plan = make_plan("dev", overrides={"deployment": _custom_deployment()})
    for config in plan.of_type(CONFIG):
        request = shapes.create_deployment_config(plain(config.inputs))
        assert shapes.validation_errors("codedeploy", "CreateDeploymentConfig", request) == ""


def test_the_shape_check_catches_a_malformed_request(dev):
    """Guard against a check that cannot fail: break the mapped request and expect errors."""
    request = shapes.create_pipeline(inputs(dev, PIPELINE, "pipeline"))
    request["pipeline"]["stages"][0]["actions"][0]["runOrder"] = "first"
    del request["pipeline"]["roleArn"]
    errors = shapes.validation_errors("codepipeline", "CreatePipeline", request)
    assert "Missing required parameter" in errors and "roleArn" in errors
    assert "Invalid type for parameter pipeline.stages[0].actions[0].runOrder" in errors


def _custom_deployment() -> dict:
    return {
        "config": "canary5",
        "terminationWaitMinutes": 0,
        "customConfigs": {
            "canary5": {"type": "canary", "percent": 5, "intervalMinutes": 3},
            "linear20": {"type": "linear", "percent": 20, "intervalMinutes": 2},
        },
    }
