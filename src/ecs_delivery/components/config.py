"""Typed, validated stack configuration: the only module that reads `pulumi.Config`.

Every problem in a stack file is collected and reported at once, one line per key path,
before any resource is registered (`ConfigError` is a `pulumi.RunError`, so the engine
prints the message without a traceback).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
import zlib
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ecs_delivery import inputs
from ecs_delivery.components import bootstrap
from ecs_delivery.inputs import Problems, elide

NAMESPACE = "ecs-delivery"

# Valid Fargate task sizes (cpu units -> memory MiB), from the AWS ECS task-size table.
FARGATE_MEMORY: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:(secret:|parameter/).+"
)
ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")
WEB_ACL_ARN = re.compile(
    r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/[A-Za-z0-9_-]{1,128}/[0-9a-f-]{36}$"
)
DNS_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$")
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")
# Plain variable names that usually hold a secret; they belong in `secrets` (by ARN).
SECRET_LIKE = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL",
    re.IGNORECASE,
)

# The registry's image reference grammar (distribution/reference): each part checked on its own.
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
IMAGE_GRAMMAR = "[registry/]repository[:tag][@sha256:<64 hex digits>]"


def image_reference_problems(value: str) -> list[str]:
    """Why `value` is not an image reference (empty: it is one)."""
    problems = []
    name, at, digest = value.partition("@")
    if at and not _DIGEST.match(digest):
        problems.append(f"digest {digest!r} is not sha256:<64 hex digits>")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not _TAG.match(tag):
            problems.append(
                f"tag {tag!r} is not 1-128 letters, digits, '_', '.' or '-' (not first)"
            )
    parts = name.split("/")
    # As Docker splits it: a first part with '.', ':' or capitals, or localhost, is a registry.
    first = parts[0]
    if len(parts) > 1 and (
        any(c in first for c in ".:") or first == "localhost" or first != first.lower()
    ):
        if not _DOMAIN.match(first):
            problems.append(f"registry {first!r} is not a host name with an optional :port")
        parts = parts[1:]
    for part in parts:
        if not _PATH_COMPONENT.match(part):
            problems.append(
                f"repository {part!r} is not lowercase letters and digits joined by '.', '_', '__' or '-'"
            )
    return problems


def _image(value: str | None) -> str | None:
    """A field validator: an image reference, or None."""
    if value is None:
        return value
    problems = (
        image_reference_problems(value) if value.strip() == value and value else ["empty or padded"]
    )
    if problems:
        raise ValueError(
            f"{value!r} is not an image reference: {'; '.join(problems)}; use {IMAGE_GRAMMAR}"
        )
    return value


# A boolean: only true or false (YAML booleans), never "yes", 1 or "true".
Flag = Annotated[bool, Strict()]


class ConfigError(pulumi.RunError):
    """A stack configuration is invalid; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}\n"
            "See the configuration reference in README.md."
        )


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class NetworkConfig(_Model):
    """VPC layout: CIDR, how many availability zones, NAT gateway policy."""

    cidr: str = Field(
        "10.0.0.0/16",
        description="Private IPv4 CIDR of the VPC, /16 to /24; public subnets take eighths 1-3, private ones 5-7.",
    )
    availability_zones: Literal[2, 3] = Field(
        2, description="How many availability zones (the first available ones, sorted)."
    )
    nat_gateways: Literal["none", "single", "perAz"] = Field(
        "single",
        description="NAT gateways: `single`, `perAz` or `none` (VPC endpoints instead; needs `loadBalancer.internal: true` and every image in private ECR).",
    )
    flow_log_retention_days: int = Field(30, ge=1, description="Days VPC flow logs are kept.")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a network CIDR ({exc}); use e.g. 10.0.0.0/16"
            ) from None
        if net.version != 4 or not 16 <= net.prefixlen <= 24:
            raise ValueError(
                f"{value} must be an IPv4 CIDR from /16 to /24 (subnets are /prefix+3)"
            )
        if not net.is_private:
            raise ValueError(
                f"{value} is not a private range; use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
            )
        return value


class WafConfig(_Model):
    """The platform's WAF baseline: AWS managed rule groups and a per-IP rate limit."""

    rate_limit: int = Field(
        2000,
        ge=10,
        le=2000000000,
        description="Requests one client IP may send in 5 minutes before WAF blocks it.",
    )


