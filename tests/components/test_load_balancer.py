"""LoadBalancer component: security group, listeners, blue/green target groups, routing rules."""

from __future__ import annotations

from tests.support.registrations import inputs

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LISTENER = "aws:lb/listener:Listener"


# The simulated cloud's Elastic IPs (tools/simcloud.py), by resource name.
NAT_IP = {
    "network-nat-eu-west-1a": "203.0.113.64/32",
    "network-nat-eu-west-1b": "203.0.113.71/32",
    "network-nat-eu-west-1c": "203.0.113.101/32",
}


def _alb_ingress(plan):
    group_id = "alb-alb-id"
    return sorted(
        (r.inputs.get("cidrIpv4"), r.inputs["fromPort"], r.inputs["toPort"])
        for r in plan.of_type(INGRESS)
        if r.inputs["securityGroupId"] == group_id
    )


def test_alb_security_group_admits_only_http_from_the_world_and_the_test_port_from_listed_cidrs(
    dev_plan,
):
    assert _alb_ingress(dev_plan) == [
        ("0.0.0.0/0", 80, 80),
        ("10.20.0.0/16", 8443, 8443),
        (NAT_IP["network-nat-eu-west-1a"], 8443, 8443),  # the validation hook, through NAT
    ]


def test_with_a_certificate_the_world_reaches_only_80_and_443(prod_plan):
    assert _alb_ingress(prod_plan) == [
        ("0.0.0.0/0", 80, 80),
        ("0.0.0.0/0", 443, 443),
        ("10.30.0.0/16", 8443, 8443),
        *sorted((NAT_IP[f"network-nat-eu-west-1{z}"], 8443, 8443) for z in "abc"),
    ]


def test_no_ingress_rule_anywhere_opens_another_port_to_the_world(dev_plan, prod_plan):
    for plan in (dev_plan, prod_plan):
        world = {
            r.inputs["fromPort"]
            for r in plan.of_type(INGRESS)
            if r.inputs.get("cidrIpv4") == "0.0.0.0/0"
        }
        assert world <= {80, 443}


def test_load_balancer_is_public_drops_invalid_headers_and_prod_is_deletion_protected(
    dev_plan, prod_plan
):
    dev = inputs(dev_plan, "aws:lb/loadBalancer:LoadBalancer", "alb")
    prod = inputs(prod_plan, "aws:lb/loadBalancer:LoadBalancer", "alb")
    assert dev["internal"] is False and dev["dropInvalidHeaderFields"] is True
    assert dev["enableDeletionProtection"] is False and prod["enableDeletionProtection"] is True
    assert dev["subnets"] == ["network-public-eu-west-1a-id", "network-public-eu-west-1b-id"]


def test_dev_listeners_are_http_80_and_test_port(dev_plan):
    listeners = {
        r.name: (r.inputs["port"], r.inputs["protocol"]) for r in dev_plan.of_type(LISTENER)
    }
    assert listeners == {"alb-http": (80, "HTTP"), "alb-test": (8443, "HTTP")}


def test_prod_listeners_use_https_with_a_tls13_policy_and_redirect_http(prod_plan):
    https = inputs(prod_plan, LISTENER, "alb-https")
    assert prod_plan.outputs["testUrl"] == "https://shop.example.com:8443"
    assert (https["port"], https["protocol"], https["sslPolicy"]) == (
        443,
        "HTTPS",
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
    )
    assert https["certificateArn"].startswith("arn:aws:acm:eu-west-1:")
    test = inputs(prod_plan, LISTENER, "alb-test")
    assert (test["port"], test["protocol"]) == (8443, "HTTPS")
    redirect = inputs(prod_plan, LISTENER, "alb-http-redirect")
    assert redirect["defaultActions"] == [
        {
            "type": "redirect",
            "redirect": {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"},
        }
    ]


def test_each_service_has_a_blue_and_a_green_target_group_with_explicit_health_checks(dev_plan):
    groups = {r.name: r.inputs for r in dev_plan.of_type("aws:lb/targetGroup:TargetGroup")}
    assert sorted(groups) == ["alb-api-blue", "alb-api-green", "alb-web-blue", "alb-web-green"]
    web = groups["alb-web-blue"]
    assert (web["targetType"], web["protocol"], web["port"], web["deregistrationDelay"]) == (
        "ip",
        "HTTP",
        8080,
        15,
    )
    assert web["healthCheck"] == {
        "enabled": True,
        "protocol": "HTTP",
        "port": "traffic-port",
        "path": "/health",
        "matcher": "200",
        "interval": 10,
        "timeout": 5,
        "healthyThreshold": 2,
        "unhealthyThreshold": 2,
    }
    assert groups["alb-api-green"]["healthCheck"]["path"] == "/api/health"


def test_listener_rules_route_each_service_and_leave_the_forward_action_to_codedeploy(dev_plan):
    rules = {r.name: r for r in dev_plan.of_type("aws:lb/listenerRule:ListenerRule")}
    assert sorted(rules) == [
        "alb-api-production",
        "alb-api-test",
        "alb-web-production",
        "alb-web-test",
    ]
    api = rules["alb-api-production"]
    assert api.inputs["conditions"] == [{"pathPattern": {"values": ["/api/*"]}}]
    assert api.inputs["priority"] == 100
    assert rules["alb-web-test"].inputs["priority"] == 50000  # the catch-all goes last
    assert api.inputs["actions"] == [
        {
            "type": "forward",
            "targetGroupArn": "arn:aws:lb:eu-west-1:123456789012:targetgroup/alb-api-blue-b063f7b",
        }
    ]
    for rule in rules.values():
        assert rule.options["ignoreChanges"] == ["actions"]
