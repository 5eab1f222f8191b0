"""Provider inputs (camelCase, as registered) mapped to AWS API requests, for ParamValidator.

Each mapper consumes the provider inputs it knows and fails on any it does not, so a new
provider input cannot slip past the shape check unmapped.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import botocore.session
from botocore.validate import ParamValidator


@cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def validation_errors(service: str, operation: str, request: dict[str, Any]) -> str:
    """ParamValidator's report for `request` ('' when the request fits the API shape)."""
    shape = _model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    return report.generate_report() if report.has_errors() else ""


class _Inputs:
    """A consumable copy of provider inputs: take() what is mapped, done() checks the rest."""

    def __init__(self, inputs: dict[str, Any], what: str):
        self._rest = copy.deepcopy(inputs)
        self._what = what

    def take(self, key: str, default: Any = None) -> Any:
        return self._rest.pop(key, default)

    def done(self) -> None:
        assert not self._rest, f"{self._what}: unmapped provider inputs {sorted(self._rest)}"


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _tags(tags: dict[str, str] | None, key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in sorted((tags or {}).items())]


def register_task_definition(inputs: dict[str, Any]) -> dict[str, Any]:
    """A planned task definition as its RegisterTaskDefinition request (the provider's volume
    blocks carry the API's own field names)."""
    return {
        "family": inputs["family"],
        "containerDefinitions": json.loads(inputs["containerDefinitions"]),
        "cpu": inputs["cpu"],
        "memory": inputs["memory"],
        "networkMode": inputs["networkMode"],
        "requiresCompatibilities": inputs["requiresCompatibilities"],
        "volumes": inputs.get("volumes", []),
    }


def create_deployment_group(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "DeploymentGroup")
    pair = i.take("loadBalancerInfo")["targetGroupPairInfo"]
    alarms = i.take("alarmConfiguration")
    blue_green = i.take("blueGreenDeploymentConfig")
    ecs = i.take("ecsService")
    request = {
        "applicationName": i.take("appName"),
        "deploymentGroupName": i.take("deploymentGroupName"),
        "deploymentConfigName": i.take("deploymentConfigName"),
        "serviceRoleArn": i.take("serviceRoleArn"),
        "alarmConfiguration": {
            "enabled": alarms["enabled"],
            "ignorePollAlarmFailure": alarms["ignorePollAlarmFailure"],
            "alarms": [{"name": name} for name in alarms["alarms"]],
        },
        "autoRollbackConfiguration": i.take("autoRollbackConfiguration"),
        "deploymentStyle": i.take("deploymentStyle"),
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": blue_green[
                "terminateBlueInstancesOnDeploymentSuccess"
            ],
            "deploymentReadyOption": blue_green["deploymentReadyOption"],
        },
        "loadBalancerInfo": {
            # The provider's single block is the API's one-element list.
            "targetGroupPairInfoList": [
                {
                    "targetGroups": pair["targetGroups"],
                    "prodTrafficRoute": pair["prodTrafficRoute"],
                    "testTrafficRoute": pair["testTrafficRoute"],
                }
            ]
        },
        "ecsServices": [{"serviceName": ecs["serviceName"], "clusterName": ecs["clusterName"]}],
        "tags": _tags(i.take("tags")),
    }
    i.done()
    return _drop_none(request)


def create_deployment_config(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "DeploymentConfig")
    routing = i.take("trafficRoutingConfig")
    api_routing: dict[str, Any] = {"type": routing["type"]}
    if "timeBasedCanary" in routing:
        c = routing["timeBasedCanary"]
        api_routing["timeBasedCanary"] = {
            "canaryPercentage": c["percentage"],
            "canaryInterval": c["interval"],
        }
    if "timeBasedLinear" in routing:
        c = routing["timeBasedLinear"]
        api_routing["timeBasedLinear"] = {
            "linearPercentage": c["percentage"],
            "linearInterval": c["interval"],
        }
    request = {
        "deploymentConfigName": i.take("deploymentConfigName"),
        "computePlatform": i.take("computePlatform"),
        "trafficRoutingConfig": api_routing,
    }
    i.done()
    return request


def _action(action: dict[str, Any]) -> dict[str, Any]:
    a = _Inputs(action, "Pipeline action")
    request = {
        "name": a.take("name"),
        "actionTypeId": {
            "category": a.take("category"),
            "owner": a.take("owner"),
            "provider": a.take("provider"),
            "version": a.take("version"),
        },
        "runOrder": a.take("runOrder"),
        # A map of strings in both the provider and the API.
        "configuration": a.take("configuration"),
        "outputArtifacts": [{"name": n} for n in a.take("outputArtifacts") or []],
        "inputArtifacts": [{"name": n} for n in a.take("inputArtifacts") or []],
        "namespace": a.take("namespace"),
        "region": a.take("region"),
        "roleArn": a.take("roleArn"),
        "timeoutInMinutes": a.take("timeoutInMinutes"),
    }
    a.done()
    return request


def create_pipeline(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "Pipeline")
    stores = i.take("artifactStores")
    assert len(stores) == 1 and "region" not in stores[0], "single-region pipeline expected"
    store = {"type": stores[0]["type"], "location": stores[0]["location"]}
    if stores[0].get("encryptionKey"):
        store["encryptionKey"] = stores[0]["encryptionKey"]
    stages = [
        {"name": stage["name"], "actions": [_action(a) for a in stage["actions"]]}
        for stage in i.take("stages")
    ]
    request = {
        "pipeline": {
            "name": i.take("name"),
            "roleArn": i.take("roleArn"),
            # One store without a region is the API's `artifactStore`, not `artifactStores`.
            "artifactStore": store,
            "stages": stages,
            "version": 1,
            "pipelineType": i.take("pipelineType"),
            "executionMode": i.take("executionMode"),
        },
        "tags": _tags(i.take("tags"), "key", "value"),
    }
    i.done()
    return _drop_none(request)


