"""Malformed stack configs: every problem reported at once, one line naming the key path and the fix."""

from __future__ import annotations

import copy

import pytest

from ecs_delivery.components.config import ConfigError, parse

VALID = {
    "services": {"web": {"containerPort": 8080}},
    "pipeline": {"source": {"provider": "codecommit", "repository": "shop"}},
}


def with_(path: str, value):
    """A copy of VALID with the dotted `path` set to `value`."""
    config = copy.deepcopy(VALID)
    node = config
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


CASES = [
    (
        "unknown top-level key",
        with_("servcies", {}),
        "servcies: unknown key; did you mean 'services'?",
    ),
    (
        "unknown service key",
        with_("services.web.memroy", 512),
        "services.web.memroy: unknown key; did you mean 'memory'?",
    ),
    (
        "unknown network key",
        with_("network.natGatways", "single"),
        "network.natGatways: unknown key; did you mean 'natGateways'?",
    ),
    ("no services", {"services": {}, "pipeline": VALID["pipeline"]}, "services: "),
    (
        "missing container port",
        with_("services.web", {"cpu": 256}),
        "services.web.containerPort: required",
    ),
    (
        "port out of range",
        with_("services.web.containerPort", 70000),
        "services.web.containerPort: ",
    ),
    (
        "cpu not a fargate size",
        with_("services.web.cpu", 300),
        "services.web.cpu: 300 is not a Fargate cpu size",
    ),
    (
        "memory invalid for cpu",
        with_("services.web.memory", 300),
        "services.web.memory: 300 is not valid for cpu 256; allowed: 512, 1024, 2048",
    ),
    (
        "memory invalid for large cpu",
        with_("services.web", {"containerPort": 80, "cpu": 4096, "memory": 4096}),
        "services.web.memory: 4096 is not valid for cpu 4096; allowed: 8192 to 30720 in steps of 1024",
    ),
    (
        "bad service name",
        with_("services.Web_1", {"containerPort": 80}),
        "services.Web_1: the name must be",
    ),
    (
        "negative desired count",
        with_("services.web.desiredCount", -1),
        "services.web.desiredCount: ",
    ),
    (
        "secret not an arn",
        with_("services.web.secrets", {"DB": "hunter2"}),
        "services.web.secrets: DB: 'hunter2' is not a Secrets Manager or SSM parameter ARN",
    ),
    (
        "secret also in env",
        with_(
            "services.web",
            {
                "containerPort": 80,
                "environment": {"DB": "x"},
                "secrets": {"DB": "arn:aws:ssm:eu-west-1:111111111111:parameter/db"},
            },
        ),
        "services.web.secrets: ['DB'] also set in environment",
    ),
    (
        "bad env name",
        with_("services.web.environment", {"1BAD": "x"}),
        "services.web.environment: invalid variable name(s) ['1BAD']",
    ),
    (
        "health check path relative",
        with_("services.web.healthCheck", {"path": "health"}),
        "services.web.healthCheck.path: 'health' must start with '/'",
    ),
    (
        "health check timeout >= interval",
        with_("services.web.healthCheck", {"intervalSeconds": 5, "timeoutSeconds": 5}),
        "services.web.healthCheck.timeoutSeconds: 5 must be less than intervalSeconds (5)",
    ),
    (
        "healthy threshold too low",
        with_("services.web.healthCheck", {"healthyThreshold": 1}),
        "services.web.healthCheck.healthyThreshold: ",
    ),
    (
        "routing without patterns",
        with_("services.web.routing", {"pathPatterns": []}),
        "services.web.routing.pathPatterns: give at least one path pattern or host header",
    ),
    (
        "autoscaling max below min",
        with_(
            "services.web",
            {
                "containerPort": 80,
                "desiredCount": 2,
                "autoscaling": {"minCapacity": 2, "maxCapacity": 1},
            },
        ),
        "services.web.autoscaling.maxCapacity: 1 is below minCapacity (2)",
    ),
    (
        "desired outside autoscaling",
        with_(
            "services.web",
            {
                "containerPort": 80,
                "desiredCount": 1,
                "autoscaling": {"minCapacity": 2, "maxCapacity": 4},
            },
        ),
        "services.web.autoscaling: desiredCount 1 is outside minCapacity..maxCapacity (2..4)",
    ),
    (
        "cidr not a network",
        with_("network.cidr", "10.0.0.1/16"),
        "network.cidr: '10.0.0.1/16' is not a network CIDR",
    ),
    (
        "cidr too large",
        with_("network.cidr", "10.0.0.0/8"),
        "network.cidr: 10.0.0.0/8 must be an IPv4 CIDR from /16 to /24",
    ),
    (
        "cidr public",
        with_("network.cidr", "8.8.0.0/16"),
        "network.cidr: 8.8.0.0/16 is not a private range",
    ),
    (
        "four zones",
        with_("network.availabilityZones", 4),
        "network.availabilityZones: Input should be 2 or 3",
    ),
    ("nat policy unknown", with_("network.natGateways", "many"), "network.natGateways: "),
    (
        "test listener open to the world",
        with_("loadBalancer.testListenerCidrs", ["0.0.0.0/0"]),
        "loadBalancer.testListenerCidrs: 0.0.0.0/0 opens the test listener to the world",
    ),
    (
        "test listener on 443",
        with_("loadBalancer.testListenerPort", 443),
        "loadBalancer.testListenerPort: 443 is a production port",
    ),
    (
        "certificate not an acm arn",
        with_("loadBalancer.certificateArn", "my-cert"),
        "loadBalancer.certificateArn: 'my-cert' is not an ACM certificate ARN",
    ),
    ("log retention not allowed", with_("logRetentionDays", 10), "logRetentionDays: "),
    (
        "promoteRelease without upstream",
        with_("promoteRelease", "3f9c2a1"),
        "promoteRelease: needs upstreamStack",
    ),
    ("retired promote switch", with_("promote", True), "promote: replaced by promoteRelease"),
    ("promoteRelease not a commit", with_("promoteRelease", "a b"), "promoteRelease: String"),
    (
        "duplicate priorities",
        with_(
            "services",
            {
                "a": {"containerPort": 80, "routing": {"pathPatterns": ["/a"], "priority": 5}},
                "b": {"containerPort": 80, "routing": {"pathPatterns": ["/b"], "priority": 5}},
            },
        ),
        "services.b.routing.priority: 5 is also used by service a",
    ),
    (
        "two catch-alls",
        with_("services", {"a": {"containerPort": 80}, "b": {"containerPort": 81}}),
        "services: ['a', 'b'] all route every path",
    ),
    (
        "reserved tag",
        with_("tags", {"aws:owner": "x"}),
        "tags: tag key(s) ['aws:owner'] are reserved",
    ),
    (
        "unknown deployment config",
        with_("deployment.config", "Fast"),
        "deployment.config: unknown deployment configuration 'Fast'",
    ),
    (
        "codestar without connection",
        with_("pipeline.source", {"provider": "codestar", "repository": "org/app"}),
        "pipeline.source.connectionArn: required for provider codestar",
    ),
    (
        "first stack without source",
        {"services": VALID["services"]},
        "pipeline.source: required for the first environment",
    ),
    (
        "downstream with source",
        with_("upstreamStack", "dev"),
        "pipeline.source: a downstream stack (upstreamStack set) takes the upstream's promotion record",
    ),
    (
        "task schedule with five cron fields",
        with_("scheduledTasks.nightly", {"schedule": "cron(0 3 * * ?)", "command": ["x"]}),
        'scheduledTasks.nightly.schedule: "cron(0 3 * * ?)" has 5 fields; cron needs 6',
    ),
    (
        "task follows an unknown service",
        with_(
            "scheduledTasks.nightly",
            {"schedule": "rate(1 day)", "command": ["x"], "followsService": "wbe"},
        ),
        "scheduledTasks.nightly.followsService: 'wbe' is not a service of this stack",
    ),
    (
        "task with image and followsService",
        with_(
            "scheduledTasks.nightly",
            {"schedule": "rate(1 day)", "command": ["x"], "followsService": "web", "image": "x:1"},
        ),
        "scheduledTasks.nightly.image: a task that followsService takes the service's image",
    ),
    (
        "task without command",
        with_("scheduledTasks.nightly", {"schedule": "rate(1 day)"}),
        "scheduledTasks.nightly.command: required",
    ),
    (
        "wrong type",
        with_("services.web.readonlyRootFilesystem", "maybe"),
        "services.web.readonlyRootFilesystem: ",
    ),
    (
        "yes is not a boolean",
        with_("loadBalancer.deletionProtection", "yes"),
        "loadBalancer.deletionProtection: use true or false (an unquoted YAML boolean), got 'yes'",
    ),
    (
        "a quoted true is not a boolean",
        with_("containerInsights", "true"),
        "containerInsights: use true or false (an unquoted YAML boolean), got 'true'",
    ),
    (
        "1 is not a boolean",
        with_("deployment.wait", 1),
        "deployment.wait: use true or false (an unquoted YAML boolean), got 1",
    ),
    (
        "on is not a boolean for a task",
        with_(
            "scheduledTasks.nightly", {"schedule": "rate(1 day)", "command": ["x"], "enabled": "on"}
        ),
        "scheduledTasks.nightly.enabled: use true or false",
    ),
    (
        "password in plain environment",
        with_("services.web.environment", {"DB_PASSWORD": "hunter2"}),
        "services.web.environment.DB_PASSWORD: looks like a secret; move it to services.web.secrets",
    ),
    (
        "token in a task's plain environment",
        with_(
            "scheduledTasks.nightly",
            {"schedule": "rate(1 day)", "command": ["x"], "environment": {"GITHUB_TOKEN": "x"}},
        ),
        "scheduledTasks.nightly.environment.GITHUB_TOKEN: looks like a secret",
    ),
]


