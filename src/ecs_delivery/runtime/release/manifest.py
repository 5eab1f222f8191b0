"""The release manifest: one YAML file per environment, validated all at once.

Shape (keys camelCase, unknown keys refused)::

    release: 2024.06.01-1          # release name; the release id is "<environment>-<release>"
    environment: prod              # must equal the inventory's environment
    production: true               # optional; when given it must agree with the inventory
    services:                      # only the services this release sets; others are untouched
      web:
        image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:<64 hex>
      api:
        image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:1.4.2
        sidecars:                  # optional: sidecars the stack builds (sidecars.<name>.build)
          log-router: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/api-log-router:1.4.2
    scheduledTasks:
      nightly-report:
        followsService: web        # runs web's image of this release (or web's live image)
        schedule: cron(0 3 * * ? *)
        command: [python, -m, report]
      cleanup:
        image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cleanup:2.0.0
        schedule: rate(1 hour)     # optional: omitted = the live schedule is kept

Rules: every service and task must be in the environment's inventory; a sidecar must be
one the stack builds for that service (the inventory's `sidecars`); a task gives
exactly one of `image` or `followsService`; schedules are `cron(<6 fields>)`,
`rate(<N> <unit>)` or (Scheduler targets only) `at(yyyy-mm-ddThh:mm:ss)`; duplicate YAML
keys are refused. In production an image must be pinned: a digest (`repo@sha256:...`), a
version tag (`1.4.2`, `v1.4.2-rc.1`) or a commit-sha tag (`3f2a9c1`, `sha-3f2a9c1...`);
any other tag (`latest`, `main`, `stable`, ...) can be moved and is refused. Outside
production any tag is accepted; note the plan compares image references as text, so
re-pushing a moving tag is not seen as a change.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, Strict, ValidationError, field_validator

from ecs_delivery import inputs
from ecs_delivery.runtime import image_reference
from ecs_delivery.runtime.release.inventory import Inventory

RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# "<environment>-<release>": names the state object (releases/<id>/state.json), so no "/".
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*-[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")

VERSION_TAG = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$")
COMMIT_TAG = re.compile(r"^(?:sha-|git-)?[0-9a-f]{7,40}$")
# Named for the message only: any tag that is not a version or a sha is refused anyway.
MUTABLE_TAG_NAMES = frozenset(
    {"latest", "main", "master", "dev", "develop", "stable", "prod", "production", "staging"}
    | {"release", "edge", "nightly", "head", "test", "current", "live", "canary"}
)

_RATE = re.compile(r"^rate\((?P<n>\d+) (?P<unit>minutes?|hours?|days?)\)$")
_CRON = re.compile(r"^cron\((?P<body>[^()]*)\)$")
_AT = re.compile(r"^at\((?P<when>[^()]*)\)$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/#LW-]+$")
_CRON_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_CRON_RANGES = {0: (0, 59), 1: (0, 23), 2: (1, 31), 3: (1, 12), 4: (1, 7), 5: (1970, 2199)}


class ManifestError(ValueError):
    """The manifest is invalid; `errors` holds one `key.path: problem; fix` line each, and
    `lines` the same lines to show, each with the file and line of its key where known."""

    def __init__(self, errors: list[str], lines: list[str] | None = None) -> None:
        self.errors = list(errors)
        self.lines = list(lines if lines is not None else errors)
        super().__init__("\n".join(self.lines))


# --------------------------------------------------------------------------- YAML


def parse_yaml(text: str, name: str = "manifest") -> tuple[Any, list[str]]:
    """Decode YAML through the one reader; return (data, problems), never raise."""
    document, problems = _document(text, name)
    return (document.data if document else None), problems


def _document(text: str, name: str) -> tuple[inputs.Document | None, list[str]]:
    try:
        return inputs.parse_yaml(text, name), []
    except inputs.ReadError as error:
        return None, error.problems


def text_digest(text: str) -> str:
    """sha256 of the manifest's text: how states written before content digests name it."""
    return hashlib.sha256(text.encode()).hexdigest()


