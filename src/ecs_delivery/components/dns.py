"""Route 53 and ACM for the load balancer: the hosted zone, alias records, a DNS-validated certificate."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ecs_delivery.components.edge_names import (
    is_zone_id,
    resource_suffix,
    validation_base,
    validation_bases,
)
from ecs_delivery.components.naming import TYPE_PREFIX


@dataclass(frozen=True)
class HostedZone:
    zone_id: str
    name: str
    private: bool


def look_up_zone(value: str) -> HostedZone:
    """`hostedZone` as given: an id is used as is (its name is read, to know what falls in it);
    a name is looked up among the account's public zones."""
    if is_zone_id(value):
        found = aws.route53.get_zone(zone_id=value)
    else:
        found = aws.route53.get_zone(name=value, private_zone=False)
    return HostedZone(
        zone_id=found.zone_id, name=found.name.rstrip(".").lower(), private=found.private_zone
    )


@dataclass(frozen=True, kw_only=True)
class DnsValidatedCertificateArgs:
    """An ACM certificate for `names`, validated by DNS records in one hosted zone."""

    zone_id: str
    # The certificate's names: the domain name first, then its alternative names.
    names: list[str]
    tags: dict[str, str] = field(default_factory=dict)


class DnsValidatedCertificate(pulumi.ComponentResource):
    """An ACM certificate, its DNS validation records and the validation listeners wait for."""

    certificate: aws.acm.Certificate
    validation: aws.acm.CertificateValidation
    # The certificate's ARN once ACM issued it: what an HTTPS listener takes, so it waits.
    certificate_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: DnsValidatedCertificateArgs,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(f"{TYPE_PREFIX}:dns:DnsValidatedCertificate", name, None, opts)
        if not args.names:
            raise ValueError("a certificate needs at least one name")
        child = pulumi.ResourceOptions(parent=self)
        domain, *alternatives = args.names
        self.certificate = aws.acm.Certificate(
            name,
            domain_name=domain,
            subject_alternative_names=alternatives or None,
            validation_method="DNS",
            key_algorithm="RSA_2048",
            tags=args.tags,
            opts=child,
        )
        # Names are known up front, so the records are too; only their values come from ACM.
        records = [
            aws.route53.Record(
                f"{name}-validation-{resource_suffix(base)}",
                zone_id=args.zone_id,
                name=self._option(base, "resource_record_name"),
                type=self._option(base, "resource_record_type"),
                records=[self._option(base, "resource_record_value")],
                ttl=300,
                # ACM gives one account the same validation record for the same name: another
                # certificate (another stack, the replacement of this one) may have written it.
                allow_overwrite=True,
                opts=child,
            )
            for base in validation_bases(args.names)
        ]
        self.validation = aws.acm.CertificateValidation(
            name,
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[r.fqdn for r in records],
            opts=child,
        )
        self.certificate_arn = self.validation.certificate_arn
        self.register_outputs(
            {
                "certificateArn": self.certificate.arn,
                "names": args.names,
                "validationRecords": [r.fqdn for r in records],
            }
        )

    def _option(self, base: str, attribute: str) -> pulumi.Output[str]:
        def pick(options: list) -> str:
            for option in options or []:
                if validation_base(option.domain_name) == base:
                    return getattr(option, attribute)
            raise ValueError(f"ACM returned no DNS validation option for {base}")

        return self.certificate.domain_validation_options.apply(pick)


@dataclass(frozen=True, kw_only=True)
class AliasRecordsArgs:
    """Alias records in one hosted zone that point `names` at the load balancer."""

    zone_id: str
    names: list[str]
    load_balancer_dns_name: pulumi.Input[str]
    load_balancer_zone_id: pulumi.Input[str]
    # AAAA records too: only when the load balancer answers on IPv6 (dualstack).
    dual_stack: bool


class AliasRecords(pulumi.ComponentResource):
    """A (and AAAA when dual-stack) alias records pointing names at the load balancer."""

    records: dict[str, aws.route53.Record]

    def __init__(
        self, name: str, args: AliasRecordsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(f"{TYPE_PREFIX}:dns:AliasRecords", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kinds = ["A", "AAAA"] if args.dual_stack else ["A"]
        self.records = {
            f"{host} {kind}": aws.route53.Record(
                f"{name}-{resource_suffix(host)}-{kind.lower()}",
                zone_id=args.zone_id,
                name=host,
                type=kind,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=args.load_balancer_dns_name,
                        zone_id=args.load_balancer_zone_id,
                        # One simple record per name: health evaluation could only hide it.
                        evaluate_target_health=False,
                    )
                ],
                opts=child,
            )
            for host in args.names
            for kind in kinds
        }
        self.register_outputs({"records": {k: r.fqdn for k, r in self.records.items()}})
