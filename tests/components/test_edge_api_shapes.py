"""The WAF and ACM requests the provider makes from prod's registered inputs fit the AWS API.

Each mapper below is the provider's translation written out (camelCase inputs -> the API's
request), consuming every input so a new one cannot slip past unmapped; botocore's
ParamValidator then checks the request against the service model (names, types, required
members; not enums or ranges).
"""

from __future__ import annotations

from typing import Any

from tests.support.registrations import inputs
from tests.support.shapes import _Inputs, _tags, validation_errors

# Provider key -> API key where the API does not just capitalise the provider's name.
_WAF_KEYS = {"cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled"}


def _waf(value: Any) -> Any:
    """WAF's nested blocks: the same tree, keys capitalised; numbers are floats on the wire."""
    if isinstance(value, dict):
        return {_WAF_KEYS.get(k, k[0].upper() + k[1:]): _waf(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_waf(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def create_web_acl(registered: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(registered, "WebAcl")
    request = {
        "Name": i.take("name"),
        "Scope": i.take("scope"),
        "Description": i.take("description"),
        "DefaultAction": _waf(i.take("defaultAction")),
        "Rules": _waf(i.take("rules")),
        "VisibilityConfig": _waf(i.take("visibilityConfig")),
        "Tags": _tags(i.take("tags")),
    }
    i.done()
    return request


def request_certificate(registered: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(registered, "Certificate")
    request = {
        "DomainName": i.take("domainName"),
        "ValidationMethod": i.take("validationMethod"),
        "KeyAlgorithm": i.take("keyAlgorithm"),
        "Tags": _tags(i.take("tags")),
    }
    alternatives = i.take("subjectAlternativeNames")
    if alternatives:
        request["SubjectAlternativeNames"] = alternatives
    i.done()
    return request


def associate_web_acl(registered: dict[str, Any]) -> dict[str, Any]:
    i = _Inputs(registered, "WebAclAssociation")
    request = {"WebACLArn": i.take("webAclArn"), "ResourceArn": i.take("resourceArn")}
    i.done()
    return request


def test_the_web_acl_fits_wafv2_create_web_acl(prod_plan):
    request = create_web_acl(inputs(prod_plan, "aws:wafv2/webAcl:WebAcl", "waf"))
    assert request["Rules"][1]["Statement"] == {
        "RateBasedStatement": {"AggregateKeyType": "IP", "EvaluationWindowSec": 300, "Limit": 2000}
    }
    assert request["Rules"][0]["OverrideAction"] == {"None": {}}
    assert validation_errors("wafv2", "CreateWebACL", request) == ""


def test_the_association_fits_wafv2_associate_web_acl(prod_plan):
    request = associate_web_acl(
        inputs(prod_plan, "aws:wafv2/webAclAssociation:WebAclAssociation", "waf")
    )
    assert validation_errors("wafv2", "AssociateWebACL", request) == ""


def test_the_certificate_fits_acm_request_certificate(prod_plan):
    request = request_certificate(
        inputs(prod_plan, "aws:acm/certificate:Certificate", "certificate")
    )
    assert request["DomainName"] == "shop.example.com"
    assert validation_errors("acm", "RequestCertificate", request) == ""


def test_a_certificate_with_alternative_names_fits_acm_request_certificate():
    from tests.components.test_edge import _host_plan

    request = request_certificate(
        inputs(_host_plan(), "aws:acm/certificate:Certificate", "certificate")
    )
    assert request["SubjectAlternativeNames"] == ["*.shop.example.com", "api.example.com"]
    assert validation_errors("acm", "RequestCertificate", request) == ""


def test_the_shape_check_catches_a_misnamed_member(prod_plan):
    request = create_web_acl(inputs(prod_plan, "aws:wafv2/webAcl:WebAcl", "waf"))
    request["VisibilityConfig"]["CloudwatchMetricsEnabled"] = request["VisibilityConfig"].pop(
        "CloudWatchMetricsEnabled"
    )
    assert "Unknown parameter in VisibilityConfig" in validation_errors(
        "wafv2", "CreateWebACL", request
    )