class LoadBalancerConfig(_Model):
    """Application Load Balancer: production listener (80/443) and a closed test listener."""

    certificate_arn: str | None = Field(
        None,
        description="ACM certificate: HTTPS on 443 with `sslPolicy` and an HTTP to HTTPS redirect; the test listener uses HTTPS too. Omitted: HTTP only.",
    )
    domain_name: str | None = Field(
        None,
        description="DNS name the certificate covers, pointing at the load balancer; required with `certificateArn`.",
    )
    ssl_policy: str = Field(
        "ELBSecurityPolicy-TLS13-1-2-2021-06", description="TLS policy of the HTTPS listeners."
    )
    test_listener_port: int = Field(
        8443,
        ge=1,
        le=65535,
        description="Port of the test listener used for blue/green validation (not 80 or 443).",
    )
    test_listener_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach the test listener; empty keeps it closed; `0.0.0.0/0` is refused.",
    )
    deletion_protection: Flag = Field(False, description="Load balancer deletion protection.")
    idle_timeout_seconds: int = Field(60, ge=1, le=4000, description="Load balancer idle timeout.")
    hosted_zone: str | None = Field(
        None,
        description="Route 53 hosted zone (id `Z...` or public zone name): alias records for `domainName` and the host headers in the zone; with `domainName` and no `certificateArn`, a DNS-validated ACM certificate. Omitted: no DNS records.",
    )
    web_acl_arn: str | None = Field(
        None,
        description="An existing regional WAFv2 web ACL to associate with the load balancer; not with `waf`.",
    )
    waf: WafConfig | None = Field(
        None,
        description="Create a WAF web ACL (AWS common, known-bad-inputs and IP-reputation rules, a rate limit) for the load balancer; not with `webAclArn`. Omitted: no WAF (it costs money per month).",
    )
    internal: Flag = Field(
        False,
        description="Put the load balancer in the private subnets (not reachable from the internet); the validation hook reaches it inside the VPC.",
    )
    client_cidrs: list[str] = Field(
        default_factory=list,
        description="CIDRs the production listeners of an internal load balancer admit; only with `internal: true`. Omitted: the VPC CIDR.",
    )

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        if value is not None and not ACM_ARN.match(value):
            raise ValueError(
                f"{value!r} is not an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>)"
            )
        return value

    @field_validator("domain_name")
    @classmethod
    def _domain(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not DNS_NAME.match(value):
            raise ValueError(f"{value!r} is not a DNS name (e.g. shop.example.com)")
        return value

    @model_validator(mode="after")
    def _https_needs_a_name(self) -> LoadBalancerConfig:
        if self.certificate_arn and not self.domain_name:
            raise Problems(
                [
                    (
                        "domainName",
                        "required with certificateArn: a name the certificate covers, pointing at the load balancer (URLs and the validation hook use it)",
                    )
                ]
            )
        return self

    @field_validator("hosted_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        from ecs_delivery.components.edge_names import is_zone_id

        if value is not None and not (is_zone_id(value) or DNS_NAME.match(value.rstrip("."))):
            raise ValueError(
                f"{value!r} is neither a hosted zone id (Z0123456789ABC) nor a zone name (example.com)"
            )
        return value.rstrip(".") if value else value

    @field_validator("web_acl_arn")
    @classmethod
    def _web_acl(cls, value: str | None) -> str | None:
        if value is not None and not WEB_ACL_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a regional WAFv2 web ACL ARN (arn:aws:wafv2:<region>:<account>:regional/webacl/<name>/<id>)"
            )
        return value

    @field_validator("client_cidrs")
    @classmethod
    def _client_cidrs(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if value and not info.data.get("internal"):
            raise ValueError(
                "only for an internal load balancer (internal: true); a public one admits the world on 80/443"
            )
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR; use e.g. 10.0.0.0/8") from None
            if net.version != 4:
                raise ValueError(f"{cidr} is not an IPv4 CIDR; the load balancer's rules are IPv4")
            if net.prefixlen == 0:
                raise ValueError(
                    f"{cidr} admits every address; use internal: false for a public load balancer"
                )
        return value

    @model_validator(mode="after")
    def _one_waf(self) -> LoadBalancerConfig:
        if self.web_acl_arn and self.waf:
            raise Problems(
                [
                    (
                        "waf",
                        "give either webAclArn (an existing web ACL) or waf (create one), not both",
                    )
                ]
            )
        return self

    @field_validator("test_listener_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if value in (80, 443):
            raise ValueError(f"{value} is a production port; pick another (default 8443)")
        return value

    @field_validator("test_listener_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR; use e.g. 10.0.0.0/16") from None
            if net.prefixlen == 0:
                raise ValueError(
                    f"{cidr} opens the test listener to the world; list your VPN or office CIDRs"
                )
        return value


class HealthCheckConfig(_Model):
    """Target-group health check; every value explicit (API and provider defaults differ)."""

    path: str = Field("/health", description="Health-check path, starting with `/`.")
    matcher: str = Field(
        "200", description="HTTP codes that count as healthy (e.g. `200` or `200-299`)."
    )
    interval_seconds: int = Field(10, ge=5, le=300, description="Seconds between health checks.")
    timeout_seconds: int = Field(
        5, ge=2, le=120, description="Seconds before a check fails; less than `intervalSeconds`."
    )
    healthy_threshold: int = Field(
        2, ge=2, le=10, description="Consecutive successes before a target is healthy."
    )
    unhealthy_threshold: int = Field(
        2, ge=2, le=10, description="Consecutive failures before a target is unhealthy."
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'")
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthCheckConfig:
        if self.timeout_seconds >= self.interval_seconds:
            raise Problems(
                [
                    (
                        "timeoutSeconds",
                        f"{self.timeout_seconds} must be less than intervalSeconds ({self.interval_seconds})",
                    )
                ]
            )
        return self


class RoutingConfig(_Model):
    """How the listeners route to the service: path patterns and/or host headers."""

    path_patterns: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="Path patterns routed to the service (e.g. `/api/*`); at most 5.",
    )
    host_headers: list[str] = Field(
        default_factory=list,
        max_length=5,
        description="Host headers routed to the service; at most 5.",
    )
    priority: int | None = Field(
        None,
        ge=1,
        le=50000,
        description="Listener rule priority, unique per stack (lower is evaluated first). Omitted: derived from the service name alone (1000-49999, so adding or removing a service moves no other rule), a catch-all (`/*` only) 50000.",
    )

    @model_validator(mode="after")
    def _something(self) -> RoutingConfig:
        if not self.path_patterns and not self.host_headers:
            raise Problems(
                [
                    (
                        "pathPatterns",
                        "give at least one path pattern or host header, e.g. pathPatterns: ['/*']",
                    )
                ]
            )
        return self


class AutoscalingConfig(_Model):
    """Target-tracking autoscaling on average CPU."""

    min_capacity: int = Field(ge=1, description="Fewest tasks.")
    max_capacity: int = Field(ge=1, description="Most tasks; at least `minCapacity`.")
    target_cpu_percent: float = Field(
        60, gt=0, le=100, description="Average CPU the service is scaled to."
    )
    scale_in_cooldown_seconds: int = Field(
        300, ge=0, description="Seconds after a scale-in before the next."
    )
    scale_out_cooldown_seconds: int = Field(
        60, ge=0, description="Seconds after a scale-out before the next."
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.max_capacity < self.min_capacity:
            raise Problems(
                [("maxCapacity", f"{self.max_capacity} is below minCapacity ({self.min_capacity})")]
            )
        return self


class ValidationConfig(_Model):
    """What the AfterAllowTestTraffic hook probes through the test listener."""

    path: str = Field(
        "/health", description="Path probed through the test listener, starting with `/`."
    )
    expected_status: int = Field(
        200, ge=100, le=599, description="HTTP status every probe must get."
    )
    probes: int = Field(
        5, ge=1, le=100, description="How many probes; all must fit in one Lambda invocation."
    )
    interval_seconds: float = Field(1, ge=0, le=60, description="Seconds between probes.")
    latency_budget_ms: int = Field(
        1000, ge=1, le=60000, description="Slowest answer a probe accepts, in milliseconds."
    )

    _path = field_validator("path")(HealthCheckConfig._path.__func__)

    @model_validator(mode="after")
    def _fits_one_invocation(self) -> ValidationConfig:
        from ecs_delivery.components.hook import MAX_PROBE_SECONDS, ServiceProbe

        probe = ServiceProbe(
            service="", group_name="", path=self.path, expected_status=self.expected_status,
            probes=self.probes, interval_seconds=self.interval_seconds,
            latency_budget_ms=self.latency_budget_ms,
        )  # fmt: skip
        if probe.worst_case_seconds > MAX_PROBE_SECONDS:
            raise ValueError(
                f"{self.probes} probes may take {probe.worst_case_seconds:g} s, more than one "
                f"Lambda invocation allows ({MAX_PROBE_SECONDS} s); lower probes, "
                "intervalSeconds or latencyBudgetMs"
            )
        return self


class BuildConfig(_Model):
    """Where CodeBuild finds the service's Dockerfile in the application repository."""

    context: str = Field(".", description="Docker build context, relative to the repository root.")
    dockerfile: str = Field("Dockerfile", description="Dockerfile path, relative to the context.")


class ServiceConfig(_Model):
    """One Fargate service behind the load balancer, deployed blue/green."""

    container_port: int = Field(ge=1, le=65535, description="Container and target-group port.")
    cpu: int = Field(
        256, description="Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384."
    )
    memory: int = Field(
        512, description="Memory in MiB, valid for `cpu` (e.g. cpu 256: 512, 1024 or 2048)."
    )
    desired_count: int = Field(
        2,
        ge=0,
        le=1000,
        description="Tasks to run; with autoscaling, the count at creation (then autoscaling owns it).",
    )
    bootstrap_image: str = Field(
        bootstrap.DEFAULT_IMAGE,
        description="Image of a service before its first release; a busybox image serves the health check and validation path on `containerPort` (busybox `httpd`, files under the first writable path); any other image runs as it is.",
    )
    image: str | None = Field(
        None, description="Pin an image (wins over promotion and the live image)."
    )
    health_check: HealthCheckConfig = Field(
        HealthCheckConfig(), description="Target-group health check."
    )
    deregistration_delay_seconds: int = Field(
        15, ge=0, le=3600, description="Target-group deregistration delay."
    )
    health_check_grace_period_seconds: int = Field(
        30, ge=0, le=2147483647, description="ECS health-check grace period after a task starts."
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Plain environment variables; a name that looks like a secret (PASSWORD, TOKEN, API_KEY, ...) is refused: use `secrets`.",
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Variable name to Secrets Manager secret or SSM parameter ARN (never plain values).",
    )
    routing: RoutingConfig = Field(
        RoutingConfig(path_patterns=["/*"]), description="How the listeners route to the service."
    )
    autoscaling: AutoscalingConfig | None = Field(
        None, description="Target-tracking autoscaling on CPU. Omitted: a fixed `desiredCount`."
    )
    readonly_root_filesystem: Flag = Field(True, description="Read-only root filesystem.")
    user: str | None = Field(
        "1000", description="User the container runs as (non-root); null: the image's own."
    )
    writable_paths: list[str] = Field(
        default_factory=lambda: ["/tmp"],
        max_length=5,
        description="Absolute paths given writable volumes on a read-only root filesystem; at most 5.",
    )
    cpu_architecture: Literal["X86_64", "ARM64"] = Field(
        "X86_64",
        description="CPU architecture of the tasks; must match `pipeline.buildImage` in the first environment.",
    )
    command: list[str] | None = Field(
        None, description="Container command. Omitted: the image's own."
    )
    validation: ValidationConfig = Field(
        ValidationConfig(), description="What the blue/green validation hook probes."
    )
    build: BuildConfig = Field(
        BuildConfig(), description="Where CodeBuild finds the service's Dockerfile."
    )
    deployment_config: str | None = Field(
        None,
        description="CodeDeploy traffic shifting for this service. Omitted: `deployment.config`.",
    )
    plain_environment_allowed: list[str] = Field(
        default_factory=list,
        description="Plain variables whose name only looks like a secret (e.g. `TOKEN_URL`).",
    )

    _image = field_validator("bootstrap_image", "image")(_image)

    @field_validator("environment")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not ENV_NAME.match(k)]
        if bad:
            raise ValueError(f"invalid variable name(s) {bad}; use letters, digits and '_'")
        return value

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        problems = []
        for key, arn in value.items():
            if not ENV_NAME.match(key):
                problems.append(f"{key!r} is not a variable name")
            if not SECRET_ARN.match(arn):
                problems.append(
                    f"{key}: {arn!r} is not a Secrets Manager or SSM parameter ARN; "
                    "store the value there and give its ARN (secrets never go in plain environment)"
                )
        clash = sorted(set(value) & set(info.data.get("environment") or {}))
        if clash:
            problems.append(f"{clash} also set in environment; keep each variable in one place")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int) -> int:
        if value not in FARGATE_MEMORY:
            raise ValueError(
                f"{value} is not a Fargate cpu size; allowed: {', '.join(map(str, FARGATE_MEMORY))}"
            )
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int, info: ValidationInfo) -> int:
        cpu = info.data.get("cpu")
        allowed = FARGATE_MEMORY.get(cpu) if cpu is not None else None
        if allowed and value not in allowed:
            step = allowed[1] - allowed[0]
            shown = (
                ", ".join(map(str, allowed))
                if len(allowed) <= 8
                else f"{allowed[0]} to {allowed[-1]} in steps of {step}"
            )
            raise ValueError(f"{value} is not valid for cpu {cpu}; allowed: {shown}")
        return value

    @field_validator("autoscaling")
    @classmethod
    def _autoscaling(
        cls, value: AutoscalingConfig | None, info: ValidationInfo
    ) -> AutoscalingConfig | None:
        desired = info.data.get("desired_count")
        if (
            value
            and desired is not None
            and not value.min_capacity <= desired <= value.max_capacity
        ):
            raise ValueError(
                f"desiredCount {desired} is outside minCapacity..maxCapacity ({value.min_capacity}..{value.max_capacity}); set it inside"
            )
        return value

    @field_validator("writable_paths")
    @classmethod
    def _paths(cls, value: list[str], info: ValidationInfo) -> list[str]:
        bad = [p for p in value if not p.startswith("/")]
        if bad:
            raise ValueError(f"{bad} must be absolute paths")
        if info.data.get("readonly_root_filesystem") is False and value != ["/tmp"]:
            raise ValueError("only used with readonlyRootFilesystem: true; remove it")
        return value


SCHEDULE = re.compile(
    r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)"
    r"|cron\(\S+ \S+ \S+ \S+ \S+ \S+\)"
    r"|at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\))$"
)


