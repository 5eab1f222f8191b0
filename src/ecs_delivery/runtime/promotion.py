"""The promotion record: which image digests an environment ran, for the next one to deploy.

The upstream build writes it (`python -m ecs_delivery.runtime.build promotion-record`); the downstream
pipeline's S3 source reads it. This module owns the format, its validation and the S3
round trip, so both sides agree on one definition.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError

from ecs_delivery import inputs

SCHEMA_VERSION = 1
# Name of the record inside the zip the S3 source action reads (and in the build artifact).
RECORD_FILE = "promotion.json"

# <registry>/<repository>@sha256:<64 hex>: a digest names one image for ever, a tag may not.
DIGEST_URI_PATTERN = re.compile(
    r"^[a-z0-9][a-z0-9.\-]*(?::[0-9]+)?/[a-z0-9._/\-]+@sha256:[0-9a-f]{64}$"
)
# ECS container names and our service names share this alphabet.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,254}$")
# A git commit, CodeCommit commit or S3 version id: printable, no spaces, no path separators.
COMMIT_PATTERN = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_ZIP_MAGIC = b"PK\x03\x04"
# Plain-JSON records beside the zip the S3 source reads: one per release, and the newest.
PROMOTION_RECORDS_PREFIX = "promotion/"


class PromotionRecordError(ValueError):
    """A promotion record that cannot be used; the message names each bad field."""


def _digest_uri(value: str) -> str:
    if not DIGEST_URI_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not an image digest reference; expected "
            "<registry>/<repository>@sha256:<64 hex digits> (promote digests, not tags)"
        )
    return value


def _name(value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a valid name (letters, digits, '-', '_')")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("createdAt must carry a time zone, e.g. 2024-01-31T12:00:00Z")
    return value


DigestUri = Annotated[str, AfterValidator(_digest_uri)]
Name = Annotated[str, AfterValidator(_name)]


class PromotionRecord(inputs.Model):
    """service -> container -> image digest that ran in `source_stack` at `commit`."""

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")
    source_stack: str = Field(alias="sourceStack", min_length=1, max_length=200)
    commit: str = Field(pattern=COMMIT_PATTERN.pattern)
    images: dict[Name, Annotated[dict[Name, DigestUri], Field(min_length=1)]] = Field(min_length=1)
    created_at: Annotated[datetime, AfterValidator(_aware)] = Field(alias="createdAt")

    def to_json(self) -> str:
        """The record as stored: camelCase keys, sorted, one trailing newline."""
        data = self.model_dump(mode="json", by_alias=True)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def image(self, service: str, container: str) -> str:
        """The digest URI for one container; a clear error when the record lacks it."""
        containers = self.images.get(service)
        if containers is None:
            raise PromotionRecordError(
                f"promotion record from {self.source_stack!r} has no service {service!r}; "
                f"it holds: {', '.join(sorted(self.images)) or '(none)'}"
            )
        if container not in containers:
            raise PromotionRecordError(
                f"promotion record from {self.source_stack!r}: service {service!r} has no "
                f"container {container!r}; it holds: {', '.join(sorted(containers))}"
            )
        return containers[container]

    def summary(self) -> str:
        """One line for a reviewer: the commit and every digest being promoted."""
        images = ", ".join(
            f"{service}/{container}={uri.rsplit('@', 1)[1][:19]}"
            for service, containers in sorted(self.images.items())
            for container, uri in sorted(containers.items())
        )
        return f"commit {self.commit} from {self.source_stack}: {images}"


def check_claims(
    record: PromotionRecord, *, stack: str | None, commit: str | None, origin: str
) -> PromotionRecord:
    """The record, if it is of `stack` and `commit` (a prefix of 7+ characters names a commit);
    a record fetched from one place may hold another stack's or another release's images."""
    problems = []
    if stack is not None and record.source_stack != stack:
        problems.append(
            f"sourceStack: the record is of stack {record.source_stack!r}, not {stack!r}"
        )
    if commit is not None and not (
        record.commit == commit or (len(commit) >= 7 and record.commit.startswith(commit))
    ):
        problems.append(f"commit: the record is of commit {record.commit!r}, not {commit!r}")
    if problems:
        details = "\n  ".join(problems)
        raise PromotionRecordError(f"{origin} does not hold what was asked:\n  {details}")
    return record


def parse_record(data: Any, *, origin: str = "promotion record") -> PromotionRecord:
    """Validate a decoded record; every problem is reported, one line per field path."""
    if not isinstance(data, dict):
        raise PromotionRecordError(f"{origin}: expected a JSON object, got {type(data).__name__}")
    try:
        return PromotionRecord.model_validate(data)
    except ValidationError as error:
        details = "\n  ".join(inputs.problems(error, PromotionRecord, missing="is required"))
        raise PromotionRecordError(f"{origin} is not valid:\n  {details}") from None


def read_record(content: str | bytes, *, origin: str = "promotion record") -> PromotionRecord:
    """Parse a record from JSON text, or from a zip holding `promotion.json` (S3 source)."""
    if isinstance(content, bytes) and content.startswith(_ZIP_MAGIC):
        content = _unzip(content, origin)
    try:
        text = content if isinstance(content, str) else inputs.decode(content, origin)
        data = inputs.parse_json(text, origin)
    except inputs.ReadError as error:
        raise PromotionRecordError(str(error)) from None
    return parse_record(data, origin=origin)


def _unzip(content: bytes, origin: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive, archive.open(RECORD_FILE) as file:
            data = file.read(inputs.MAX_BYTES + 1)  # the header's size may lie: read within it
    except KeyError:
        raise PromotionRecordError(f"{origin}: the zip holds no {RECORD_FILE}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:  # a truncated or corrupt zip
        raise PromotionRecordError(f"{origin}: not a readable zip ({error})") from None
    if len(data) > inputs.MAX_BYTES:
        raise PromotionRecordError(
            f"{origin}: {RECORD_FILE} unpacks to more than {inputs.MAX_BYTES} bytes; a record "
            "is a few KiB: this is not one"
        )
    return data


def zipped(record: PromotionRecord) -> bytes:
    """The record as a zip with one `promotion.json`: what CodePipeline's S3 source expects."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # A fixed timestamp keeps the bytes a function of the record alone.
        info = zipfile.ZipInfo(RECORD_FILE, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, record.to_json())
    return buffer.getvalue()


