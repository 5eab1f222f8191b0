"""`release plan | apply | status | rollback` against the simulated AWS."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecs_delivery.offline.release_simulator import SimulatedAws
from ecs_delivery.runtime.release.cli import Cli, build_parser, main
from ecs_delivery.runtime.release.pacing import SystemClock
from ecs_delivery.runtime.release.state import SCHEMA_VERSION


def files(sim: SimulatedAws, tmp_path: Path, manifest: str) -> list[str]:
    (tmp_path / "inventory.json").write_text(sim.inventory.model_dump_json(by_alias=True))
    (tmp_path / "release.yaml").write_text(manifest)
    return [
        "--manifest",
        str(tmp_path / "release.yaml"),
        "--inventory",
        str(tmp_path / "inventory.json"),
        "--state-bucket",
        sim.bucket,
        "--poll-seconds",
        "5",
        # Ten simulated hours: the default hour is 3.6 s of a loaded test machine.
        "--timeout-minutes",
        "600",
    ]


def run(sim: SimulatedAws, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        argv, clients=sim.clients, clock=sim.clock, out=out, err=err, stop=threading.Event()
    )
    return code, out.getvalue(), err.getvalue()


def test_apply_of_20_services_keeps_at_most_max_parallel_deployments_in_flight(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    # The first five deployments run until all five exist, so the peak does not depend on
    # how fast the start threads were scheduled.
    first = [f"svc-{i:03d}" for i in range(5)]
    sim.codedeploy.hold(*first)

    def release_when_five_run(info: dict[str, Any]) -> None:
        if {d.service for d in sim.codedeploy.deployments} >= set(first):
            sim.codedeploy.release(*first)

    sim.codedeploy.on_create = release_when_five_run
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0"))

    code, out, err = run(sim, ["apply", *args, "--max-parallel", "5"])

    assert code == 0, err
    assert sim.codedeploy.max_in_flight() == 5
    assert sim.codedeploy.created_per_service() == {n: 1 for n in sim.inventory.services}
    assert all(sim.live_image(n) == sim.image(n, "2.0.0") for n in sim.inventory.services)
    assert "release dev-r1 succeeded" in out
    # Not a terminal: one log line per transition, and the final table.
    assert "service svc-019: deployed" in out
    assert any(line.split()[:3] == ["service", "svc-019", "deployed"] for line in out.splitlines())


def test_apply_with_a_failing_service_exits_1_naming_it_and_all_20_end_on_previous_revisions(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    sim.codedeploy.fail("svc-011")
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0"))

    code, out, err = run(sim, ["apply", *args, "--max-parallel", "5"])

    assert code == 1
    assert "release dev-r1 failed: svc-011:" in err
    assert "rolled back: what the release set is taken back, onto what runs now" in err
    assert "note: --endpoint-url" not in err
    assert {n: sim.live_task_definition(n) for n in sim.inventory.services} == {
        n: sim.task_definitions[n] for n in sim.inventory.services
    }
    assert "Traceback" not in out + err


def test_bad_manifest_exits_2_listing_every_problem_and_deploys_nothing(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    manifest = (
        "release: r1\nenvironment: dev\nservices:\n"
        "  svc-000: {image: 'repo/svc:1'}\n  ghost: {image: 'repo/ghost:1'}\n"
        "scheduledTasks:\n  job-00: {followsService: svc-000, schedule: 'cron(0 3 * *)'}\n"
    )
    code, out, err = run(sim, ["apply", *files(sim, tmp_path, manifest)])

    assert code == 2
    assert "is invalid (2 problems; nothing deployed)" in err
    # Each line names the file and the line of its key.
    assert "release.yaml:7: scheduledTasks.job-00.schedule: " in err
    assert "release.yaml:5: services.ghost: unknown service in dev" in err
    assert "Traceback" not in err
    assert sim.codedeploy.deployments == []
    assert sim.ecs.calls["register_task_definition"] == 0


def test_missing_inventory_file_exits_2_without_a_traceback(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0"))
    args[3] = str(tmp_path / "missing.json")

    code, _, err = run(sim, ["apply", *args])

    assert code == 2
    assert "missing.json: cannot read: No such file" in err and "Traceback" not in err


def test_plan_json_lists_changes_and_unchanged_services(sim: SimulatedAws, tmp_path: Path) -> None:
    manifest = sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]).replace(
        "services:\n", f"services:\n  svc-001:\n    image: {sim.image('svc-001', '1.0.0')}\n"
    )
    code, out, _ = run(sim, ["plan", *files(sim, tmp_path, manifest), "--json"])

    assert code == 0
    plan = json.loads(out)
    assert [s["name"] for s in plan["services"]] == ["svc-000"]
    assert plan["services"][0]["to"] == sim.image("svc-000", "2.0.0")
    assert plan["unchanged_services"] == ["svc-001"]
    assert sim.codedeploy.deployments == []


def test_status_and_rollback_of_a_succeeded_release_restore_previous_revisions(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0", services=["svc-000", "svc-001"]))
    assert run(sim, ["apply", *args])[0] == 0

    code, out, _ = run(sim, ["status", "--release", "dev-r1", "--state-bucket", sim.bucket])
    assert code == 0
    assert "release dev-r1 (dev): succeeded" in out

    code, out, err = run(sim, ["rollback", *args])
    assert code == 0, err
    assert "release dev-r1 rolled back" in out
    assert sim.live_task_definition("svc-000") == sim.task_definitions["svc-000"]
    assert sim.live_task_definition("svc-001") == sim.task_definitions["svc-001"]


def test_status_of_an_unknown_release_exits_2(sim: SimulatedAws) -> None:
    code, _, err = run(sim, ["status", "--release", "dev-nope", "--state-bucket", sim.bucket])
    assert code == 2
    assert "release dev-nope has no state" in err


def test_module_entry_point_prints_usage_for_a_missing_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ecs_delivery.runtime.release"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
        timeout=60,
    )
    assert result.returncode == 2
    assert "{plan,apply,status,rollback}" in result.stderr


def table_rows(out: str) -> dict[str, list[str]]:
    """The final table's service rows: name -> [status, rollback...] (cells split on 2+ spaces)."""
    rows = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == "service" and len(cells) >= 6:
            rows[cells[1]] = cells[2:4]
    return rows