class ScheduledTaskConfig(_Model):
    """A Fargate task run on a schedule by EventBridge Scheduler in the private subnets."""

    schedule: str = Field(
        description="`rate(5 minutes)`, `cron(0 3 * * ? *)` (six fields) or `at(2026-01-01T00:00:00)`."
    )
    command: list[str] = Field(min_length=1, description="The container command.")
    follows_service: str | None = Field(
        None, description="Take this service's image (a release or promotion moves both together)."
    )
    image: str | None = Field(
        None, description="Pin an image (wins over promotion and the live image)."
    )
    bootstrap_image: str = Field(
        bootstrap.DEFAULT_IMAGE,
        description="Image before the first release (also while a followed service has none); a busybox image runs `true` and exits 0; afterwards the live image is kept.",
    )
    cpu: int = Field(
        256, description="Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384."
    )
    memory: int = Field(
        512, description="Memory in MiB, valid for `cpu` (e.g. cpu 256: 512, 1024 or 2048)."
    )
    environment: dict[str, str] = Field(
        default_factory=dict,
        description="Plain environment variables; a name that looks like a secret (PASSWORD, TOKEN, API_KEY, ...) is refused: use `secrets`.",
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Variable name to Secrets Manager secret or SSM parameter ARN (never plain values).",
    )
    timezone: str = Field("UTC", description="Time zone of a cron or at schedule.")
    enabled: Flag = Field(True, description="Whether the schedule runs.")
    readonly_root_filesystem: Flag = Field(True, description="Read-only root filesystem.")
    user: str | None = Field(
        "1000", description="User the container runs as (non-root); null: the image's own."
    )
    retry_attempts: int = Field(
        2, ge=0, le=185, description="EventBridge Scheduler retries of a failed start."
    )
    plain_environment_allowed: list[str] = Field(
        default_factory=list,
        description="Plain variables whose name only looks like a secret (e.g. `TOKEN_URL`).",
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not SCHEDULE.match(value):
            raise ValueError(
                f"{value!r} is not a schedule expression; use rate(5 minutes), "
                "cron(0 3 * * ? *) (six fields) or at(2026-01-01T00:00:00)"
            )
        return value

    _image = field_validator("bootstrap_image", "image")(_image)
    _cpu = field_validator("cpu")(ServiceConfig._cpu.__func__)
    _memory = field_validator("memory")(ServiceConfig._memory.__func__)
    _env = field_validator("environment")(ServiceConfig._env.__func__)
    _secrets = field_validator("secrets")(ServiceConfig._secrets.__func__)

    @model_validator(mode="after")
    def _image_source(self) -> ScheduledTaskConfig:
        if self.follows_service and self.image:
            raise Problems(
                [
                    (
                        "image",
                        "a task that followsService takes the service's image; remove image or followsService",
                    )
                ]
            )
        return self


CODEDEPLOY_PREDEFINED = [
    "CodeDeployDefault.ECSAllAtOnce",
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
]


class CustomDeploymentConfig(_Model):
    """A traffic-shifting configuration of our own (TimeBasedCanary or TimeBasedLinear)."""

    type: Literal["canary", "linear"] = Field(
        description="`canary` (one step, then all) or `linear` (equal steps)."
    )
    percent: int = Field(ge=1, le=99, description="Traffic moved per step.")
    interval_minutes: int = Field(ge=1, le=2880, description="Minutes between steps.")


class AlarmConfig(_Model):
    """CloudWatch alarms on both target groups that stop and roll back a deployment."""

    target_5xx_count: int = Field(
        5,
        ge=1,
        alias="target5xxCount",
        description="Target 5xx responses per period that stop a deployment.",
    )
    unhealthy_hosts: int = Field(1, ge=1, description="Unhealthy targets that stop a deployment.")
    latency_p99_seconds: float | None = Field(
        None,
        gt=0,
        description="p99 target response time that stops a deployment. Omitted: no latency alarm.",
    )
    evaluation_periods: int = Field(
        2, ge=1, le=10, description="Periods over the threshold before an alarm fires."
    )
    period_seconds: int = Field(
        60,
        description="Alarm period in seconds: 60 or 300 (load balancer metrics are published once a minute).",
        json_schema_extra={"enum": [60, 300]},
    )

    @field_validator("period_seconds")
    @classmethod
    def _period(cls, value: int) -> int:
        # CloudWatch takes 10, 30 or multiples of 60, but ALB metrics come once a minute:
        # a shorter period never sees data (the CodeDeployment component refuses it too).
        if value in (10, 30):
            raise ValueError(
                f"{value} is shorter than the load balancer's 60-second metrics "
                "(the alarms would never see data); use 60 or 300"
            )
        if value not in (60, 300):
            raise ValueError(f"{value} is not an alarm period here; use 60 or 300")
        return value


# Minutes before traffic shifting starts: the replacement task set starts and passes its
# health checks, takes test traffic, and the validation hook runs. An allowance to design
# timeouts to, not a measurement.
START_AND_VALIDATE_MINUTES = 5
# Minutes of traffic shifting of the predefined configurations (linear: ten steps).
PREDEFINED_SHIFT_MINUTES = {
    "CodeDeployDefault.ECSAllAtOnce": 0,
    "CodeDeployDefault.ECSCanary10Percent5Minutes": 5,
    "CodeDeployDefault.ECSCanary10Percent15Minutes": 15,
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": 10,
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": 30,
}


class DeploymentConfig(_Model):
    """How CodeDeploy shifts traffic and how `pulumi up` waits for Pulumi-owned rollouts."""

    config: str = Field(
        "CodeDeployDefault.ECSAllAtOnce",
        description="Traffic shifting: a predefined `CodeDeployDefault.ECS*` configuration or a `customConfigs` name.",
    )
    custom_configs: dict[str, CustomDeploymentConfig] = Field(
        default_factory=dict, description="Traffic-shifting configurations of our own, by name."
    )
    termination_wait_minutes: int = Field(
        5, ge=0, le=2880, description="How long the old (blue) tasks stay after traffic moved."
    )
    alarms: AlarmConfig = Field(
        AlarmConfig(), description="Alarms that stop and roll back a deployment."
    )
    wait: Flag = Field(True, description="Whether `pulumi up` waits for a rollout it started.")
    timeout_minutes: int = Field(
        60, ge=1, le=1440, description="How long `pulumi up` waits for a rollout."
    )

    def shift_minutes(self, config: str | None = None) -> int:
        """Minutes CodeDeploy spends moving production traffic with `config` (a service's
        own `deploymentConfig`; omitted: `deployment.config`)."""
        name = config or self.config
        if name in PREDEFINED_SHIFT_MINUTES:
            return PREDEFINED_SHIFT_MINUTES[name]
        custom = self.custom_configs.get(name)
        if custom is None:
            return 0  # unknown names are refused elsewhere
        steps = 1 if custom.type == "canary" else -(-100 // custom.percent) - 1
        return steps * custom.interval_minutes

    def ships_in_minutes(self, config: str | None = None) -> int:
        """Until production runs the new revision (termination wait started): what every
        waiter waits for, so what every deployer's timeout must cover."""
        return START_AND_VALIDATE_MINUTES + self.shift_minutes(config)

    def locked_minutes(self, config: str | None = None) -> int:
        """Until the group takes the next deployment: shipped, then the termination wait."""
        return self.ships_in_minutes(config) + self.termination_wait_minutes


class SourceConfig(_Model):
    """Where the first environment's pipeline takes the application source from."""

    provider: Literal["codestar", "codecommit"] = Field(
        description="`codestar` (a CodeStar/CodeConnections connection, e.g. GitHub) or `codecommit`."
    )
    repository: str = Field(
        description="Repository: `owner/name` for codestar, the repository name for codecommit."
    )
    branch: str = Field("main", description="Branch that triggers the pipeline.")
    connection_arn: str | None = Field(
        None, description="CodeStar/CodeConnections connection ARN; required for codestar."
    )

    @model_validator(mode="after")
    def _connection(self) -> SourceConfig:
        if self.provider == "codestar" and not self.connection_arn:
            raise Problems(
                [
                    (
                        "connectionArn",
                        "required for provider codestar (a CodeStar/CodeConnections connection ARN)",
                    )
                ]
            )
        if self.provider == "codestar" and "/" not in self.repository:
            raise Problems(
                [
                    (
                        "repository",
                        f"{self.repository!r} must be owner/name for a CodeStar connection",
                    )
                ]
            )
        return self


class PipelineConfig(_Model):
    """The environment's CodePipeline: source (or upstream promotion record), build, deploy."""

    source: SourceConfig | None = Field(
        None,
        description="Application source of the first environment; required without `upstreamStack`, refused with it.",
    )
    approval: Flag | None = Field(
        None,
        description="Manual approval before deploy. Omitted: true when `upstreamStack` is set, false otherwise.",
    )
    build_compute_type: Literal[
        "BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"
    ] = Field("BUILD_GENERAL1_SMALL", description="CodeBuild compute size.")
    build_image: str = Field(
        "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
        description="CodeBuild image; an `aarch64` image builds ARM64 services.",
    )
    build_timeout_minutes: int = Field(30, ge=5, le=480, description="CodeBuild timeout.")
    ecr_keep_tagged_images: int = Field(
        50, ge=1, le=1000, description="Newest tagged images each ECR repository keeps."
    )
    ecr_untagged_expiry_days: int = Field(
        7, ge=1, description="Days before untagged ECR images expire."
    )
    artifact_expiry_days: int = Field(
        30,
        ge=1,
        description="Days before pipeline artifacts (current and noncurrent versions) expire.",
    )


class ReleaseConfig(_Model):
    """Whole-environment releases from a manifest: Step Functions engine + release pipeline."""

    source: SourceConfig = Field(
        description="Repository holding the release manifests (as `pipeline.source`)."
    )
    manifest_path: str = Field(
        "releases/{stack}.yaml",
        description="Manifest path in that repository; `{stack}` is the stack name.",
    )
    max_parallel: int = Field(
        10, ge=1, le=40, description="Deployments the release engine runs at once."
    )
    poll_seconds: int = Field(
        30, ge=5, le=600, description="Seconds between status polls of a deployment."
    )
    deployment_timeout_minutes: int = Field(
        60, ge=5, le=1440, description="How long the engine waits for one deployment."
    )
    production: Flag = Field(
        False, description="Production: manifests must name images by digest or immutable tag."
    )


KMS_KEY_ARN = re.compile(
    r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$|^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/mrk-[0-9a-f]{32}$"
)
S3_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class AccessLogsConfig(_Model):
    """Access logs: the load balancer's access and connection logs, S3 server access logs."""

    enabled: Flag = Field(
        True,
        description="ALB access and connection logs, and server access logs of the artifact (promotion) and release-state buckets, into one log bucket (SSE-S3: the only encryption ELB log delivery supports). Costs only S3 storage.",
    )
    bucket_name: str | None = Field(
        None,
        description="An existing log bucket in the stack's region (SSE-S3, with the ELB and S3 log-delivery grants of `components/access_logs.py`); no bucket is created. Omitted: the stack creates `<project>-<stack>-<account>-<region>-logs`.",
    )
    expiration_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="Days before log objects in the created log bucket expire (noncurrent versions too).",
    )

    @field_validator("bucket_name")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and (not S3_BUCKET_NAME.match(value) or ".." in value):
            raise ValueError(
                f"{value!r} is not an S3 bucket name (3-63 chars of a-z, 0-9, '.', '-')"
            )
        return value


class KmsConfig(_Model):
    """Customer-managed KMS key for buckets, ECR, logs, CodeBuild, CodePipeline, Lambda, Step Functions."""

    key_arn: str | None = Field(
        None,
        description="An existing symmetric KMS key in the stack's region (its key policy must let this account's IAM policies use it and CloudWatch Logs encrypt with it). Omitted (and `create` false): AWS-managed encryption.",
    )
    create: Flag = Field(
        False,
        description="Create a key for this stack (rotation on, least-privilege key policy); about 1 USD a month. Not with `keyArn`.",
    )

    @field_validator("key_arn")
    @classmethod
    def _key_arn(cls, value: str | None) -> str | None:
        if value is not None and not KMS_KEY_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>); an alias ARN cannot scope IAM policies"
            )
        return value

    @model_validator(mode="after")
    def _one_key(self) -> KmsConfig:
        if self.key_arn and self.create:
            raise Problems(
                [
                    (
                        "create",
                        "not with keyArn: use the given key (remove create) or create one (remove keyArn)",
                    )
                ]
            )
        return self