def read_record_file(path: Path | str) -> PromotionRecord:
    """Read and validate a record (JSON or zip) from a local file."""
    file = Path(path)
    try:
        content = file.read_bytes()
    except OSError as error:
        raise PromotionRecordError(
            f"cannot read promotion record {file}: {error.strerror}"
        ) from None
    return read_record(content, origin=str(file))


def write_record_file(record: PromotionRecord, path: Path | str) -> Path:
    """Write the record as JSON (or as a zip when the name ends in .zip); return the path."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    if file.suffix == ".zip":
        file.write_bytes(zipped(record))
    else:
        file.write_text(record.to_json(), encoding="utf-8")
    return file


def _check_location(bucket: str, key: str) -> None:
    if not bucket or "/" in bucket:
        raise PromotionRecordError(f"bucket: {bucket!r} is not an S3 bucket name")
    if not key or key.startswith("/"):
        raise PromotionRecordError(f"key: {key!r} must be a non-empty key without a leading '/'")


def publish_record(s3: Any, record: PromotionRecord, *, bucket: str, key: str) -> str | None:
    """Upload the record to s3://bucket/key; return the object's version id (if versioned).

    A key ending in .zip gets the zipped record, which is what a CodePipeline S3 source
    action hands to later actions as an artifact; any other key gets plain JSON.
    """
    _check_location(bucket, key)
    if key.endswith(".zip"):
        body, content_type = zipped(record), "application/zip"
    else:
        body, content_type = record.to_json().encode(), "application/json"
    response = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    return response.get("VersionId")


def load_record(
    s3: Any, *, bucket: str, key: str, version_id: str | None = None
) -> PromotionRecord:
    """Download and validate a record from S3 (plain JSON or the zip `publish_record` wrote)."""
    _check_location(bucket, key)
    kwargs: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    body = s3.get_object(**kwargs)["Body"].read()
    return read_record(body, origin=f"s3://{bucket}/{key}")


def new_record(
    *,
    source_stack: str,
    commit: str,
    images: dict[str, dict[str, str]],
    created_at: datetime,
) -> PromotionRecord:
    """Build and validate a record from plain values (errors name the bad field)."""
    return parse_record(
        {
            "schema": SCHEMA_VERSION,
            "sourceStack": source_stack,
            "commit": commit,
            "images": images,
            "createdAt": created_at.isoformat(),
        }
    )


def release_record_key(stack: str, commit: str) -> str:
    """Where an environment keeps the plain-JSON record of one release it ran, by commit.

    A downstream stack that promotes `commit` reads exactly this object, so a promotion left
    committed in its config keeps naming the same images however far upstream moves on.
    """
    if not COMMIT_PATTERN.match(commit):
        raise PromotionRecordError(f"commit: {commit!r} is not a commit or record id")
    return _release_key(stack, commit)


def _release_key(stack: str, commit: str) -> str:
    return f"{PROMOTION_RECORDS_PREFIX}{stack}/releases/{commit}.json"


def release_records_pattern(stack: str) -> str:
    """Every per-release key of `stack`, as an IAM resource pattern (`...releases/*.json`)."""
    return _release_key(stack, "*")


def latest_record_key(stack: str) -> str:
    """The plain-JSON record of the release an environment runs now (its newest)."""
    return f"{PROMOTION_RECORDS_PREFIX}{stack}/latest.json"
