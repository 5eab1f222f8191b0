"""Task-definition content: what a revision says, compared and re-registered field by field."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from ecs_delivery.runtime import clock as runtime_clock
from ecs_delivery.runtime.aws import call_with_backoff

# Fields DescribeTaskDefinition adds about a revision rather than its content. They are
# dropped by the whitelist below; listed so a reader sees what "content" excludes.
DESCRIBE_ONLY_FIELDS = (
    "taskDefinitionArn",
    "revision",
    "status",
    "registeredAt",
    "registeredBy",
    "requiresAttributes",
    "compatibilities",
    "deregisteredAt",
    "deleteRequestedAt",
)

# Lists whose order carries no meaning: sorting them keeps a reordered revision "equal".
# environmentFiles is absent on purpose: its order decides which file wins.
_UNORDERED_BY_NAME = ("containerDefinitions", "volumes", "environment", "secrets")
_UNORDERED_SCALARS = ("requiresCompatibilities",)


@functools.cache
def register_fields() -> frozenset[str]:
    """RegisterTaskDefinition parameters that describe content (all but tags).

    Taken from botocore's service model: boto3 parses only modelled fields, so a described
    revision never holds a field this set does not know.
    """
    import botocore.session  # a quarter of a second: not for importers of the helpers below

    model = botocore.session.get_session().get_service_model("ecs")
    members = model.operation_model("RegisterTaskDefinition").input_shape.members
    return frozenset(members) - {"tags"}


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, list | dict) and not value)


def _prune(value: Any) -> Any:
    """Drop None, empty lists and empty dicts at every depth; keep 0, False and ""."""
    if isinstance(value, dict):
        pruned = {key: _prune(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if not _is_empty(item)}
    if isinstance(value, list):
        pruned_items = [_prune(item) for item in value]
        return [item for item in pruned_items if not _is_empty(item)]
    return value


def _canonical(value: Any, key: str | None = None) -> Any:
    """Sort dict keys and the order-free lists, at every depth."""
    if isinstance(value, dict):
        return {name: _canonical(value[name], name) for name in sorted(value)}
    if isinstance(value, list):
        items = [_canonical(item) for item in value]
        if key in _UNORDERED_BY_NAME and all(isinstance(item, dict) for item in items):
            return sorted(items, key=lambda item: str(item.get("name", "")))
        if key in _UNORDERED_SCALARS and all(isinstance(item, str) for item in items):
            return sorted(items)
        return items
    return value


def _owned_fields(task_definition: Mapping[str, Any]) -> dict[str, Any]:
    fields = register_fields()
    return _prune({key: value for key, value in task_definition.items() if key in fields})


def effective_content(task_definition: Mapping[str, Any]) -> dict[str, Any]:
    """A described `taskDefinition` reduced to what RegisterTaskDefinition takes, canonical.

    Two revisions with equal effective content run the same containers the same way, so
    deploying one over the other would be an empty blue/green cycle.
    """
    return _canonical(_owned_fields(task_definition))


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two described task definitions differ only in identity (arn, revision...)."""
    return effective_content(a) == effective_content(b)


