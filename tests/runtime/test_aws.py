"""ecs_delivery.runtime.aws: sessions from explicit settings, retrying clients, throttling backoff."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from ecs_delivery.runtime.aws import (
    BACKOFF_BASE_SECONDS,
    RETRY_CONFIG,
    call_with_backoff,
    chunks,
    client,
    retry_budget_seconds,
    session,
)

TASK_DEFINITION = {
    "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2",
    "family": "web",
    "revision": 2,
    "containerDefinitions": [{"name": "app", "image": "web:2"}],
}


def offline_ecs():
    # Stubber answers before any request is sent; these keys never leave the process.
    return boto3.Session(
        region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("ecs")


def throttled(code: str = "ThrottlingException") -> dict:
    return {"service_error_code": code, "service_message": "Rate exceeded", "http_status_code": 400}


def test_throttled_register_is_retried_with_growing_jittered_waits():
    ecs = offline_ecs()
    waits: list[float] = []
    # Stubber: moto never throttles, so the two ThrottlingExceptions are scripted.
    with Stubber(ecs) as stubber:
        stubber.add_client_error("register_task_definition", **throttled())
        stubber.add_client_error("register_task_definition", **throttled())
        stubber.add_response("register_task_definition", {"taskDefinition": TASK_DEFINITION})

        response = call_with_backoff(
            ecs.register_task_definition,
            family="web",
            containerDefinitions=[{"name": "app", "image": "web:2"}],
            sleep=waits.append,
        )

        stubber.assert_no_pending_responses()
    assert response["taskDefinition"]["revision"] == 2
    assert len(waits) == 2
    # Attempt n waits between half and all of base * 2**(n-1).
    assert BACKOFF_BASE_SECONDS / 2 <= waits[0] <= BACKOFF_BASE_SECONDS
    assert BACKOFF_BASE_SECONDS <= waits[1] <= 2 * BACKOFF_BASE_SECONDS


@pytest.mark.parametrize("code", ["Throttling", "TooManyRequestsException", "RequestLimitExceeded"])
def test_other_throttling_codes_are_retried_too(code):
    ecs = offline_ecs()
    waits: list[float] = []
    with Stubber(ecs) as stubber:
        stubber.add_client_error("describe_task_definition", **throttled(code))
        stubber.add_response("describe_task_definition", {"taskDefinition": TASK_DEFINITION})
        call_with_backoff(ecs.describe_task_definition, taskDefinition="web:2", sleep=waits.append)
    assert len(waits) == 1


def test_non_throttling_error_is_raised_at_once_without_waiting():
    ecs = offline_ecs()
    waits: list[float] = []
    with Stubber(ecs) as stubber:
        stubber.add_client_error(
            "describe_task_definition",
            service_error_code="ClientException",
            service_message="Unable to describe task definition.",
        )
        with pytest.raises(ClientError, match="ClientException"):
            call_with_backoff(
                ecs.describe_task_definition, taskDefinition="nope:1", sleep=waits.append
            )
    assert waits == []


def test_throttling_beyond_max_attempts_raises_the_last_error():
    ecs = offline_ecs()
    waits: list[float] = []
    with Stubber(ecs) as stubber:
        for _ in range(3):
            stubber.add_client_error("describe_task_definition", **throttled())
        with pytest.raises(ClientError, match="ThrottlingException"):
            call_with_backoff(
                ecs.describe_task_definition,
                taskDefinition="web:2",
                sleep=waits.append,
                max_attempts=3,
            )
    assert len(waits) == 2


def test_client_uses_adaptive_retries_with_ten_attempts():
    ecs = client("ecs", boto3.Session(region_name="eu-west-1"))

    assert ecs.meta.config.retries["mode"] == "adaptive"
    # botocore stores max_attempts=10 as 10 retries + the first call.
    assert ecs.meta.config.retries["total_max_attempts"] == 11


def test_client_region_argument_wins_over_the_session_region():
    ecs = client("ecs", boto3.Session(region_name="eu-west-1"), region="us-east-2")

    assert ecs.meta.region_name == "us-east-2"


def test_session_assumes_the_role_through_sts_with_the_given_region():
    with mock_aws():
        aws = session(region="eu-central-1", role_arn="arn:aws:iam::123456789012:role/deployer")
        credentials = aws.get_credentials().get_frozen_credentials()
        identity = aws.client("sts").get_caller_identity()

    assert aws.region_name == "eu-central-1"
    assert credentials.access_key != "testing"
    assert credentials.token
    assert ":assumed-role/deployer/ecs-delivery" in identity["Arn"]


def test_session_reads_the_named_profile_not_the_shell_keys(tmp_path, monkeypatch):
    credentials_file = tmp_path / "credentials"
    credentials_file.write_text(
        "[deploy]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_file))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")

    aws = session(region="eu-west-1", profile="deploy")

    assert aws.get_credentials().get_frozen_credentials().access_key == "AKIAPROFILE"
    assert aws.region_name == "eu-west-1"


def test_session_uses_explicit_keys():
    aws = session(region="eu-west-1", access_key="AKIAEXPLICIT", secret_key="s", session_token="t")

    frozen = aws.get_credentials().get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == ("AKIAEXPLICIT", "s", "t")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"access_key": "AKIA"}, "access_key and secret_key must be given together"),
        (
            {"profile": "deploy", "access_key": "AKIA", "secret_key": "s"},
            "either profile or access_key/secret_key",
        ),
        ({"role_arn": "deployer"}, "role_arn: 'deployer' is not an IAM role ARN"),
    ],
)
def test_session_rejects_contradictory_settings_before_any_aws_call(kwargs, message):
    with pytest.raises(ValueError, match=message):
        session(region="eu-west-1", **kwargs)


def test_every_runtime_client_has_connect_and_read_timeouts_that_fit_a_lambda_step():
    assert RETRY_CONFIG.connect_timeout and RETRY_CONFIG.read_timeout
    # A release step runs on Lambda (15 minutes at most): one call that never answers,
    # retried to the end, must still leave the step time to record what happened.
    assert retry_budget_seconds(RETRY_CONFIG) <= 600
    made = client("ecs", session=boto3.Session(region_name="eu-west-1"))
    assert made.meta.config.connect_timeout == RETRY_CONFIG.connect_timeout
    assert made.meta.config.read_timeout == RETRY_CONFIG.read_timeout


def test_chunks_splits_in_order_into_batches_of_at_most_the_size():
    assert chunks(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert chunks((1, 2, 3), 10) == [[1, 2, 3]]
    assert chunks([], 10) == []
