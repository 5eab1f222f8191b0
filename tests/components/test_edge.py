"""The load balancer's edge: hosted zone, created and DNS-validated certificate, alias records, WAF."""

from __future__ import annotations

import pytest

from ecs_delivery.components.config import ConfigError
from ecs_delivery.offline import plan as plan_tool
from ecs_delivery.offline.simcloud import simulated_zone_id
from tests.conftest import make_plan
from tests.support.registrations import inputs

CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
LISTENER = "aws:lb/listener:Listener"
EDGE_TYPES = (CERTIFICATE, VALIDATION, RECORD, WEB_ACL, ASSOCIATION)

ZONE_ID = simulated_zone_id("example.com")
PROD_TAGS = {
    "cost-center": "cc-4242",
    "ecs-delivery:project": "ecs-delivery",
    "ecs-delivery:stack": "prod",
    "environment": "prod",
    "team": "platform",
}
# What the simulated ACM answers for shop.example.com (tools/simcloud.py).
SHOP_RECORD = "_951623a26f8b3388802aa74907be0916.shop.example.com."
SHOP_VALUE = "_df735358346e2db1c809dcffdda57aad.acm-validations.aws."
ALB_DNS = "alb-6e226a9-e685bf22c.eu-west-1.elb.amazonaws.com"
ALB_ARN = "arn:aws:lb:eu-west-1:123456789012:loadbalancer/alb-6e226a9"
HOSTS = ["api.example.com", "*.shop.example.com", "api-*.example.com", "api.other.org"]


def _host_plan():
    return make_plan("prod", overrides={"services.api.routing.hostHeaders": HOSTS})


def test_dev_stays_without_any_edge_resource_it_would_pay_for(dev_plan):
    assert [r.name for t in EDGE_TYPES for r in dev_plan.of_type(t)] == []
    assert inputs(dev_plan, "aws:lb/loadBalancer:LoadBalancer", "alb")["enableWafFailOpen"] is False


def test_prod_requests_a_dns_validated_certificate_for_its_domain(prod_plan):
    assert inputs(prod_plan, CERTIFICATE, "certificate") == {
        "domainName": "shop.example.com",
        "validationMethod": "DNS",
        "keyAlgorithm": "RSA_2048",
        "tags": PROD_TAGS,
    }


def test_the_validation_record_takes_name_type_and_value_from_acm(prod_plan):
    assert inputs(prod_plan, RECORD, "certificate-validation-shop.example.com") == {
        "zoneId": ZONE_ID,
        "name": SHOP_RECORD,
        "type": "CNAME",
        "records": [SHOP_VALUE],
        "ttl": 300,
        "allowOverwrite": True,
    }


def test_https_listeners_wait_for_the_certificate_validation(prod_plan):
    validation = prod_plan.named(VALIDATION, "certificate")
    certificate = prod_plan.named(CERTIFICATE, "certificate")
    assert validation.inputs == {
        "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/certificate-03d66dd",
        "validationRecordFqdns": [SHOP_RECORD.rstrip(".")],
    }
    for name in ("alb-https", "alb-test"):
        listener = prod_plan.named(LISTENER, name)
        assert listener.inputs["certificateArn"] == validation.inputs["certificateArn"]
        assert validation.urn in listener.options["dependsOn"]
        assert certificate.urn not in listener.options["dependsOn"]


def test_prod_points_its_domain_at_the_load_balancer_with_an_alias_record(prod_plan):
    assert [r.name for r in prod_plan.of_type(RECORD) if r.name.startswith("dns-")] == [
        "dns-shop.example.com-a"
    ]
    assert inputs(prod_plan, RECORD, "dns-shop.example.com-a") == {
        "zoneId": ZONE_ID,
        "name": "shop.example.com",
        "type": "A",
        "aliases": [{"name": ALB_DNS, "zoneId": "Z32O12XQLNTSW2", "evaluateTargetHealth": False}],
    }