class TeardownConfig(_Model):
    """What `pulumi destroy` may delete with its contents (non-production stacks only)."""

    force_destroy: Flag = Field(
        False,
        description="`pulumi destroy` empties and deletes the stack's buckets (artifacts, release state, logs) and ECR repositories with their images. Refused on a production stack (`loadBalancer.deletionProtection` or `release.production`). Omitted: a non-empty bucket or repository stops the destroy.",
    )


class StackConfig(_Model):
    """Everything a stack file may say, under the `ecs-delivery:` namespace."""

    network: NetworkConfig = Field(NetworkConfig(), description="VPC layout.")
    load_balancer: LoadBalancerConfig = Field(
        LoadBalancerConfig(), description="Application Load Balancer."
    )
    services: dict[str, ServiceConfig] = Field(
        min_length=1,
        description="Services by name (at least one); a name is 1-24 chars of a-z, 0-9 and `-`, starting with a letter.",
    )
    scheduled_tasks: dict[str, ScheduledTaskConfig] = Field(
        default_factory=dict, description="Scheduled tasks by name (distinct from service names)."
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags on every resource (plus `ecs-delivery:project` and `ecs-delivery:stack`); `aws:` keys are reserved.",
    )
    log_retention_days: Literal[
        1,
        3,
        5,
        7,
        14,
        30,
        60,
        90,
        120,
        150,
        180,
        365,
        400,
        545,
        731,
        1096,
        1827,
        2192,
        2557,
        2922,
        3288,
        3653,
    ] = Field(
        30, description="Days container, hook and pipeline logs are kept (a CloudWatch Logs value)."
    )
    container_insights: Flag = Field(True, description="ECS Container Insights on the cluster.")
    upstream_stack: str | None = Field(
        None,
        description="The stack this environment promotes images from (`<stack>`, `<project>/<stack>` or `<org>/<project>/<stack>`).",
    )
    promote_release: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._\-]{1,128}$",
        description="The upstream release (commit of its promotion record) whose images this stack takes; safe to leave committed; needs `upstreamStack`.",
    )
    deployment: DeploymentConfig = Field(
        DeploymentConfig(), description="CodeDeploy traffic shifting and rollout waiting."
    )
    pipeline: PipelineConfig = Field(
        PipelineConfig(), description="The environment's CodePipeline."
    )
    release: ReleaseConfig | None = Field(
        None, description="Whole-environment releases from a manifest. Omitted: no release engine."
    )
    access_logs: AccessLogsConfig = Field(
        AccessLogsConfig(), description="Load balancer and S3 server access logs."
    )
    kms: KmsConfig = Field(KmsConfig(), description="Customer-managed encryption key.")
    teardown: TeardownConfig = Field(
        TeardownConfig(), description="What `pulumi destroy` may delete with its contents."
    )
    allowed_regions: list[str] = Field(
        default_factory=list,
        description="Regions accepted for `aws:region` besides the ones the installed botocore knows (a region newer than it).",
    )

    @field_validator("upstream_stack")
    @classmethod
    def _stack_ref(cls, value: str | None) -> str | None:
        if value is not None and not STACK_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a stack name; use <stack>, <project>/<stack> or <org>/<project>/<stack>"
            )
        return value

    @model_validator(mode="after")
    def _build_arch(self) -> StackConfig:
        from ecs_delivery.components.pipeline import environment_type

        if self.upstream_stack:  # a downstream stack builds nothing
            return self
        arm = environment_type(self.pipeline.build_image) == "ARM_CONTAINER"
        build_arch = "ARM64" if arm else "X86_64"
        problems = [
            (
                f"services.{name}.cpuArchitecture",
                f"{svc.cpu_architecture} images cannot be built on pipeline.buildImage "
                f"{self.pipeline.build_image!r} ({build_arch}); use a matching CodeBuild image",
            )
            for name, svc in sorted(self.services.items())
            if svc.cpu_architecture != build_arch
        ]
        if problems:
            raise Problems(problems)
        return self

    @model_validator(mode="after")
    def _timeouts_cover_a_deployment(self) -> StackConfig:
        """Every deployer's timeout covers a deployment of the configured shape (issue 21:
        prod's canary and termination wait outlived the pipeline's and the releases')."""
        d = self.deployment
        configs = {svc.deployment_config or d.config for svc in self.services.values()}
        slowest = max(configs or {d.config}, key=d.ships_in_minutes)
        ships = d.ships_in_minutes(slowest)
        why = (
            f"a deployment ships in about {ships} min ({START_AND_VALIDATE_MINUTES} to start "
            f"and validate + {d.shift_minutes(slowest)} of traffic shifting with {slowest})"
        )
        problems = []
        if d.timeout_minutes < ships:
            problems.append(
                (
                    "deployment.timeoutMinutes",
                    f"{d.timeout_minutes} is shorter than {why}; set at least {ships}",
                )
            )
        if self.release and self.release.deployment_timeout_minutes < ships:
            problems.append(
                (
                    "release.deploymentTimeoutMinutes",
                    f"{self.release.deployment_timeout_minutes} "
                    f"is shorter than {why}; set at least {ships}",
                )
            )
        if problems:
            raise Problems(problems)
        return self

    def ships_in_minutes(self, service: str) -> int:
        """Minutes until a deployment of `service` ships, with its own traffic shifting."""
        return self.deployment.ships_in_minutes(self.services[service].deployment_config)

    def pipeline_timeout_warning(self) -> str | None:
        """The pipeline's deploy step ships every service one after another in one build: a
        warning when its build timeout cannot cover them (CodeBuild's 8-hour limit makes it a
        warning, not a refusal, for large stacks)."""
        total = sum(self.ships_in_minutes(name) for name in self.services)
        if self.pipeline.build_timeout_minutes >= total:
            return None
        return (
            f"pipeline.buildTimeoutMinutes: {self.pipeline.build_timeout_minutes} cannot cover "
            f"{len(self.services)} deployments one after another (about {total} min until they "
            f"all ship); set at least {total}, or expect the deploy stage to time out"
        )

    @model_validator(mode="after")
    def _teardown_not_in_production(self) -> StackConfig:
        marks = [
            key
            for key, marked in (
                ("loadBalancer.deletionProtection", self.load_balancer.deletion_protection),
                ("release.production", bool(self.release and self.release.production)),
            )
            if marked
        ]
        if self.teardown.force_destroy and marks:
            raise Problems(
                [
                    (
                        "teardown.forceDestroy",
                        f"refused on a production stack ({', '.join(marks)}); "
                        "empty its buckets and repositories by hand (README: Teardown)",
                    )
                ]
            )
        return self

    @model_validator(mode="after")
    def _edge(self) -> StackConfig:
        from ecs_delivery.components.edge_config import edge_problems, no_nat_problems

        problems = edge_problems(self) + no_nat_problems(self)
        if problems:
            raise Problems(problems)
        return self

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if k.lower().startswith("aws:") or len(k) > 128]
        if bad:
            raise ValueError(f"tag key(s) {bad} are reserved or too long")
        return value