def create_project(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "Project")
    logs = i.take("logsConfig")
    environment = i.take("environment")
    request = {
        "name": i.take("name"),
        "description": i.take("description"),
        "source": i.take("source"),
        "artifacts": i.take("artifacts"),
        "environment": {
            "type": environment["type"],
            "image": environment["image"],
            "computeType": environment["computeType"],
            "privilegedMode": environment["privilegedMode"],
            "imagePullCredentialsType": environment["imagePullCredentialsType"],
        },
        "serviceRole": i.take("serviceRole"),
        "timeoutInMinutes": i.take("buildTimeout"),
        "encryptionKey": i.take("encryptionKey"),
        "logsConfig": {
            "cloudWatchLogs": logs["cloudwatchLogs"],
            "s3Logs": logs["s3Logs"],
        },
        "tags": _tags(i.take("tags"), "key", "value"),
    }
    i.done()
    return _drop_none(request)


def put_metric_alarm(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "MetricAlarm")
    request = {
        "AlarmName": i.take("name"),
        "AlarmDescription": i.take("alarmDescription"),
        "Namespace": i.take("namespace"),
        "MetricName": i.take("metricName"),
        "Statistic": i.take("statistic"),
        "ExtendedStatistic": i.take("extendedStatistic"),
        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(i.take("dimensions").items())],
        "Period": i.take("period"),
        "EvaluationPeriods": i.take("evaluationPeriods"),
        "DatapointsToAlarm": i.take("datapointsToAlarm"),
        "Threshold": float(i.take("threshold")),
        "ComparisonOperator": i.take("comparisonOperator"),
        "TreatMissingData": i.take("treatMissingData"),
        "Tags": _tags(i.take("tags")),
    }
    i.done()
    return _drop_none(request)


def create_function(inputs: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(inputs, "Function")
    i.take("code")  # an archive the provider zips; the API takes its bytes
    i.take("sourceCodeHash")  # provider-only: when to upload again
    vpc = i.take("vpcConfig")
    logging = i.take("loggingConfig")
    request = {
        "FunctionName": i.take("name"),
        "Description": i.take("description"),
        "Runtime": i.take("runtime"),
        "Role": i.take("role"),
        "Handler": i.take("handler"),
        "Code": {"ZipFile": b"PK"},
        "Timeout": i.take("timeout"),
        "MemorySize": i.take("memorySize"),
        "Environment": {"Variables": i.take("environment")["variables"]},
        "VpcConfig": {"SubnetIds": vpc["subnetIds"], "SecurityGroupIds": vpc["securityGroupIds"]},
        "LoggingConfig": {"LogFormat": logging["logFormat"], "LogGroup": logging["logGroup"]},
        "Tags": i.take("tags"),
    }
    i.done()
    return _drop_none(request)


def service_deployment_configuration(inputs: dict[str, Any]) -> dict[str, Any]:
    """aws.ecs.Service's deploymentConfiguration as CreateService takes it (the provider holds
    the minutes as strings)."""
    i = _Inputs(inputs, "Service.deploymentConfiguration")
    minutes = {"bakeTimeInMinutes", "canaryBakeTimeInMinutes", "stepBakeTimeInMinutes"}

    def numbers(value: dict[str, Any]) -> dict[str, Any]:
        return {k: int(v) if k in minutes else v for k, v in value.items()}

    request: dict[str, Any] = {"strategy": i.take("strategy")}
    if (bake := i.take("bakeTimeInMinutes")) is not None:
        request["bakeTimeInMinutes"] = int(bake)
    for key in ("canaryConfiguration", "linearConfiguration"):
        if (value := i.take(key)) is not None:
            request[key] = numbers(value)
    hooks = []
    for hook in i.take("lifecycleHooks") or []:
        h = _Inputs(hook, "lifecycleHook")
        mapped = {"targetType": h.take("targetType"), "lifecycleStages": h.take("lifecycleStages")}
        for key in ("hookTargetArn", "roleArn"):
            if (value := h.take(key)) is not None:
                mapped[key] = value
        if (details := h.take("hookDetails")) is not None:
            mapped["hookDetails"] = json.loads(details)  # a JSON document in the API
        if (timeout := h.take("timeoutConfiguration")) is not None:
            mapped["timeoutConfiguration"] = {
                "action": timeout["action"],
                "timeoutInMinutes": int(timeout["timeoutInMinutes"]),
            }
        h.done()
        hooks.append(mapped)
    if hooks:
        request["lifecycleHooks"] = hooks
    i.done()
    return request


def service_connect_configuration(inputs: dict[str, Any]) -> dict[str, Any]:
    """aws.ecs.Service's serviceConnectConfiguration as CreateService takes it (the provider's
    `clientAlias` blocks are the API's `clientAliases`)."""
    i = _Inputs(inputs, "Service.serviceConnectConfiguration")
    request: dict[str, Any] = {"enabled": i.take("enabled"), "namespace": i.take("namespace")}
    services = []
    for service in i.take("services") or []:
        s = _Inputs(service, "serviceConnect.service")
        mapped = {"portName": s.take("portName"), "discoveryName": s.take("discoveryName")}
        mapped["clientAliases"] = [
            {"dnsName": a["dnsName"], "port": int(a["port"])} for a in s.take("clientAlias") or []
        ]
        s.done()
        services.append(mapped)
    request["services"] = services
    if (log := i.take("logConfiguration")) is not None:
        request["logConfiguration"] = log
    i.done()
    return request
