"""Manifest validation: every problem reported at once, one line per key path with a fix."""

from __future__ import annotations

import textwrap

import pytest

from ecs_delivery.runtime.release.manifest import ManifestError, load_manifest

from .conftest import small_inventory

DIGEST = "sha256:" + "a" * 64
REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def errors_of(text: str, production: bool = True) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_manifest(textwrap.dedent(text), small_inventory(production))
    return caught.value.errors


# Each bad manifest and the exact lines it gets: (behaviour, manifest, errors).
REFUSED = [
    pytest.param(
        f"""\
            release: r1
            environment: prod
            services:
              web: {{image: {REPO}/web:latest}}
        """,
        [
            'services.web.image: tag "latest" is mutable; production needs an immutable tag '
            "or a digest (repo@sha256:...)"
        ],
        id="latest_tag_in_production_is_refused_with_the_fix",
    ),
    pytest.param(
        f"""\
            release: r1
            environment: prod
            services:
              web: {{image: {REPO}/web:feature-login}}
              api: {{image: {REPO}/api}}
        """,
        [
            'services.api.image: no tag means "latest", which is mutable; production needs an '
            "immutable tag or a digest (repo@sha256:...)",
            'services.web.image: tag "feature-login" is neither a version (1.2.3) nor a commit '
            "sha, so it may be moved; production needs an immutable tag or a digest "
            "(repo@sha256:...)",
        ],
        id="branch_like_tag_and_missing_tag_in_production_are_refused",
    ),
    pytest.param(
        f"""\
            release: r1
            environment: prod
            services:
              webb: {{image: {REPO}/web:1.0.0}}
            scheduledTasks:
              reprot: {{image: {REPO}/report:1.0.0}}
        """,
        [
            "scheduledTasks.reprot: unknown scheduled task in prod; known tasks: cleanup, report",
            "services.webb: unknown service in prod; known services: api, web",
        ],
        id="unknown_service_and_task_are_named_with_the_known_ones",
    ),
    pytest.param(
        f"""\
            release: r1
            environment: prod
            services:
              web: {{image: {REPO}/web:1.0.0}}
              api: {{image: {REPO}/api:1.0.0}}
              web: {{image: {REPO}/web:2.0.0}}
        """,
        [
            "manifest:6: duplicate key 'web' (first at line 4); YAML keeps only the last one: "
            "remove one of them"
        ],
        id="duplicate_yaml_keys_are_refused_with_both_lines",
    ),
    pytest.param(
        """\
            release: r1
            environment: prod
            scheduledTasks:
              report: {followsService: web, schedule: cron(0 3 * * *)}
        """,
        [
            'scheduledTasks.report.schedule: "cron(0 3 * * *)" has 5 fields; cron needs 6 '
            "(minutes hours day-of-month month day-of-week year), e.g. cron(0 3 * * ? *)"
        ],
        id="cron_with_five_fields_is_refused_naming_the_schedule_key",
    ),
    pytest.param(
        f"""\
            release: r1
            environment: prod
            scheduledTasks:
              cleanup: {{image: {REPO}/cleanup:1.0.0, schedule: "at(2025-01-31T03:00:00)"}}
              report: {{followsService: web, schedule: "at(2025-01-31T03:00:00)"}}
        """,
        [
            'scheduledTasks.cleanup.schedule: "at(2025-01-31T03:00:00)": at() is a one-time '
            "Scheduler expression; this task runs from an EventBridge rule, which takes "
            "cron(...) or rate(...)"
        ],
        id="one_time_at_schedule_is_refused_for_a_rule_triggered_task",
    ),
    pytest.param(
        """\
            release: r1
            environment: prod
            scheduledTasks:
              report: {followsService: frontend}
        """,
        [
            'scheduledTasks.report.followsService: unknown service "frontend"; known services: api, web'
        ],
        id="follows_service_naming_an_unknown_service_is_refused",
    ),
    pytest.param(
        f"""\
            release: r1
            environment: prod
            scheduledTasks:
              report: {{image: {REPO}/report:1.0.0, followsService: web}}
              cleanup: {{schedule: rate(1 hour)}}
        """,
        [
            "scheduledTasks.cleanup: give image (its own image) or followsService (the service "
            "whose image it runs)",
            "scheduledTasks.report: give either image or followsService, not both",
        ],
        id="task_with_both_image_and_follows_service_is_refused",
    ),
    pytest.param(
        f"""\
            release: r1
            environment: prod
            services:
              web: {{imgae: {REPO}/web:1.0.0}}
        """,
        [
            "services.web.image: required key is missing",
            "services.web.imgae: unknown key; did you mean 'image'?",
        ],
        id="misspelt_and_missing_keys_name_the_allowed_keys",
    ),
    pytest.param(
        f"""\
            release: r1
            environment: dev
            production: false
            services:
              web: {{image: {REPO}/web:1.0.0}}
        """,
        [
            'environment: the manifest is for "dev" but the inventory describes "prod"; use the '
            "manifest of prod or the other environment's inventory",
            "production: false contradicts the environment prod, which is production; remove the "
            "key or set it to true",
        ],
        id="environment_and_production_must_agree_with_the_inventory",
    ),
]


@pytest.mark.parametrize(("text", "expected"), REFUSED)
def test_a_bad_manifest_is_refused_with_exactly_its_lines(text: str, expected: list[str]) -> None:
    assert errors_of(text) == expected