# Listener-rule priorities: a catch-all goes last; others are derived from the name alone, in
# 1000-49999 (1-999 are left for explicit ones). The whole range keeps collisions rare: none
# among svc000-svc199 (tools/bench_plan.py's names).
CATCH_ALL_PRIORITY = 50000
_FIRST_DERIVED, _DERIVED_SLOTS = 1000, 49000


def derived_priority(name: str) -> int:
    """A service's listener-rule priority from its name alone (stable hash, never 50000)."""
    return _FIRST_DERIVED + zlib.crc32(name.encode()) % _DERIVED_SLOTS


def _priority(name: str, routing: dict[str, Any]) -> tuple[Any, str]:
    """(priority, how it was chosen) from a service's raw routing values."""
    if routing.get("priority") is not None:
        return routing["priority"], "set"
    if routing.get("pathPatterns", ["/*"]) == ["/*"] and not routing.get("hostHeaders"):
        return CATCH_ALL_PRIORITY, "catch-all"
    return derived_priority(name), "derived"


def routing_priorities(services: dict[str, ServiceConfig]) -> dict[str, int]:
    """Each service's listener-rule priority: explicit, else the catch-all's, else derived."""
    return {
        name: _priority(name, svc.routing.model_dump(by_alias=True, exclude_none=True))[0]
        for name, svc in services.items()
    }


