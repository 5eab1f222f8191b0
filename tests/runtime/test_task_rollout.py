"""runtime.task_rollout against moto's ECS: every deployer registers onto the newest revision of
a scheduled task's family, overlaying only its own fields, and repairs a registration that
another deployer's overtook."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from ecs_delivery.runtime.rollout import RolloutRaceError
from ecs_delivery.runtime.task_rollout import (
    READ_TAG,
    TaskChange,
    TaskStateError,
    deploy_task,
    newest,
    newest_current,
    revision_number,
)
from ecs_delivery.runtime.taskdef import describe

FAMILY = "shop-dev-report"
TEMPLATE_FAMILY = f"{FAMILY}-template"


def _definition(family: str, image: str, memory: str = "512", env: str = "info") -> dict:
    return {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": memory,
        "containerDefinitions": [
            {
                "name": "report",
                "image": image,
                "essential": True,
                "command": ["python", "-m", "app.reports"],
                "environment": [{"name": "LOG_LEVEL", "value": env}],
            }
        ],
    }


@pytest.fixture
def ecs():
    with mock_aws():
        yield boto3.client("ecs", region_name="eu-west-1")


def _template(ecs, memory: str = "1024", image: str = "busybox:1.36") -> dict:
    arn = ecs.register_task_definition(
        **_definition(TEMPLATE_FAMILY, image, memory=memory),
        tags=[{"key": "ecs-delivery:task", "value": "report"}],
    )["taskDefinition"]["taskDefinitionArn"]
    return describe(ecs, arn, include_tags=True)


def _newest(ecs) -> dict:
    return newest(ecs, FAMILY)["taskDefinition"]


def _image(definition: dict) -> str:
    return definition["containerDefinitions"][0]["image"]


def test_a_pulumi_change_keeps_the_image_a_ship_registered(ecs):
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v1"))
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v2"))  # a ship
    result = deploy_task(ecs, TaskChange(family=FAMILY, template=_template(ecs, memory="1024")))
    assert result.action == "registered"
    latest = _newest(ecs)
    assert (latest["revision"], latest["memory"], _image(latest)) == (3, "1024", "repo/web:v2")
    assert result.task_definition_arn == latest["taskDefinitionArn"]
    # Pulumi's tags come with its fields (the plan finds the task by them).
    tags = newest(ecs, FAMILY)["tags"]
    assert {"key": "ecs-delivery:task", "value": "report"} in tags


def test_a_ship_keeps_the_fields_pulumi_registered(ecs):
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v1", memory="2048"))
    result = deploy_task(ecs, TaskChange(family=FAMILY, images={"report": "repo/web:v2"}))
    latest = _newest(ecs)
    assert result.action == "registered"
    assert (latest["memory"], _image(latest)) == ("2048", "repo/web:v2")


def test_what_the_newest_revision_carries_already_registers_nothing(ecs):
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v2", memory="1024"))
    template = _template(ecs, memory="1024")
    assert deploy_task(ecs, TaskChange(family=FAMILY, template=template)).action == (
        "none-same-content"
    )
    again = deploy_task(ecs, TaskChange(family=FAMILY, images={"report": "repo/web:v2"}))
    assert again.action == "none-same-content"
    assert _newest(ecs)["revision"] == 1


def test_the_first_revision_of_a_new_task_is_the_template(ecs):
    template = _template(ecs, memory="1024", image="busybox:1.36")
    result = deploy_task(ecs, TaskChange(family=FAMILY, template=template))
    latest = _newest(ecs)
    assert (result.action, latest["family"], _image(latest)) == (
        "registered",
        FAMILY,
        "busybox:1.36",
    )


def test_an_image_for_a_task_without_revisions_is_refused_before_any_registration(ecs):
    with pytest.raises(TaskStateError, match="run `pulumi up` first"):
        deploy_task(ecs, TaskChange(family=FAMILY, images={"report": "repo/web:v2"}))
    assert newest(ecs, FAMILY) is None


def test_a_rollback_changes_nothing_where_a_newer_image_runs(ecs):
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v3"))
    result = deploy_task(
        ecs,
        TaskChange(
            family=FAMILY,
            images={"report": "repo/web:v1"},
            expect_images={"report": "repo/web:v2"},
        ),
    )
    assert (result.action, _image(_newest(ecs)), _newest(ecs)["revision"]) == (
        "superseded",
        "repo/web:v3",
        1,
    )


def test_a_registration_overtaken_by_another_deployer_is_merged_again_onto_theirs(ecs):
    """A ship registers between the rollout's read and its registration (the ship's call is a
    real RegisterTaskDefinition, made from inside the rollout's register step): the rollout's
    revision lacks the ship's image, so it registers again onto the ship's revision."""
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v1"))
    template = _template(ecs, memory="1024")
    calls = []

    def register(registration):
        if not calls:  # the ship lands first
            ecs.register_task_definition(**_definition(FAMILY, "repo/web:v2"))
        calls.append(registration)
        return ecs.register_task_definition(**registration)["taskDefinition"]["taskDefinitionArn"]

    result = deploy_task(ecs, TaskChange(family=FAMILY, template=template), register=register)
    latest = _newest(ecs)
    assert len(calls) == 2
    assert (latest["revision"], latest["memory"], _image(latest)) == (4, "1024", "repo/web:v2")
    assert revision_number(result.task_definition_arn) == 4


def test_a_deployer_overtaken_every_time_gives_up_naming_the_family(ecs):
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v1"))
    template = _template(ecs, memory="1024")

    def register(registration):
        ecs.register_task_definition(**_definition(FAMILY, "repo/web:other"))
        return ecs.register_task_definition(**registration)["taskDefinition"]["taskDefinitionArn"]

    with pytest.raises(RolloutRaceError, match=FAMILY):
        deploy_task(ecs, TaskChange(family=FAMILY, template=template), register=register)


def test_a_change_without_template_or_images_is_refused():
    with pytest.raises(ValueError, match="images: required"):
        TaskChange(family=FAMILY)


def test_the_initial_images_go_only_into_a_familys_first_revision(ecs):
    template = _template(ecs, memory="512", image="busybox:1.36")
    change = TaskChange(family=FAMILY, template=template, initial_images={"report": "repo/web:v1"})
    deploy_task(ecs, change)
    assert _image(_newest(ecs)) == "repo/web:v1"
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v2"))  # a ship
    assert deploy_task(ecs, change).action == "none-same-content"
    assert _image(_newest(ecs)) == "repo/web:v2"


def test_a_rollback_that_reads_another_deployers_overtaken_registration_still_takes_its_image_back(
    ecs,
):
    """Issue 21, item 7 (found by tests/runtime/test_interleavings_tasks.py): `pulumi up` and a
    release both read revision 1; the release registers 2 with its image, the `up` registers 3
    (overtaken: built on 1, so it still runs the old image) and, before the `up` merges again,
    `release rollback` reads the newest. Revision 3's old image is no newer deployment: the
    rollback must take the release's image back, and the `up`'s repair must keep it back."""
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v1"))
    template = _template(ecs, memory="1024")
    calls = []

    def register(registration):
        if not calls:  # the release lands between the `up`'s read and its registration
            deploy_task(ecs, TaskChange(family=FAMILY, images={"report": "repo/web:v2"}))
        elif len(calls) == 1:  # the rollback, between the `up`'s two registrations
            rolled_back.append(
                deploy_task(
                    ecs,
                    TaskChange(
                        family=FAMILY,
                        images={"report": "repo/web:v1"},
                        expect_images={"report": "repo/web:v2"},
                    ),
                )
            )
        calls.append(registration)
        return ecs.register_task_definition(**registration)["taskDefinition"]["taskDefinitionArn"]

    rolled_back: list = []
    result = deploy_task(ecs, TaskChange(family=FAMILY, template=template), register=register)
    latest = _newest(ecs)
    assert rolled_back[0].action == "registered"
    assert result.action == "registered"
    assert (latest["memory"], _image(latest)) == ("1024", "repo/web:v1")


def test_a_rollback_overtaken_by_a_newer_ship_leaves_the_ship_running_not_its_own_revision(ecs):
    """Issue 21, item 7 (the exploration's rollback-vs-pin orders): a ship lands between the
    rollback's read and its registration, so the rollback's revision (the old image) is
    overtaken and newest. The rollback then finds the newer image and stops; the schedule runs
    the newest revision, so that must be the ship's image again, not the rollback's stale one."""
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v2"))  # the release's
    calls = []

    def register(registration):
        if not calls:
            deploy_task(ecs, TaskChange(family=FAMILY, images={"report": "repo/web:v3"}))
        calls.append(registration)
        return ecs.register_task_definition(**registration)["taskDefinition"]["taskDefinitionArn"]

    rollback = TaskChange(
        family=FAMILY, images={"report": "repo/web:v1"}, expect_images={"report": "repo/web:v2"}
    )
    result = deploy_task(ecs, rollback, register=register)
    assert result.action == "superseded" and result.images == {"report": "repo/web:v3"}
    assert _image(_newest(ecs)) == "repo/web:v3"
    assert result.task_definition_arn == _newest(ecs)["taskDefinitionArn"]


def test_a_revision_is_current_unless_a_current_one_came_between_its_read_and_it(ecs):
    """The tag every registration carries: its deployer's read. An overtaken revision is nobody's
    base; one whose in-between revisions were all overtaken is current."""
    ecs.register_task_definition(**_definition(FAMILY, "repo/web:v1"))  # 1, untagged: current

    def tagged(image, read):
        return ecs.register_task_definition(
            **_definition(FAMILY, image), tags=[{"key": READ_TAG, "value": str(read)}]
        )

    tagged("repo/web:v2", 1)  # 2: read 1, current
    tagged("repo/web:v3", 1)  # 3: read 1, but 2 came in between: overtaken
    assert _image(newest_current(ecs, FAMILY)["taskDefinition"]) == "repo/web:v2"
    tagged("repo/web:v4", 2)  # 4: read 2, only the overtaken 3 in between: current
    assert _image(newest_current(ecs, FAMILY)["taskDefinition"]) == "repo/web:v4"
