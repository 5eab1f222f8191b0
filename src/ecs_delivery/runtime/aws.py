"""AWS sessions and clients with retries, and an explicit backoff for throttled calls.

boto3 and botocore's sessions, config and credentials are imported on first use (about a
quarter of a second): the offline plan imports this module for its constants and backoff only.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from ecs_delivery.runtime import clock as runtime_clock

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config


@functools.cache
def _retry_config() -> Config:
    from botocore.config import Config

    # Timeouts bound a call to an endpoint that accepts and never answers (botocore's default
    # read timeout is 60 s per attempt); AWS APIs answer in well under a second.
    return Config(
        retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=30
    )


def __getattr__(name: str) -> Any:
    """`RETRY_CONFIG`, the clients' botocore Config, built on first use."""
    if name == "RETRY_CONFIG":
        return _retry_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# botocore's longest wait between attempts (its throttling backoff: 1 s doubling, capped).
_SDK_BACKOFF_MAX_SECONDS = 20.0


def retry_budget_seconds(config: Config) -> float:
    """The longest one call with `config` can take when every attempt times out."""
    retries = config.retries or {}
    # botocore reads `max_attempts` as retries after the first try; `total_max_attempts` as all.
    attempts = int(retries.get("total_max_attempts") or retries.get("max_attempts", 2) + 1)
    per_attempt = float(config.connect_timeout) + float(config.read_timeout)
    waits = sum(min(2.0**i, _SDK_BACKOFF_MAX_SECONDS) for i in range(attempts - 1))
    return attempts * per_attempt + waits


# Error codes AWS services use for "slow down"; all are safe to retry unchanged.
THROTTLING_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 20.0
DEFAULT_ROLE_SESSION_NAME = "ecs-delivery"

T = TypeVar("T")


@functools.cache
def _assumed_role_provider() -> type:
    """The credential provider class of assumed roles (botocore.credentials, imported late)."""
    from botocore.credentials import CredentialProvider, DeferredRefreshableCredentials

    class AssumedRoleProvider(CredentialProvider):
        """Serves assumed-role credentials that refresh themselves before they expire."""

        METHOD = "assume-role"
        CANONICAL_NAME = "ecs-delivery-assume-role"

        def __init__(self, fetcher: Any) -> None:
            super().__init__()
            self._fetcher = fetcher

        def load(self) -> DeferredRefreshableCredentials:
            return DeferredRefreshableCredentials(
                refresh_using=self._fetcher.fetch_credentials, method=self.METHOD
            )

    return AssumedRoleProvider


def _validate_session_args(
    profile: str | None,
    role_arn: str | None,
    access_key: str | None,
    secret_key: str | None,
) -> None:
    if (access_key is None) != (secret_key is None):
        raise ValueError(
            "access_key and secret_key must be given together (or neither, to use the "
            "profile or the default credential chain)"
        )
    if profile and access_key:
        raise ValueError(
            "give either profile or access_key/secret_key, not both: they name two "
            "different sources of credentials"
        )
    if role_arn is not None and not (role_arn.startswith("arn:") and ":role/" in role_arn):
        raise ValueError(
            f"role_arn: {role_arn!r} is not an IAM role ARN; expected "
            "arn:aws:iam::<account-id>:role/<name>"
        )


def session(
    region: str | None = None,
    profile: str | None = None,
    role_arn: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    *,
    role_session_name: str = DEFAULT_ROLE_SESSION_NAME,
    external_id: str | None = None,
) -> boto3.Session:
    """Build a boto3 session from explicit settings; assume `role_arn` through STS if given.

    The source credentials come from `profile`, else the explicit keys, else the default
    chain. Assumed-role credentials refresh themselves, so a long wait for a blue/green
    deployment does not outlive them.
    """
    import boto3
    import botocore.session
    from botocore.credentials import AssumeRoleCredentialFetcher, CredentialResolver

    _validate_session_args(profile, role_arn, access_key, secret_key)
    source = botocore.session.Session(profile=profile or None)
    if access_key is not None and secret_key is not None:
        source.set_credentials(access_key, secret_key, session_token)
    if region:
        source.set_config_variable("region", region)
    if role_arn is None:
        return boto3.Session(botocore_session=source)

    source_credentials = source.get_credentials()
    if source_credentials is None:
        raise ValueError(
            f"role_arn: cannot assume {role_arn}: no source credentials were found "
            "(set a profile or keys for the stack, e.g. `pulumi config set aws:profile ...`)"
        )
    extra_args: dict[str, Any] = {"RoleSessionName": role_session_name}
    if external_id:
        extra_args["ExternalId"] = external_id
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=functools.partial(
            source.create_client, region_name=region, config=_retry_config()
        ),
        source_credentials=source_credentials,
        role_arn=role_arn,
        extra_args=extra_args,
    )
    assumed = botocore.session.Session()
    assumed.register_component(
        "credential_provider", CredentialResolver([_assumed_role_provider()(fetcher)])
    )
    if region or source.get_config_variable("region"):
        assumed.set_config_variable("region", region or source.get_config_variable("region"))
    return boto3.Session(botocore_session=assumed)


def client(service: str, session: boto3.Session | None = None, region: str | None = None) -> Any:
    """A boto3 client with adaptive retries (10 attempts); `session` defaults to the chain."""
    import boto3

    chosen = session if session is not None else boto3.Session()
    return chosen.client(service, region_name=region, config=_retry_config())


def chunks(values: Sequence[T], size: int) -> list[list[T]]:
    """`values` in consecutive lists of at most `size`: a batch API's limit per call
    (DescribeServices 10, BatchGetDeployments 100) or statements per IAM policy."""
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def is_throttling(error: BaseException) -> bool:
    """True when `error` is an AWS error that means "slow down"."""
    return (
        isinstance(error, ClientError)
        and error.response.get("Error", {}).get("Code") in THROTTLING_ERROR_CODES
    )


def backoff_delay(attempt: int, rand: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait before retry number `attempt` (1-based): exponential, half jittered."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    # Half fixed, half random: waits always grow, and callers throttled together spread out.
    return ceiling / 2 + rand(0, ceiling / 2)


def call_with_backoff(
    fn: Callable[..., T],
    *args: Any,
    sleep: Callable[[float], Any] = runtime_clock.sleep,
    max_attempts: int = 10,
    **kwargs: Any,
) -> T:
    """Call `fn(*args, **kwargs)`, retrying throttling errors with exponential backoff.

    Other errors propagate at once; after `max_attempts` throttled calls the last error
    propagates. This sits on top of the client's own retries because bulk paths
    (RegisterTaskDefinition: burst 20, 1/s sustained) exhaust those.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts: {max_attempts} must be at least 1")
    for attempt in range(1, max_attempts + 1):
        try:
            return fn(*args, **kwargs)
        except ClientError as error:
            if not is_throttling(error) or attempt == max_attempts:
                raise
            sleep(backoff_delay(attempt))
    raise AssertionError("unreachable")  # the loop returns or raises
