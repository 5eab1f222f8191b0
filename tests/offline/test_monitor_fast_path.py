"""The offline plan's monitor answers plain states without the SDK's serialiser (issue 20 item 2).

Every state the simulated cloud makes for dev's resources gets the same wire Struct from the
fast path as from `rpc.serialize_properties`; states holding an unknown, a secret or an asset
fall back to the SDK.
"""

from __future__ import annotations

import pulumi
import pytest
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.sync_await import _sync_await

from ecs_delivery.offline.simcloud import SimulatedCloud, _plain_struct
from tests.conftest import make_plan


def _sdk_struct(state: dict) -> object:
    return _sync_await(rpc.serialize_properties(state, {}))


def test_every_plain_state_of_dev_gets_the_struct_the_sdk_would_send():
    plan = make_plan("dev")
    cloud = SimulatedCloud(region="eu-west-1")
    fallbacks = set()
    for r in plan.resources:
        _, state = cloud.new_resource(
            pulumi_mocks.MockResourceArgs(
                typ=r.type, name=r.name, inputs=r.inputs, provider="", resource_id="", custom=True
            )
        )
        struct = _plain_struct(state)
        if struct is None:
            fallbacks.add(r.type.rsplit(":", 1)[-1])
        else:
            assert struct == _sdk_struct(state), r.urn
    # Only the states holding an archive (code, tooling) or a secret (a dynamic resource's
    # serialised provider) take the SDK's path.
    assert fallbacks == {"Function", "BucketObjectv2", "ServiceRollout", "TaskRollout"}


@pytest.mark.parametrize(
    "value",
    [
        rpc.UNKNOWN,
        {rpc._special_sig_key: rpc._special_secret_sig, "value": "s3cr3t"},
        pulumi.FileArchive("."),
        [{"nested": rpc.UNKNOWN}],
    ],
    ids=["unknown", "secret", "asset", "nested-unknown"],
)
def test_a_state_with_an_unknown_a_secret_or_an_asset_falls_back_to_the_sdk(value):
    assert _plain_struct({"arn": "arn:aws:iam::123456789012:role/r", "value": value}) is None


def test_top_level_none_is_left_out_and_nested_none_kept_as_the_sdk_does():
    state = {"a": None, "b": {"c": None, "d": [1, None, 2.5, True]}, "e": ""}
    assert _plain_struct(state) == _sdk_struct(state)