def _priority_problems(services: dict[str, Any]) -> list[str]:
    problems = []
    taken: dict[Any, tuple[str, str]] = {}
    for name, svc in services.items():
        routing = svc.get("routing") if isinstance(svc, dict) else None
        routing = routing if isinstance(routing, dict) else {}
        prio, how = _priority(name, routing)
        if prio in taken and how == "set":
            problems.append(
                f"services.{name}.routing.priority: {prio} is also used by service {taken[prio][0]}; priorities must be unique"
            )
        elif prio in taken and how == "derived" == taken[prio][1]:
            problems.append(
                f"services.{name}.routing.priority: {name} and {taken[prio][0]} both get "
                f"listener-rule priority {prio} (derived from their names); set "
                "routing.priority on one of them to a number no other service uses"
            )
        elif prio in taken and how == taken[prio][1] == "catch-all":
            continue  # two catch-alls: reported once, by the routing check
        elif prio in taken:
            problems.append(
                f"services.{name}.routing.priority: {prio} (its {how} priority) is also used by "
                f"service {taken[prio][0]}; set routing.priority on one of them to a free number"
            )
        else:
            taken[prio] = (name, how)
    return problems


def _stack_wide_problems(raw: dict[str, Any]) -> list[str]:
    """Checks across keys, run on the raw values so they report even when other keys are bad."""
    problems: list[str] = []
    services = raw.get("services")
    if isinstance(services, dict):
        for name in services:
            if not SERVICE_NAME.match(str(name)):
                problems.append(
                    f"services.{name}: the name must be 1-24 chars of a-z, 0-9 and '-', starting with a letter (it becomes AWS names)"
                )
        problems.extend(_priority_problems(services))
        catch_all = []
        for name, svc in services.items():
            routing = svc.get("routing") if isinstance(svc, dict) else None
            routing = routing if isinstance(routing, dict) else {}
            if routing.get("pathPatterns", ["/*"]) == ["/*"] and not routing.get("hostHeaders"):
                catch_all.append(name)
        if len(catch_all) > 1:
            problems.append(
                f"services: {elide(catch_all)} all route every path ('/*'); give each service routing.pathPatterns or routing.hostHeaders"
            )
    tasks = raw.get("scheduledTasks")
    if isinstance(tasks, dict):
        service_names = set(services) if isinstance(services, dict) else None
        for name, task in tasks.items():
            if not SERVICE_NAME.match(str(name)):
                problems.append(
                    f"scheduledTasks.{name}: the name must be 1-24 chars of a-z, 0-9 and '-', starting with a letter"
                )
            if isinstance(services, dict) and name in services:
                problems.append(
                    f"scheduledTasks.{name}: a service has the same name; task and service names must differ"
                )
            follows = task.get("followsService") if isinstance(task, dict) else None
            # Without valid services there is nothing to check against (that error is reported).
            if follows is not None and service_names is not None and follows not in service_names:
                problems.append(
                    f"scheduledTasks.{name}.followsService: {follows!r} is not a service of this stack; use one of {elide(sorted(service_names))}"
                )
    pipeline = raw.get("pipeline") if isinstance(raw.get("pipeline"), dict) else {}
    if raw.get("upstreamStack") and pipeline.get("source"):
        problems.append(
            "pipeline.source: a downstream stack (upstreamStack set) takes the upstream's promotion record; remove pipeline.source"
        )
    if not raw.get("upstreamStack") and not pipeline.get("source"):
        problems.append(
            "pipeline.source: required for the first environment (no upstreamStack): e.g. {provider: codestar, connectionArn: ..., repository: owner/app}"
        )
    deployment = raw.get("deployment") if isinstance(raw.get("deployment"), dict) else {}
    known_configs = set(CODEDEPLOY_PREDEFINED) | set(deployment.get("customConfigs") or {})
    chosen = [("deployment.config", deployment.get("config"))]
    if isinstance(services, dict):
        chosen += [
            (f"services.{n}.deploymentConfig", s.get("deploymentConfig"))
            for n, s in services.items()
            if isinstance(s, dict)
        ]
    for path, name in chosen:
        if name is not None and name not in known_configs:
            problems.append(
                f"{path}: unknown deployment configuration {name!r}; use one of {elide(sorted(known_configs), 8)} or define it in deployment.customConfigs"
            )
    for section in ("services", "scheduledTasks"):
        units = raw.get(section)
        for name, unit in (units or {}).items() if isinstance(units, dict) else ():
            problems.extend(_secret_like_environment(f"{section}.{name}", unit))
    if raw.get("promoteRelease") and not raw.get("upstreamStack"):
        problems.append(
            "promoteRelease: needs upstreamStack (the stack that published the release)"
        )
    return problems