def content_digest(text: str) -> str:
    """sha256 of what the manifest says (its parsed YAML, keys sorted): a comment, blank
    lines or another key order leave it as it is, so a crashed release resumes after such
    an edit. Text that does not parse is named by its text digest."""
    data, problems = parse_yaml(text)
    if problems:
        return text_digest(text)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_manifest(state_digest: str, text: str) -> bool:
    """Whether a release state was written from this manifest (content, or the exact text
    for states written by an earlier engine)."""
    return state_digest in (content_digest(text), text_digest(text))


def release_of(text: str) -> str | None:
    """The release id the manifest text names, or None when it names none (or cannot be read)."""
    data, _ = parse_yaml(text)
    names = ("environment", "release")
    if isinstance(data, dict) and all(isinstance(data.get(k), str) for k in names):
        return release_id(data["environment"], data["release"])
    return None


# --------------------------------------------------------------------------- checks


def image_problem(image: str) -> str | None:
    """Why `image` is not an image reference, or None."""
    if found := image_reference.problems(image):
        return (
            f'"{image}" is not an image reference: {"; ".join(found)}; '
            f"use {image_reference.GRAMMAR}"
        )
    return None


def production_image_problem(image: str) -> str | None:
    """Why `image` may change under the same reference (refused in production), or None."""
    if image_reference.problems(image) or image_reference.split(image).digest:
        return None
    fix = "production needs an immutable tag or a digest (repo@sha256:...)"
    tag = image_reference.split(image).tag
    if tag is None:
        return f'no tag means "latest", which is mutable; {fix}'
    if VERSION_TAG.match(tag) or COMMIT_TAG.match(tag):
        return None
    if tag.lower() in MUTABLE_TAG_NAMES:
        return f'tag "{tag}" is mutable; {fix}'
    return f'tag "{tag}" is neither a version (1.2.3) nor a commit sha, so it may be moved; {fix}'