def same_content_in_any_family(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """same_content, ignoring the family: a template and a running revision that carry the
    same fields run the same containers the same way."""
    return {**effective_content(a), "family": None} == {**effective_content(b), "family": None}


# The docker label components/bootstrap.py puts on a bootstrap container: its entry point
# (a generated health-check server, or `true`) belongs to the bootstrap image alone.
BOOTSTRAP_LABEL = "ecs-delivery.bootstrap"


def with_image(container: Mapping[str, Any], image: str) -> dict[str, Any]:
    """`container` running `image`; a bootstrap container given another image loses the
    bootstrap's entry point and label, so the first ship runs the app's own entry point."""
    changed = {**container, "image": image}
    labels = dict(container.get("dockerLabels") or {})
    if image != container.get("image") and BOOTSTRAP_LABEL in labels:
        changed.pop("entryPoint", None)
        labels.pop(BOOTSTRAP_LABEL)
        if labels:
            changed["dockerLabels"] = labels
        else:
            changed.pop("dockerLabels", None)
    return changed


def overlay_owned(
    template: Mapping[str, Any],
    running: Mapping[str, Any],
    *,
    family: str,
    images: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """RegisterTaskDefinition kwargs: Pulumi's fields from `template`, the deployer's images
    from `running`, registered into `family`.

    Each container keeps the image it runs now, unless `images` names one for it (an image
    pinned in the stack config, or a newly promoted release); a container that does not run
    yet takes the template's.
    """
    request = _owned_fields(template)
    containers = request.get("containerDefinitions", [])
    known = [container["name"] for container in containers]
    unknown = sorted(set(images or {}) - set(known))
    if unknown:
        raise ValueError(
            f"images: container(s) {', '.join(unknown)} not in the template "
            f"{template.get('taskDefinitionArn', '?')}; known: {', '.join(known) or '(none)'}"
        )
    live = images_of(running)
    request["containerDefinitions"] = [
        with_image(
            container,
            (images or {}).get(container["name"])
            or live.get(container["name"])
            or container["image"],
        )
        for container in containers
    ]
    request["family"] = family
    return request


def images_of(task_definition: Mapping[str, Any]) -> dict[str, str]:
    """Container name -> image of a described task definition."""
    return {
        container["name"]: container["image"]
        for container in task_definition.get("containerDefinitions", [])
    }


def _ecs_tags(tags: Mapping[str, str] | list[dict[str, str]]) -> list[dict[str, str]]:
    if isinstance(tags, Mapping):
        return [{"key": str(key), "value": str(value)} for key, value in sorted(tags.items())]
    return [{"key": tag["key"], "value": tag["value"]} for tag in tags]


def register_request(
    task_definition: Mapping[str, Any],
    images: Mapping[str, str] | None = None,
    *,
    tags: Mapping[str, str] | list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """RegisterTaskDefinition kwargs that copy a described revision, with `images` swapped in.

    `images` maps container name -> image; every other field is kept as it is, so the new
    revision differs from the old one only in the images. `tags` (a dict, or ECS's
    [{"key", "value"}] list) are passed on when given.
    """
    request = _owned_fields(task_definition)
    containers = request.get("containerDefinitions", [])
    known = [container["name"] for container in containers]
    for name, image in (images or {}).items():
        if name not in known:
            family = task_definition.get("family", "?")
            raise ValueError(
                f"images: container {name!r} is not in task definition family {family!r}; "
                f"known containers: {', '.join(known) or '(none)'}"
            )
        if not isinstance(image, str) or not image.strip():
            raise ValueError(f"images.{name}: {image!r} is not an image reference")
    request["containerDefinitions"] = [
        with_image(container, (images or {}).get(container["name"], container["image"]))
        for container in containers
    ]
    if tags:
        request["tags"] = _ecs_tags(tags)
    return request


def describe(
    ecs: Any,
    task_definition_arn: str,
    *,
    include_tags: bool = False,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
) -> dict[str, Any]:
    """DescribeTaskDefinition with backoff; returns the response (taskDefinition, tags)."""
    kwargs: dict[str, Any] = {"taskDefinition": task_definition_arn}
    if include_tags:
        kwargs["include"] = ["TAGS"]
    return call_with_backoff(ecs.describe_task_definition, sleep=sleep, **kwargs)


def register(
    ecs: Any,
    registration: Mapping[str, Any],
    sleep: Callable[[float], Any] = runtime_clock.sleep,
) -> str:
    """RegisterTaskDefinition with backoff; returns the new revision's ARN."""
    response = call_with_backoff(ecs.register_task_definition, sleep=sleep, **registration)
    return str(response["taskDefinition"]["taskDefinitionArn"])