def test_final_table_shows_stopped_services_as_rolled_back_and_the_failed_one_as_failed(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    # svc-001 fails while svc-000 is still deploying (held), so the rollback stops svc-000.
    sim.codedeploy.fail("svc-001")
    sim.codedeploy.hold("svc-000")
    manifest = sim.manifest_yaml("r1", "2.0.0", services=["svc-000", "svc-001", "svc-002"])
    args = files(sim, tmp_path, manifest)

    code, out, _ = run(sim, ["apply", *args, "--max-parallel", "2"])

    assert code == 1
    assert table_rows(out) == {
        "svc-000": ["stopped", "rolled back"],
        "svc-001": ["failed", "rolled back"],
        "svc-002": ["not started", "not needed"],
    }
    # `status` prints the same table from the persisted state.
    _, status_out, _ = run(sim, ["status", "--release", "dev-r1", "--state-bucket", sim.bucket])
    assert table_rows(status_out) == table_rows(out)


def test_endpoint_url_reaches_every_client_the_cli_makes() -> None:
    args = build_parser().parse_args(
        ["plan", "--endpoint-url", "http://localhost:5000", "--region", "eu-west-1"]
    )
    cli = Cli(args, None, SystemClock(), io.StringIO(), io.StringIO(), None)

    clients = cli.aws.clients
    endpoints = {f.name: getattr(clients, f.name).meta.endpoint_url for f in fields(clients)}
    assert endpoints == dict.fromkeys(
        ("ecs", "codedeploy", "s3", "events", "scheduler"), "http://localhost:5000"
    )


def test_a_deployment_that_never_finishes_behind_an_endpoint_url_gets_a_note_saying_why(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    # As on a moto server: the deployment never ends, so --timeout-minutes decides.
    sim.codedeploy.hold("svc-000")
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    args[args.index("--timeout-minutes") + 1] = "1"

    code, _, err = run(sim, ["apply", *args, "--endpoint-url", "http://localhost:5000"])

    assert code == 1
    assert "did not finish within 60 s (last status InProgress)" in err
    assert "note: --endpoint-url http://localhost:5000: its deployments did not finish." in err
    assert "run `make release-demo`, a simulated AWS whose deployments finish" in err


def test_an_emulator_without_stop_deployment_exits_3_with_one_error_line_and_the_note(
    sim: SimulatedAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a moto server does (measured): deployments stay Created, StopDeployment is a 500.
    page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n</html>"

    def no_stop(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "500", "Message": page}}, "StopDeployment")

    monkeypatch.setattr(sim.codedeploy, "stop_deployment", no_stop)
    sim.codedeploy.hold("svc-000")
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    args[args.index("--timeout-minutes") + 1] = "1"

    code, _, err = run(sim, ["apply", *args, "--endpoint-url", "http://localhost:5000"])

    assert code == 3
    assert err.splitlines()[0] == (
        "release dev-r1 stopped with an error: An error occurred (500) when calling the "
        "StopDeployment operation"
    )
    assert "html" not in err
    assert "note: --endpoint-url http://localhost:5000: its deployments did not finish." in err


def test_a_truncated_state_gives_status_and_rollback_one_clear_error_not_a_traceback(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    """Issue 21, problem 7: a truncated state.json blocked `status`, `rollback` and `apply`
    with a pydantic traceback, exactly when recovery is needed."""
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    assert run(sim, ["apply", *args])[0] == 0
    key = "releases/dev-r1/state.json"
    body = sim.clients.s3.get_object(Bucket=sim.bucket, Key=key)["Body"].read()
    sim.clients.s3.put_object(Bucket=sim.bucket, Key=key, Body=body[: len(body) // 2])

    for command in (["status", "--release", "dev-r1", "--state-bucket", sim.bucket],
                    ["rollback", "--release", "dev-r1", "--state-bucket", sim.bucket],
                    ["apply", *args]):  # fmt: skip
        code, _, err = run(sim, command)
        assert code == 2, command
        assert f"release state s3://{sim.bucket}/{key} cannot be read" in err
        assert "Traceback" not in err


def test_a_state_from_a_newer_engine_still_gives_status_and_rollback_but_not_apply(
    sim: SimulatedAws, tmp_path: Path
) -> None:
    """Problem 7: fields this engine does not know are read (and kept), not refused."""
    import json

    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0", services=["svc-000"]))
    assert run(sim, ["apply", *args])[0] == 0
    key = "releases/dev-r1/state.json"
    state = json.loads(sim.clients.s3.get_object(Bucket=sim.bucket, Key=key)["Body"].read())
    state["schema_version"] = SCHEMA_VERSION + 1
    state["approvals"] = {"by": "a newer engine"}
    state["status"] = "running"
    sim.clients.s3.put_object(Bucket=sim.bucket, Key=key, Body=json.dumps(state).encode())
    status = ["status", "--release", "dev-r1", "--state-bucket", sim.bucket]

    assert run(sim, status)[0] == 0
    code, _, err = run(sim, ["apply", *args])
    assert code == 2 and "written by a newer ecs-delivery" in err
    assert run(sim, ["rollback", "--release", "dev-r1", "--state-bucket", sim.bucket])[0] == 0
    kept = json.loads(sim.clients.s3.get_object(Bucket=sim.bucket, Key=key)["Body"].read())
    assert kept["approvals"] == {"by": "a newer engine"} and kept["status"] == "rolled_back"
    assert sim.live_image("svc-000") == sim.image("svc-000", "1.0.0")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--poll-seconds", "nan", "--poll-seconds: nan is not a finite number"),
        ("--poll-seconds", "inf", "--poll-seconds: inf is not a finite number"),
        ("--poll-seconds", "0", "--poll-seconds: 0 must be more than 0"),
        ("--poll-seconds", "-5", "--poll-seconds: -5 must be more than 0"),
        ("--timeout-minutes", "nan", "--timeout-minutes: nan is not a finite number"),
        ("--timeout-minutes", "-inf", "--timeout-minutes: -inf is not a finite number"),
        ("--timeout-minutes", "0", "--timeout-minutes: 0 must be more than 0"),
        ("--timeout-minutes", "1e9", "--timeout-minutes: 1e9 must be at most 1440"),
        ("--max-parallel", "0", "--max-parallel: 0 must be at least 1"),
        ("--max-parallel", "2.5", "--max-parallel: 2.5 is not a whole number"),
        ("--endpoint-url", "notaurl", "--endpoint-url: 'notaurl' is not an http(s) URL"),
    ],
)
def test_numbers_and_urls_are_checked_naming_the_option_and_nothing_runs(
    sim: SimulatedAws, tmp_path: Path, capsys: pytest.CaptureFixture[str], option, value, message
) -> None:
    args = [*files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0")), f"{option}={value}"]

    with pytest.raises(SystemExit) as exited:
        run(sim, ["apply", *args])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sim.codedeploy.deployments == [] and sim.ecs.calls["register_task_definition"] == 0


@pytest.mark.parametrize(
    ("command", "done"),
    [
        ("plan", "nothing was changed"),
        ("apply", "nothing was deployed"),
        ("status", "nothing was changed"),
        ("rollback", "the rollback did not start; nothing was changed"),
    ],
)
def test_an_aws_error_is_not_bad_input_it_exits_4_saying_what_was_not_done(
    sim: SimulatedAws, tmp_path: Path, command: str, done: str
) -> None:
    # A state bucket that does not exist: S3 answers NoSuchBucket to the first state read.
    args = files(sim, tmp_path, sim.manifest_yaml("r1", "2.0.0"))
    args[args.index("--state-bucket") + 1] = "no-such-bucket"
    if command in ("status", "rollback"):
        args += ["--release", "dev-r1"]

    code, _, err = run(sim, [command, *args])

    assert code == 4
    assert err.startswith("AWS error: ") and "NoSuchBucket" in err
    assert done in err and "bad input" not in err and "Traceback" not in err
    assert sim.codedeploy.deployments == []


def test_plan_without_a_region_exits_2_naming_the_region_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 16 (problem 7): a plan-derived inventory (`make plan PLAN_JSON=`) and no region
    # anywhere got botocore's "You must specify a region", an AWS error, without --region.
    from tests.conftest import make_plan

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"outputs": make_plan("dev").outputs}))
    manifest = tmp_path / "release.yaml"
    manifest.write_text(
        "release: r1\nenvironment: dev\nservices:\n"
        "  web: {image: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/web:2.0.0}\n"
    )
    out, err = io.StringIO(), io.StringIO()

    code = main(
        ["plan", "--manifest", str(manifest), "--inventory", str(plan)],
        out=out,
        err=err,
        stop=threading.Event(),
    )

    assert code == 2, err.getvalue()
    first = err.getvalue().splitlines()[0]
    assert first.startswith("error: no AWS region") and "--region" in first
    assert "You must specify a region" not in err.getvalue()


@pytest.mark.parametrize("code", ["ExpiredToken", "InvalidAccessKeyId", "SignatureDoesNotMatch"])
def test_credentials_aws_refuses_are_bad_input_saying_to_refresh_them_not_to_retry(
    code: str,
) -> None:
    """botocore's Stubber, as moto accepts any credentials: S3 answers the state read with
    a credentials error, which running the command again does not mend."""
    import boto3
    from botocore.stub import Stubber

    from ecs_delivery.runtime.release.live import Clients

    made = {
        f.name: boto3.client(
            f.name, region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s"
        )
        for f in fields(Clients)
    }
    stub = Stubber(made["s3"])
    stub.add_client_error("get_object", service_error_code=code, http_status_code=403)
    stub.activate()
    err = io.StringIO()

    exit_code = main(
        ["status", "--release", "dev-r1", "--state-bucket", "state"],
        clients=Clients(**made),
        out=io.StringIO(),
        err=err,
        stop=threading.Event(),
    )

    assert exit_code == 2
    assert err.getvalue().startswith(f"error: AWS refused the credentials ({code}")
    assert "refresh them" in err.getvalue() and "once AWS answers" not in err.getvalue()
    stub.assert_no_pending_responses()