def test_prod_creates_the_waf_baseline_and_associates_it_with_the_load_balancer(prod_plan):
    def rule(priority, group):
        return {
            "name": group,
            "priority": priority,
            "overrideAction": {"none": {}},
            "statement": {"managedRuleGroupStatement": {"name": group, "vendorName": "AWS"}},
            "visibilityConfig": {
                "cloudwatchMetricsEnabled": True,
                "metricName": f"ecs-delivery-prod-{group}",
                "sampledRequestsEnabled": True,
            },
        }

    assert inputs(prod_plan, WEB_ACL, "waf") == {
        "name": "ecs-delivery-prod",
        "description": "Load balancer baseline: AWS managed rules and a per-IP rate limit",
        "scope": "REGIONAL",
        "defaultAction": {"allow": {}},
        "rules": [
            rule(10, "AWSManagedRulesAmazonIpReputationList"),
            {
                "name": "rate-limit-per-ip",
                "priority": 20,
                "action": {"block": {}},
                "statement": {
                    "rateBasedStatement": {
                        "aggregateKeyType": "IP",
                        "limit": 2000,
                        "evaluationWindowSec": 300,
                    }
                },
                "visibilityConfig": {
                    "cloudwatchMetricsEnabled": True,
                    "metricName": "ecs-delivery-prod-rate-limit",
                    "sampledRequestsEnabled": True,
                },
            },
            rule(30, "AWSManagedRulesCommonRuleSet"),
            rule(40, "AWSManagedRulesKnownBadInputsRuleSet"),
        ],
        "visibilityConfig": {
            "cloudwatchMetricsEnabled": True,
            "metricName": "ecs-delivery-prod",
            "sampledRequestsEnabled": True,
        },
        "tags": PROD_TAGS,
    }
    assert inputs(prod_plan, ASSOCIATION, "waf") == {
        "resourceArn": ALB_ARN,
        "webAclArn": "arn:aws:wafv2:eu-west-1:123456789012:webacl/ecs-delivery-prod",
    }
    alb = inputs(prod_plan, "aws:lb/loadBalancer:LoadBalancer", "alb")
    assert alb["enableWafFailOpen"] is False


def test_an_existing_web_acl_is_associated_and_none_is_created():
    arn = "arn:aws:wafv2:eu-west-1:222222222222:regional/webacl/shared/1b3c5e7a-0000-4000-8000-123456789abc"
    plan = make_plan("prod", overrides={"loadBalancer.waf": None, "loadBalancer.webAclArn": arn})
    assert plan.of_type(WEB_ACL) == []
    assert inputs(plan, ASSOCIATION, "waf") == {"resourceArn": ALB_ARN, "webAclArn": arn}


def test_host_headers_in_the_zone_become_alternative_names_and_alias_records():
    plan = _host_plan()
    assert inputs(plan, CERTIFICATE, "certificate")["subjectAlternativeNames"] == [
        "*.shop.example.com",
        "api.example.com",
    ]
    # *.shop.example.com shares shop.example.com's validation record.
    assert sorted(r.name for r in plan.of_type(RECORD)) == [
        "certificate-validation-api.example.com",
        "certificate-validation-shop.example.com",
        "dns-api.example.com-a",
        "dns-shop.example.com-a",
        "dns-wildcard.shop.example.com-a",
    ]
    assert inputs(plan, RECORD, "dns-wildcard.shop.example.com-a")["name"] == "*.shop.example.com"
    assert inputs(plan, VALIDATION, "certificate")["validationRecordFqdns"] == [
        SHOP_RECORD.rstrip("."),
        inputs(plan, RECORD, "certificate-validation-api.example.com")["name"].rstrip("."),
    ]


def test_host_headers_outside_the_zone_or_unnameable_are_skipped_with_a_warning():
    assert _host_plan().warnings == [
        "loadBalancer.hostedZone: no DNS record for 'api-*.example.com' (a pattern neither "
        "Route 53 nor ACM can name); 'api.other.org' (outside the hosted zone example.com)"
    ]


def test_a_given_certificate_still_wins_and_only_records_are_made():
    arn = "arn:aws:acm:eu-west-1:222222222222:certificate/5e0c1a4e-0b4f-4c3e-9a57-2f2b1a6c9d10"
    plan = make_plan("prod", overrides={"loadBalancer.certificateArn": arn})
    assert plan.of_type(CERTIFICATE) == [] and plan.of_type(VALIDATION) == []
    assert inputs(plan, LISTENER, "alb-https")["certificateArn"] == arn
    assert [r.name for r in plan.of_type(RECORD)] == ["dns-shop.example.com-a"]


