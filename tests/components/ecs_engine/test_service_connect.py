"""Issue 19, item 4: Service Connect for services on the ECS engine: one namespace per stack
(or the given one), each enabled service a server at its name and containerPort (its named
port) and a client of the others, admitted only from the stack's client security group; the
CodeDeploy engine refuses it, and two services cannot take one name."""

from __future__ import annotations

import pytest

from ecs_delivery.components import config
from ecs_delivery.components.config import ConfigError
from tests.conftest import make_plan
from tests.support.registrations import containers, inputs
from tests.support.shapes import (
    service_connect_configuration,
    service_deployment_configuration,
    validation_errors,
)

SERVICE = "aws:ecs/service:Service"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
REGION, ACCOUNT = "eu-west-1", "123456789012"
NAMESPACE = f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:httpnamespace/ecs-delivery-dev"
CONNECTED = {
    "deployment.engine": "ecs",
    "services.web.serviceConnect.enabled": True,
    "services.api.serviceConnect": {"enabled": True, "dnsName": "api.internal", "port": 80},
}


@pytest.fixture(scope="module")
def connected_plan():
    return make_plan("dev", overrides=CONNECTED)


def _service_connect(name: str, *, dns: str, port: float, namespace: str = NAMESPACE) -> dict:
    return {
        "enabled": True,
        "namespace": namespace,
        "services": [
            {
                "portName": name,
                "discoveryName": name,
                "clientAlias": [{"dnsName": dns, "port": port}],
            }
        ],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": f"/ecs/ecs-delivery-dev-{name}",
                "awslogs-region": REGION,
                "awslogs-stream-prefix": f"{name}-service-connect",
            },
        },
    }


def test_each_enabled_service_is_a_server_at_its_name_and_port_in_the_stacks_namespace(
    connected_plan,
):
    assert inputs(connected_plan, SERVICE, "web")["serviceConnectConfiguration"] == (
        _service_connect("web", dns="web", port=8080)
    )
    # Given names and ports replace the defaults.
    assert inputs(connected_plan, SERVICE, "api")["serviceConnectConfiguration"] == (
        _service_connect("api", dns="api.internal", port=80)
    )
    namespace = inputs(
        connected_plan, "aws:servicediscovery/httpNamespace:HttpNamespace", "service-connect"
    )
    assert namespace["name"] == "ecs-delivery-dev"
    assert connected_plan.outputs["serviceConnectNamespace"] == NAMESPACE


def test_the_container_port_carries_the_name_service_connect_refers_to(connected_plan):
    (port,) = containers(connected_plan, "web")[0]["portMappings"]
    assert port == {
        "containerPort": 8080,
        "hostPort": 8080,
        "protocol": "tcp",
        "name": "web",
        "appProtocol": "http",
    }


def test_the_port_is_named_on_the_ecs_engine_without_service_connect_and_not_under_codedeploy(
    dev_plan,
):
    # So that a running service can turn Service Connect on in one update (ECS checks the
    # name against the revision it runs).
    plain = make_plan("dev", overrides={"deployment.engine": "ecs"})
    assert containers(plain, "web")[0]["portMappings"][0]["name"] == "web"
    assert "serviceConnectConfiguration" not in inputs(plain, SERVICE, "web")
    assert "name" not in containers(dev_plan, "web")[0]["portMappings"][0]


def test_the_service_admits_its_port_only_from_the_service_connect_clients(connected_plan):
    clients = connected_plan.named("aws:ec2/securityGroup:SecurityGroup", "service-connect-clients")
    # A mark only: no rule of its own, none open to the world.
    assert not any(
        r.inputs.get("securityGroupId") == f"{clients.name}-id"
        for r in connected_plan.resources
        if r.type.startswith("aws:vpc/securityGroup")
    )
    for name, port in (("web", 8080), ("api", 8000)):
        rule = inputs(connected_plan, INGRESS, f"{name}-from-service-connect")
        assert rule == {
            "securityGroupId": f"{name}-tasks-id",
            "referencedSecurityGroupId": "service-connect-clients-id",
            "ipProtocol": "tcp",
            "fromPort": port,
            "toPort": port,
            "description": "Container port from the stack's Service Connect clients",
        }
        # Its tasks carry the client group, so the others admit them.
        groups = inputs(connected_plan, SERVICE, name)["networkConfiguration"]["securityGroups"]
        assert groups == [f"{name}-tasks-id", "service-connect-clients-id"]
        rollout = connected_plan.named(
            "pulumi-python:dynamic/rollout:ServiceRollout", f"{name}-rollout"
        )
        assert rollout.inputs["security_groups"] == groups
    assert not any(
        r.inputs.get("cidrIpv4") == "0.0.0.0/0"
        for r in connected_plan.of_type(INGRESS)
        if "service-connect" in r.name
    )


