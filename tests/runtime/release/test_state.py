"""The release state object: conditional writes never lose a concurrent change."""

from __future__ import annotations

import pytest

from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.release.state import ReleaseState, StateStore, Unchanged


def first_state() -> ReleaseState:
    return ReleaseState(
        release_id="dev-r1", environment="dev", manifest_digest="x", created_at=1.0, updated_at=1.0
    )


@pytest.fixture
def small_sim(make_sim) -> SimulatedAws:  # type: ignore[no-untyped-def]
    with make_sim(services=1, rule_tasks=0, schedule_tasks=0) as environment:
        yield environment


def store(sim: SimulatedAws) -> StateStore:
    return StateStore(sim.clients.s3, sim.bucket, "dev-r1", sim.clock)


def test_state_lives_at_releases_id_state_json_and_is_created_once(small_sim: SimulatedAws) -> None:
    one, two = store(small_sim), store(small_sim)

    assert one.create(first_state()) is True
    assert two.create(first_state().model_copy(update={"manifest_digest": "other"})) is False
    assert two.state.manifest_digest == "x"
    head = small_sim.clients.s3.head_object(
        Bucket=small_sim.bucket, Key="releases/dev-r1/state.json"
    )
    assert head["ContentType"] == "application/json"


def test_concurrent_writers_both_land_because_the_loser_reapplies_its_change(
    small_sim: SimulatedAws,
) -> None:
    runner, person = store(small_sim), store(small_sim)
    runner.create(first_state())
    person.load()

    runner.update(lambda st: setattr(st, "failed_item", "svc-1"))
    # `person` holds a stale ETag: its write conflicts, it re-reads and re-applies.
    person.update(lambda st: setattr(st, "status", "rolling_back"))

    final = store(small_sim).load()
    assert final.failed_item == "svc-1"
    assert final.status == "rolling_back"
    assert final.version == 2


def test_a_claim_is_won_by_one_writer_only(small_sim: SimulatedAws) -> None:
    a, b = store(small_sim), store(small_sim)
    a.create(first_state())
    b.load()

    def claim(st: ReleaseState) -> bool:
        if st.failure is not None:
            raise Unchanged(False)
        st.failure = "claimed"
        return True

    assert a.update(claim) is True
    assert b.update(claim) is False
    assert store(small_sim).load().version == 1