@pytest.mark.parametrize(("config", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_config_is_refused_with_a_message_naming_the_key(config, expected):
    with pytest.raises(ConfigError) as caught:
        parse(config)
    assert any(problem.startswith(expected) for problem in caught.value.problems), (
        caught.value.problems
    )


def test_every_problem_is_reported_at_once():
    config = with_(
        "services.web", {"containerPort": 0, "cpu": 300, "memroy": 1, "secrets": {"X": "plain"}}
    )
    config["network"] = {"cidr": "bad"}
    config["promote"] = True
    with pytest.raises(ConfigError) as caught:
        parse(config)
    paths = sorted(p.split(":")[0] for p in caught.value.problems)
    assert paths == [
        "network.cidr",
        "promote",
        "services.web.containerPort",
        "services.web.cpu",
        "services.web.memroy",
        "services.web.secrets",
    ]
    assert str(caught.value).startswith("invalid stack configuration (6 problem(s)):")


def test_valid_config_gets_documented_defaults():
    config = parse(VALID)
    web = config.services["web"]
    assert (web.cpu, web.memory, web.desired_count) == (256, 512, 2)
    assert web.readonly_root_filesystem is True and web.user == "1000"
    assert (
        config.network.nat_gateways == "single" and config.load_balancer.test_listener_cidrs == []
    )
    assert web.health_check.interval_seconds == 10 and web.deregistration_delay_seconds == 15


def test_config_error_is_a_pulumi_run_error_so_the_engine_prints_no_traceback():
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD",
        "API_KEY",
        "apiKey",
        "SECRET",
        "AUTH_TOKEN",
        "PRIVATE_KEY",
        "AWS_ACCESS_KEY_ID",
    ],
)
def test_secret_like_plain_variables_are_refused_with_the_fix(name):
    with pytest.raises(ConfigError) as caught:
        parse(with_("services.web.environment", {name: "value"}))
    assert caught.value.problems == [
        f"services.web.environment.{name}: looks like a secret; move it to services.web.secrets "
        "(a Secrets Manager or SSM ARN), or list it in services.web.plainEnvironmentAllowed "
        "if it is not one"
    ]