def test_a_given_namespace_is_used_and_none_is_created():
    given = f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:namespace/ns-abcdef0123456789"
    plan = make_plan("dev", overrides={**CONNECTED, "serviceConnect.namespaceArn": given})
    assert inputs(plan, SERVICE, "web")["serviceConnectConfiguration"]["namespace"] == given
    assert plan.of_type("aws:servicediscovery/httpNamespace:HttpNamespace") == []


def test_without_service_connect_no_namespace_or_client_group_is_planned():
    plan = make_plan("dev", overrides={"deployment.engine": "ecs"})
    assert plan.of_type("aws:servicediscovery/httpNamespace:HttpNamespace") == []
    assert all(r.name != "service-connect-clients" for r in plan.resources)
    assert "serviceConnectNamespace" not in plan.outputs


def test_the_service_inputs_fit_the_ecs_api(connected_plan):
    service = inputs(connected_plan, SERVICE, "api")
    request = {
        "serviceName": "api",
        "deploymentConfiguration": service_deployment_configuration(
            service["deploymentConfiguration"]
        ),
        "serviceConnectConfiguration": service_connect_configuration(
            service["serviceConnectConfiguration"]
        ),
    }
    assert validation_errors("ecs", "CreateService", request) == ""
    definitions = containers(connected_plan, "api")
    assert (
        validation_errors(
            "ecs",
            "RegisterTaskDefinition",
            {"family": "api", "containerDefinitions": definitions},
        )
        == ""
    )


def _problems(services: dict, **stack) -> list[str]:
    with pytest.raises(ConfigError) as error:
        config.parse(
            {
                "services": services,
                "pipeline": {"source": {"provider": "codecommit", "repository": "app"}},
                **stack,
            }
        )
    return error.value.problems


def test_service_connect_is_refused_on_the_codedeploy_engine_naming_the_service():
    problems = _problems({"web": {"containerPort": 8080, "serviceConnect": {"enabled": True}}})
    assert problems == [
        "services.web.serviceConnect.enabled: Service Connect needs deployment.engine ecs "
        "(a CODE_DEPLOY-controlled service cannot use Service Connect); set "
        "deployment.engine: ecs, or remove it"
    ]


def test_two_services_cannot_take_one_name_or_alias():
    problems = _problems(
        {
            "api": {
                "containerPort": 8000,
                "routing": {"pathPatterns": ["/api/*"]},
                "serviceConnect": {"enabled": True},
            },
            "web": {
                "containerPort": 8000,
                "serviceConnect": {"enabled": True, "discoveryName": "api", "dnsName": "api"},
            },
        },
        deployment={"engine": "ecs"},
    )
    assert problems == [
        "services.web.serviceConnect.discoveryName: 'api' is services.api's already (one "
        "namespace); give services.web.serviceConnect.discoveryName a name of its own",
        "services.web.serviceConnect.dnsName: 'api:8000' is services.api's already (one "
        "namespace); give services.web.serviceConnect.dnsName a name of its own",
    ]


def test_malformed_names_and_namespace_are_refused_naming_the_key():
    problems = _problems(
        {
            "web": {
                "containerPort": 8080,
                "serviceConnect": {"enabled": True, "dnsName": "-web", "discoveryName": "Web"},
            }
        },
        deployment={"engine": "ecs"},
        serviceConnect={"namespaceArn": "ns-123"},
    )
    assert sorted(p.split(":")[0] for p in problems) == [
        "serviceConnect.namespaceArn",
        "services.web.serviceConnect.discoveryName",
        "services.web.serviceConnect.dnsName",
    ]