def test_a_zone_id_is_used_as_is():
    environment = {"hostedZones": {"example.com": {"id": "Z0EXAMPLE12345"}}}
    plan = make_plan(
        "prod", environment=environment, overrides={"loadBalancer.hostedZone": "Z0EXAMPLE12345"}
    )
    assert {r.inputs["zoneId"] for r in plan.of_type(RECORD)} == {"Z0EXAMPLE12345"}
    assert ("aws:route53/getZone:getZone", {"zoneId": "Z0EXAMPLE12345"}) in plan.invokes


def test_a_zone_name_is_looked_up_among_public_zones(prod_plan):
    assert ("aws:route53/getZone:getZone", {"name": "example.com", "privateZone": False}) in (
        prod_plan.invokes
    )


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        (
            {"example.com": {"id": "Z0PRIVATE1", "private": True}},
            "loadBalancer.hostedZone: Z0PRIVATE1 is a private zone; ACM validates a certificate "
            "only through public DNS: give a public zone, or certificateArn",
        ),
        (
            {"other.org": {"id": "Z0PRIVATE1"}},
            "loadBalancer.domainName: 'shop.example.com' is outside the hosted zone 'other.org' "
            "(Z0PRIVATE1), where the created certificate is validated; give a name in that "
            "zone, or certificateArn",
        ),
    ],
    ids=["private zone", "domain outside the zone"],
)
def test_a_zone_id_that_cannot_validate_the_certificate_is_refused_before_any_resource(
    zone, expected
):
    with pytest.raises(ConfigError) as caught:
        plan_tool.run(
            "prod",
            environment=plan_tool.SimulatedEnvironment(hostedZones=zone),
            overrides={"loadBalancer.hostedZone": "Z0PRIVATE1"},
        )
    assert caught.value.problems == [expected]


TWO_OF_EACH = """
import pulumi
from ecs_delivery.components.dns import (
    AliasRecords, AliasRecordsArgs, DnsValidatedCertificate, DnsValidatedCertificateArgs,
)
from ecs_delivery.components.waf import Baseline, WebFirewall, WebFirewallArgs

for name in ("one", "two"):
    DnsValidatedCertificate(f"{name}-cert", DnsValidatedCertificateArgs(
        zone_id="Z1", names=[f"{name}.example.com"]))
    AliasRecords(f"{name}-dns", AliasRecordsArgs(
        zone_id="Z1", names=[f"{name}.example.com"], load_balancer_dns_name="lb.example",
        load_balancer_zone_id="Z2", dual_stack=True))
    WebFirewall(f"{name}-waf", WebFirewallArgs(
        load_balancer_arn="arn:aws:lb:eu-west-1:1:loadbalancer/app/x/1",
        baseline=Baseline(name=f"{name}-acl", rate_limit=100)))
"""


def test_two_instances_of_each_edge_component_coexist_and_dual_stack_adds_aaaa(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: edge-only\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(TWO_OF_EACH)
    plan = plan_tool.run("t", config={"aws:region": "eu-west-1"}, root=tmp_path)
    records = sorted(r.name for r in plan.of_type(RECORD))
    assert records == [
        "one-cert-validation-one.example.com",
        "one-dns-one.example.com-a",
        "one-dns-one.example.com-aaaa",
        "two-cert-validation-two.example.com",
        "two-dns-two.example.com-a",
        "two-dns-two.example.com-aaaa",
    ]
    assert inputs(plan, RECORD, "two-dns-two.example.com-aaaa")["type"] == "AAAA"
    assert sorted(r.name for r in plan.of_type(WEB_ACL)) == ["one-waf", "two-waf"]
    assert sorted(r.inputs["name"] for r in plan.of_type(WEB_ACL)) == ["one-acl", "two-acl"]


def test_the_plan_tree_shows_each_waf_rule_and_where_each_record_points(prod_plan):
    tree = plan_tool.render_tree(prod_plan)
    for line in (
        "· ecs-delivery-prod scope=REGIONAL default allow",
        "· rule 10 AWSManagedRulesAmazonIpReputationList: AWS managed group, override none",
        "· rule 20 rate-limit-per-ip: block over 2000 requests per IP per 300 s",
        f"· A shop.example.com in zone {ZONE_ID}",
        f"· alias to {ALB_DNS} (evaluateTargetHealth=False)",
        "· domainName=shop.example.com  validationMethod=DNS",
    ):
        assert line in tree