def schedule_problem(expression: str, allow_at: bool = True) -> str | None:
    """Why `expression` is not an EventBridge schedule expression, or None."""
    if m := _RATE.match(expression):
        n, unit = int(m["n"]), m["unit"]
        if n < 1:
            return f'"{expression}": the rate must be at least 1, e.g. rate(5 minutes)'
        if n == 1 and unit.endswith("s"):
            return f'"{expression}": use the singular for 1, e.g. rate(1 {unit[:-1]})'
        if n > 1 and not unit.endswith("s"):
            return f'"{expression}": use the plural above 1, e.g. rate({n} {unit}s)'
        return None
    if m := _CRON.match(expression):
        return _cron_problem(expression, m["body"].split())
    if m := _AT.match(expression):
        if not allow_at:
            return (
                f'"{expression}": at() is a one-time Scheduler expression; this task runs from '
                "an EventBridge rule, which takes cron(...) or rate(...)"
            )
        try:
            datetime.datetime.strptime(m["when"], "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return f'"{expression}": expected at(yyyy-mm-ddThh:mm:ss), e.g. at(2025-01-31T03:00:00)'
        return None
    return (
        f'"{expression}" is not a schedule expression; use cron(<6 fields>), '
        "rate(<n> minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)"
    )


def _cron_problem(expression: str, fields: list[str]) -> str | None:
    if len(fields) != 6:
        return (
            f'"{expression}" has {len(fields)} fields; cron needs 6 '
            f"({' '.join(_CRON_FIELDS)}), e.g. cron(0 3 * * ? *)"
        )
    for index, value in enumerate(fields):
        if not _CRON_FIELD.match(value):
            return f'"{expression}": {_CRON_FIELDS[index]} field "{value}" has invalid characters'
        low, high = _CRON_RANGES[index]
        for number in re.findall(r"(?<![#/])\b\d+\b", value):
            if not low <= int(number) <= high:
                return (
                    f'"{expression}": {_CRON_FIELDS[index]} value {number} is outside {low}-{high}'
                )
    if (fields[2] == "?") == (fields[4] == "?"):
        return (
            f'"{expression}": exactly one of day-of-month and day-of-week must be "?", '
            "e.g. cron(0 3 * * ? *)"
        )
    return None


# --------------------------------------------------------------------------- models


def _checked_image(value: str) -> str:
    if problem := image_problem(value):
        raise ValueError(problem)
    return value


Image = Annotated[str, AfterValidator(_checked_image)]


class ServiceSpec(inputs.Model):
    """What a release sets for one service."""

    image: Image = Field(description="image of the service's main container (tag or digest)")
    sidecars: dict[str, Image] = Field(
        default_factory=dict,
        description="container -> image of sidecars the stack builds (omitted: they keep "
        "what they run)",
    )


class TaskSpec(inputs.Model):
    """What a release sets for one scheduled task."""

    image: str | None = None
    follows_service: str | None = None
    schedule: str | None = Field(default=None, description="omitted = live schedule kept")
    command: list[str] | None = Field(
        default=None, min_length=1, description="omitted = the live command override is kept"
    )

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is not None and (problem := image_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None and (problem := schedule_problem(value)):
            raise ValueError(problem)
        return value


class Manifest(inputs.Model):
    """A validated release manifest (see the module docstring for the YAML)."""

    release: str = Field(description="release name; letters, digits, '.', '_' and '-'")
    environment: str
    production: Annotated[bool, Strict()] | None = None
    services: dict[str, ServiceSpec] = Field(default_factory=dict)
    scheduled_tasks: dict[str, TaskSpec] = Field(default_factory=dict)
    digest: str = Field(default="", exclude=True, description="sha256 of what it says")
    text: str = Field(default="", exclude=True, description="the source text")

    @field_validator("release")
    @classmethod
    def _release(cls, value: str) -> str:
        if not RELEASE_NAME.match(value):
            raise ValueError(
                f'"{value}" is not a release name; use up to 63 letters, digits, ".", "_" '
                'or "-", starting with a letter or digit (e.g. 2024.06.01-1)'
            )
        return value

    @property
    def release_id(self) -> str:
        return release_id(self.environment, self.release)


def release_id(environment: str, release: str) -> str:
    """The release's identity: one state object per (environment, release name)."""
    return f"{environment}-{release}"


# --------------------------------------------------------------------------- loading


def _cross_checks(data: dict[str, Any], inventory: Inventory) -> list[str]:
    """Checks against the inventory and across keys, on the raw data (so they run even
    when another part of the manifest failed its types)."""
    problems: list[str] = []
    environment = data.get("environment")
    if isinstance(environment, str) and environment != inventory.environment:
        problems.append(
            f'environment: the manifest is for "{environment}" but the inventory describes '
            f'"{inventory.environment}"; use the manifest of {inventory.environment} or the '
            "other environment's inventory"
        )
    production = data.get("production")
    if isinstance(production, bool) and production != inventory.production:
        problems.append(
            f"production: {str(production).lower()} contradicts the environment "
            f"{inventory.environment}, which is {'' if inventory.production else 'not '}"
            "production; remove the key or set it to "
            f"{str(inventory.production).lower()}"
        )

    services = data.get("services")
    known_services = sorted(inventory.services)
    if isinstance(services, dict):
        for name, spec in services.items():
            if name not in inventory.services:
                problems.append(
                    f"services.{name}: unknown service in {inventory.environment}; known "
                    f"services: {', '.join(known_services) or '(none)'}"
                )
            spec = spec if isinstance(spec, dict) else {}
            image = spec.get("image")
            problem = production_image_problem(image) if isinstance(image, str) else None
            if inventory.production and problem:
                problems.append(f"services.{name}.image: {problem}")
            sidecars = spec.get("sidecars")
            if isinstance(sidecars, dict):
                problems += _sidecar_problems(name, sidecars, inventory)

    tasks = data.get("scheduledTasks")
    if isinstance(tasks, dict):
        known_tasks = sorted(inventory.scheduled_tasks)
        for name, spec in tasks.items():
            target = inventory.scheduled_tasks.get(name)
            if target is None:
                problems.append(
                    f"scheduledTasks.{name}: unknown scheduled task in "
                    f"{inventory.environment}; known tasks: {', '.join(known_tasks) or '(none)'}"
                )
            if not isinstance(spec, dict):
                continue
            image, follows = spec.get("image"), spec.get("followsService")
            if image is not None and follows is not None:
                problems.append(
                    f"scheduledTasks.{name}: give either image or followsService, not both"
                )
            elif image is None and follows is None:
                problems.append(
                    f"scheduledTasks.{name}: give image (its own image) or followsService "
                    "(the service whose image it runs)"
                )
            if isinstance(follows, str) and follows not in inventory.services:
                problems.append(
                    f'scheduledTasks.{name}.followsService: unknown service "{follows}"; '
                    f"known services: {', '.join(known_services) or '(none)'}"
                )
            problem = production_image_problem(image) if isinstance(image, str) else None
            if inventory.production and problem:
                problems.append(f"scheduledTasks.{name}.image: {problem}")
            schedule = spec.get("schedule")
            on_rule = target is not None and not target.uses_scheduler
            valid = isinstance(schedule, str) and schedule_problem(schedule) is None
            rule_problem = schedule_problem(schedule, allow_at=False) if valid else None
            if on_rule and rule_problem:
                problems.append(f"scheduledTasks.{name}.schedule: {rule_problem}")
    return problems


def _sidecar_problems(service: str, sidecars: dict[str, Any], inventory: Inventory) -> list[str]:
    """A manifest sidecar must be one the stack builds for the service (its image is the
    deployer's); any other container's image is Pulumi's, and a release must not move it."""
    problems: list[str] = []
    target = inventory.services.get(service)
    built = sorted(target.sidecars) if target is not None else []
    for container, image in sidecars.items():
        key = f"services.{service}.sidecars.{container}"
        if target is not None and container not in built:
            problems.append(
                f"{key}: not a sidecar the stack builds for {service}; it builds "
                f"{', '.join(built) or '(none)'}. Remove it, or give the sidecar a `build` "
                f"(services.{service}.sidecars.{container}.build in the stack config), run "
                "`pulumi up` and use the new releaseInventory"
            )
        problem = production_image_problem(image) if isinstance(image, str) else None
        if inventory.production and problem:
            problems.append(f"{key}: {problem}")
    return problems


def _path_key(line: str) -> str:
    return line.split(": ", 1)[0]


def load_manifest(text: str, inventory: Inventory, name: str = "manifest") -> Manifest:
    """Parse and validate manifest text (named `name` in messages) against the inventory.

    Raises ManifestError with every problem, one `key.path: problem; fix` line each.
    """
    document, problems = _document(text, name)
    data = document.data if document else None
    if data is None and not problems:
        problems.append(f"{name}: the manifest is empty; it needs release, environment, services")
    if data is not None and not isinstance(data, dict):
        problems.append(f"{name}: the manifest must be a mapping with release, environment, ...")
        data = None

    manifest: Manifest | None = None
    keyed: list[str] = []  # `key.path: problem` lines, which the document can locate
    if data is not None:
        try:
            manifest = Manifest.model_validate(data)
        except ValidationError as error:
            keyed.extend(inputs.problems(error, Manifest, missing="required key is missing"))
        keyed.extend(_cross_checks(data, inventory))

    if problems or keyed or manifest is None:
        # Stable order by key path keeps the output readable and diffable.
        errors = sorted(dict.fromkeys(problems + keyed), key=_path_key)
        located = dict(zip(keyed, inputs.located(keyed, document), strict=True)) if document else {}
        raise ManifestError(errors, [located.get(line, line) for line in errors])
    return manifest.model_copy(update={"digest": content_digest(text), "text": text})