def _secret_like_environment(path: str, unit: Any) -> list[str]:
    """Plain variables whose name looks like a secret, unless listed in plainEnvironmentAllowed."""
    if not isinstance(unit, dict) or not isinstance(unit.get("environment"), dict):
        return []
    allowed = unit.get("plainEnvironmentAllowed")
    allowed = [str(a) for a in allowed] if isinstance(allowed, list) else []
    problems = [
        f"{path}.environment.{key}: looks like a secret; move it to {path}.secrets (a Secrets "
        f"Manager or SSM ARN), or list it in {path}.plainEnvironmentAllowed if it is not one"
        for key in unit["environment"]
        if SECRET_LIKE.search(str(key)) and key not in allowed
    ]
    # A stale opt-out would silently let the next variable of that name through.
    problems += [
        f"{path}.plainEnvironmentAllowed: {name!r} is not in {path}.environment; remove it"
        for name in allowed
        if name not in unit["environment"]
    ]
    return problems


# --- error formatting: the one formatter of every reader (ecs_delivery.inputs) -----


# Keys earlier versions accepted, with what replaced them.
RETIRED_KEYS: dict[tuple[str | int, ...], str] = {
    ("promote",): (
        "replaced by promoteRelease: <commit> (the upstream release to take, named so that "
        "leaving it committed is harmless); remove promote (`pulumi config rm "
        "ecs-delivery:promote`) and set promoteRelease to the commit the upstream ran"
    ),
}