def test_valid_production_manifest_accepts_digests_versions_and_commit_shas() -> None:
    manifest = load_manifest(
        textwrap.dedent(
            f"""\
            release: 2024.06.01-1
            environment: prod
            production: true
            services:
              web: {{image: "{REPO}/web@{DIGEST}"}}
              api: {{image: "{REPO}/api:v1.4.2-rc.1"}}
            scheduledTasks:
              report:
                followsService: web
                schedule: cron(0 3 * * ? *)
                command: [python, -m, report]
              cleanup:
                image: {REPO}/cleanup:3f2a9c1
                schedule: rate(1 hour)
            """
        ),
        small_inventory(),
    )
    assert manifest.release_id == "prod-2024.06.01-1"
    assert manifest.services["api"].image.endswith(":v1.4.2-rc.1")
    assert manifest.scheduled_tasks["report"].follows_service == "web"
    assert len(manifest.digest) == 64


def test_mutable_tag_is_accepted_outside_production() -> None:
    text = textwrap.dedent(
        f"""\
        release: r1
        environment: prod
        services:
          web: {{image: {REPO}/web:latest}}
        """
    )
    manifest = load_manifest(text, small_inventory(production=False))
    assert manifest.services["web"].image.endswith(":latest")


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("rate(1 hours)", "use the singular for 1, e.g. rate(1 hour)"),
        ("rate(5 minute)", "use the plural above 1, e.g. rate(5 minutes)"),
        ("cron(0 3 * * MON *)", 'exactly one of day-of-month and day-of-week must be "?"'),
        ("cron(61 3 * * ? *)", "minutes value 61 is outside 0-59"),
        ("every day", "is not a schedule expression"),
        ("at(2025-13-01T00:00:00)", "expected at(yyyy-mm-ddThh:mm:ss)"),
    ],
)
def test_bad_schedule_expressions_are_refused_with_the_reason(schedule: str, expected: str) -> None:
    errors = errors_of(
        f"""\
        release: r1
        environment: prod
        scheduledTasks:
          report: {{followsService: web, schedule: "{schedule}"}}
        """
    )
    assert len(errors) == 1
    assert errors[0].startswith("scheduledTasks.report.schedule: ")
    assert expected in errors[0]


def test_bad_image_reference_and_release_name_are_refused() -> None:
    errors = errors_of(
        """\
        release: "r 1"
        environment: prod
        services:
          web: {image: "web image"}
        """
    )
    assert errors[0].startswith('release: "r 1" is not a release name')
    assert errors[1].startswith('services.web.image: "web image" is not an image reference')


def test_every_problem_is_reported_at_once() -> None:
    errors = errors_of(
        f"""\
        release: r1
        environment: prod
        services:
          web: {{image: {REPO}/web:latest}}
          nope: {{image: {REPO}/nope:1.0.0}}
          api: {{image: {REPO}/api:1.0.0, cpu: 256}}
        scheduledTasks:
          report: {{followsService: ghost, schedule: "rate(0 minutes)"}}
        """
    )
    keys = [line.split(": ", 1)[0] for line in errors]
    assert keys == [
        "scheduledTasks.report.followsService",
        "scheduledTasks.report.schedule",
        "services.api.cpu",
        "services.nope",
        "services.web.image",
    ]


def test_yaml_syntax_error_is_reported_with_its_line() -> None:
    errors = errors_of("release: r1\nservices: [unclosed\n")
    assert len(errors) == 1
    assert errors[0].startswith("manifest:3:1: not valid YAML:")


def test_each_problem_is_shown_with_the_line_of_its_key() -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(
            textwrap.dedent(
                f"""\
                release: r1
                environment: prod
                services:
                  web:
                    image: {REPO}/web:latest
                  nope: {{image: {REPO}/nope:1.0.0}}
                """
            ),
            small_inventory(True),
            "release.yaml",
        )
    lines = caught.value.lines
    assert [line.split(": ", 2)[:2] for line in lines] == [
        ["release.yaml:6", "services.nope"],
        ["release.yaml:5", "services.web.image"],
    ]
    assert str(caught.value) == "\n".join(lines)
    # The key-path lines themselves stay as they were (what a release's state records).
    assert [e.split(": ", 1)[0] for e in caught.value.errors] == [
        "services.nope",
        "services.web.image",
    ]


def test_a_built_sidecars_image_is_checked_as_the_services_own_is() -> None:
    inventory = small_inventory(True)
    web = inventory.services["web"].model_copy(update={"sidecars": ["proxy", "agent"]})
    inventory = inventory.model_copy(update={"services": {**inventory.services, "web": web}})
    text = f"""\
        release: r1
        environment: prod
        services:
          web:
            image: {REPO}/web:1.0.0
            sidecars: {{proxy: {REPO}/web/proxy:latest, agent: "Not An Image", envoy: {REPO}/e:1.0.0}}
    """
    with pytest.raises(ManifestError) as caught:
        load_manifest(textwrap.dedent(text), inventory)

    assert caught.value.errors == [
        'services.web.sidecars.agent: "Not An Image" is not an image reference: repository '
        "'Not An Image' is not lowercase letters and digits joined by '.', '_', '__' or '-'; "
        "use [registry/]repository[:tag][@sha256:<64 hex digits>]",
        "services.web.sidecars.envoy: not a sidecar the stack builds for web; it builds agent, "
        "proxy. Remove it, or give the sidecar a `build` (services.web.sidecars.envoy.build in "
        "the stack config), run `pulumi up` and use the new releaseInventory",
        'services.web.sidecars.proxy: tag "latest" is mutable; production needs an immutable '
        "tag or a digest (repo@sha256:...)",
    ]
    good = text.replace("latest", "1.0.0").replace('"Not An Image"', f"{REPO}/a:2.0.0")
    good = good.replace(f", envoy: {REPO}/e:1.0.0", "")
    assert load_manifest(textwrap.dedent(good), inventory).services["web"].sidecars == {
        "proxy": f"{REPO}/web/proxy:1.0.0",
        "agent": f"{REPO}/a:2.0.0",
    }