def test_plain_environment_allowed_lets_a_false_positive_through():
    config = with_(
        "services.web.environment", {"TOKEN_URL": "https://auth/token", "LOG_LEVEL": "x"}
    )
    config["services"]["web"]["plainEnvironmentAllowed"] = ["TOKEN_URL"]
    assert parse(config).services["web"].environment["TOKEN_URL"] == "https://auth/token"


def test_real_booleans_are_accepted():
    config = with_("loadBalancer.deletionProtection", True)
    config["containerInsights"] = False
    parsed = parse(config)
    assert parsed.load_balancer.deletion_protection is True and parsed.container_insights is False


def test_a_typo_in_services_is_the_only_problem():
    config = {
        "servcies": {"web": {"containerPort": 80}},
        "pipeline": VALID["pipeline"],
        "scheduledTasks": {
            "nightly": {"schedule": "rate(1 day)", "command": ["x"], "followsService": "web"}
        },
    }
    with pytest.raises(ConfigError) as caught:
        parse(config)
    assert caught.value.problems == ["servcies: unknown key; did you mean 'services'?"]


def test_long_name_lists_are_elided():
    services = {f"svc{i:03d}": {"containerPort": 80} for i in range(200)}
    config = {**VALID, "services": services}
    config["scheduledTasks"] = {
        "nightly": {"schedule": "rate(1 day)", "command": ["x"], "followsService": "nope"}
    }
    with pytest.raises(ConfigError) as caught:
        parse(config)
    assert max(len(p) for p in caught.value.problems) < 200, caught.value.problems
    assert (
        "services: ['svc000', 'svc001', 'svc002', 'svc003', 'svc004', … 195 more] all route every path"
        in " ".join(caught.value.problems)
    )
    assert "use one of ['svc000', 'svc001', 'svc002', 'svc003', 'svc004', … 195 more]" in " ".join(
        caught.value.problems
    )


def test_an_opt_out_for_a_variable_that_is_not_there_is_refused():
    config = with_("services.web.environment", {"LOG_LEVEL": "x"})
    config["services"]["web"]["plainEnvironmentAllowed"] = ["TOKEN_URL"]
    with pytest.raises(ConfigError) as caught:
        parse(config)
    assert caught.value.problems == [
        "services.web.plainEnvironmentAllowed: 'TOKEN_URL' is not in services.web.environment; "
        "remove it"
    ]