def validation_problems(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per problem of a pydantic error of `root`, naming the key path and the fix."""
    return inputs.problems(
        exc,
        root,
        retired=RETIRED_KEYS if root is StackConfig else None,
        missing="required; add it to the stack file",
    )


def _typo_cascade(problems: list[str]) -> list[str]:
    """Drop "X: required" when an unknown key is a typo of X: the typo is the one problem."""
    typos = {
        m.group(1) for p in problems if (m := re.search(r"unknown key; did you mean '(.+)'\?", p))
    }
    return [p for p in problems if not any(p.startswith(f"{t}: required") for t in typos)]


def parse(raw: dict[str, Any]) -> StackConfig:
    """Validate the `ecs-delivery:` keys of a stack (namespace stripped); raise ConfigError listing every problem."""
    problems = _stack_wide_problems(raw)
    try:
        parsed = StackConfig.model_validate(raw)
    except ValidationError as exc:
        problems.extend(validation_problems(exc, StackConfig))
        raise ConfigError(_typo_cascade(problems)) from None
    if problems:
        raise ConfigError(problems)
    return parsed


def _raw_namespace_config() -> dict[str, Any]:
    """All `ecs-delivery:*` keys of the running stack, JSON values decoded."""
    from pulumi.runtime.config import CONFIG  # the only enumerable view of stack config

    raw: dict[str, Any] = {}
    for key, value in CONFIG.get().items():
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            raw[name] = json.loads(value)
        except (TypeError, json.JSONDecodeError):
            raw[name] = value
    return raw


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region of every partition in the installed botocore's endpoint data."""
    import botocore.loaders

    endpoints = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(r for p in endpoints["partitions"] for r in p["regions"])


def region_problems(region: str | None, allowed: Any) -> list[str]:
    """`aws:region` missing, or unknown to botocore and not in `allowedRegions`."""
    import botocore

    if not region:
        return [
            "aws:region: required; run `pulumi config set aws:region <region>` (e.g. eu-west-1)"
        ]
    allowed = [str(a) for a in allowed] if isinstance(allowed, list) else []
    if region in known_regions() or region in allowed:
        return []
    close = difflib.get_close_matches(region, sorted(known_regions()), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return [
        f"aws:region: {region!r} is not a region botocore {botocore.__version__} knows; {hint}"
        f"if it is a new region, allow it with ecs-delivery:allowedRegions: [{region}]"
    ]


def load() -> StackConfig:
    """Read and validate the current stack's configuration (and the AWS region it needs)."""
    raw = _raw_namespace_config()
    problems = region_problems(pulumi.Config("aws").get("region"), raw.get("allowedRegions"))
    try:
        parsed = parse(raw)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return parsed


def aws_settings() -> dict[str, str | None]:
    """Region, profile and assumed role from the stack's `aws:` configuration."""
    aws = pulumi.Config("aws")
    role = aws.get_object("assumeRoles") or aws.get_object("assumeRole")
    if isinstance(role, list):
        role = role[0] if role else None
    return {
        "region": aws.get("region"),
        "profile": aws.get("profile"),
        "role_arn": (role or {}).get("roleArn") if isinstance(role, dict) else None,
    }
