"""Edge keys of the schema: hosted zone, WAF, internal load balancer; and the name rules behind them."""

from __future__ import annotations

import copy

import pytest

from ecs_delivery.components.config import ConfigError, parse
from ecs_delivery.components.edge_names import certificate_names, edge_names, validation_bases

from .test_config_errors import VALID, with_

WEB_ACL = "arn:aws:wafv2:eu-west-1:111111111111:regional/webacl/shared/1b3c5e7a-0000-4000-8000-123456789abc"


def _with_hosts(hosts: list[str], **load_balancer) -> dict:
    """VALID with `hosts` spread over services (at most 5 host headers each)."""
    config = copy.deepcopy(VALID)
    for index in range(0, len(hosts), 5):
        name = ["web", "api", "admin"][index // 5]
        config["services"][name] = {
            "containerPort": 8080,
            "routing": {"pathPatterns": [f"/{name}/*"], "hostHeaders": hosts[index : index + 5]},
        }
    config["loadBalancer"] = load_balancer
    return config


CASES = [
    (
        with_("loadBalancer", {"webAclArn": WEB_ACL, "waf": {}}),
        "loadBalancer.waf: give either webAclArn (an existing web ACL) or waf (create one), not both",
    ),
    (
        with_("loadBalancer.webAclArn", "arn:aws:wafv2:eu-west-1:111111111111:global/webacl/x/1"),
        "loadBalancer.webAclArn: 'arn:aws:wafv2:eu-west-1:111111111111:global/webacl/x/1' is not "
        "a regional WAFv2 web ACL ARN (arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>)",
    ),
    (
        with_("loadBalancer.waf", {"rateLimit": 5}),
        "loadBalancer.waf.rateLimit: Input should be greater than or equal to 10 (got 5)",
    ),
    (
        with_("loadBalancer.hostedZone", "not a zone"),
        "loadBalancer.hostedZone: 'not a zone' is neither a hosted zone id (Z0123456789ABC) nor a "
        "zone name (example.com)",
    ),
    (
        with_("loadBalancer.clientCidrs", ["10.0.0.0/8"]),
        "loadBalancer.clientCidrs: only for an internal load balancer (internal: true); a public "
        "one admits the world on 80/443",
    ),
    (
        with_("loadBalancer", {"internal": True, "clientCidrs": ["0.0.0.0/0"]}),
        "loadBalancer.clientCidrs: 0.0.0.0/0 admits every address; use internal: false for a "
        "public load balancer",
    ),
    (
        with_("loadBalancer", {"domainName": "shop.example.org", "hostedZone": "example.com"}),
        "loadBalancer.domainName: 'shop.example.org' is outside loadBalancer.hostedZone "
        "'example.com', where the created certificate is validated; give a name in that zone, "
        "or certificateArn",
    ),
    (
        _with_hosts(
            [f"h{i}.example.com" for i in range(10)],
            domainName="shop.example.com",
            hostedZone="example.com",
        ),
        "loadBalancer.hostedZone: the created certificate would carry 11 names (domainName and "
        "the services' host headers in the zone), more than ACM's 10; give certificateArn, or "
        "fewer host headers",
    ),
]


@pytest.mark.parametrize(("config", "expected"), CASES, ids=[c[1].split(":")[0] for c in CASES])
def test_edge_values_are_refused_by_the_schema_naming_the_key_and_the_fix(config, expected):
    with pytest.raises(ConfigError) as caught:
        parse(config)
    assert caught.value.problems == [expected]


def test_host_headers_outside_the_zone_do_not_count_towards_the_certificate_limit():
    hosts = [f"h{i}.example.com" for i in range(9)] + ["a.other.org", "b.other.org"]
    config = _with_hosts(hosts, domainName="shop.example.com", hostedZone="example.com")
    assert parse(config).load_balancer.hosted_zone == "example.com"


def test_a_given_certificate_lifts_the_name_limit_and_the_zone_requirement():
    config = _with_hosts(
        [f"h{i}.example.com" for i in range(10)],
        domainName="shop.example.org",
        hostedZone="example.com",
        certificateArn="arn:aws:acm:eu-west-1:111111111111:certificate/5e0c1a4e-0b4f-4c3e-9a57-2f2b1a6c9d10",
    )
    assert parse(config).load_balancer.domain_name == "shop.example.org"


def test_a_trailing_dot_of_a_zone_name_is_dropped():
    assert parse(with_("loadBalancer.hostedZone", "example.com.")).load_balancer.hosted_zone == (
        "example.com"
    )


def test_nat_none_is_admitted_with_an_internal_load_balancer_and_private_ecr_images():
    config = with_("network.natGateways", "none")
    config["loadBalancer"] = {"internal": True}
    config["services"]["web"]["bootstrapImage"] = (
        "111111111111.dkr.ecr.eu-west-1.amazonaws.com/shop/web:bootstrap"
    )
    assert parse(config).network.nat_gateways == "none"


def test_names_keep_the_domain_first_and_dedupe_case_insensitively():
    names = edge_names(
        "shop.example.com",
        ["API.example.com", "api.example.com", "shop.example.com"],
        "example.com",
    )
    assert names.in_zone == ["shop.example.com", "api.example.com"]
    assert names.skipped == []


def test_a_wildcard_and_its_base_share_one_validation_record():
    names = edge_names(
        "shop.example.com", ["*.shop.example.com", "*.api.example.com"], "example.com"
    )
    certificate = certificate_names("shop.example.com", names)
    assert certificate == ["shop.example.com", "*.api.example.com", "*.shop.example.com"]
    assert validation_bases(certificate) == ["shop.example.com", "api.example.com"]


def test_a_name_merely_ending_like_the_zone_is_outside_it():
    names = edge_names(None, ["badexample.com", "example.com"], "example.com")
    assert names.in_zone == ["example.com"]
    assert names.skipped == [("badexample.com", "outside the hosted zone example.com")]
