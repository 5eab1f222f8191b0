"""A table of malformed inputs per reader and per entry point: each gets one message naming
the field (or file and line), the documented exit code, no traceback, and no AWS call.

AWS is unreachable on purpose: no credentials, and botocore's endpoint refuses to send, so an
entry point that called AWS before refusing its input would show as an "AWS error" (exit 4)
or a recorded call, not as the bad-input answer asserted here."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import threading
from pathlib import Path
from typing import Any

import botocore.endpoint
import pytest

from ecs_delivery import cli as ecs_delivery_cli
from ecs_delivery import inputs
from ecs_delivery.offline import diff, plan
from ecs_delivery.offline.simcloud import SimulatedEnvironment, SimulationError
from ecs_delivery.runtime.promotion import PromotionRecordError, read_record_file
from ecs_delivery.runtime.release.engine import ReleaseInputError
from ecs_delivery.runtime.release.inventory import Inventory, InventoryError, load_inventory
from ecs_delivery.runtime.release.manifest import ManifestError, load_manifest

REPO = Path(__file__).resolve().parents[2]
# The hook ships as its own folder (no ecs_delivery package): import it as its tests do.
sys.path.insert(0, str(REPO / "src" / "ecs_delivery" / "lambdas"))
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)
WEB = {"cluster": "c", "service": "dev-web", "codedeployApplication": "app"}
WEB |= {"codedeployGroup": "web", "container": "web", "containerPort": 8080}
INVENTORY = {"environment": "dev", "services": {"web": WEB}}
MANIFEST = "release: r1\nenvironment: dev\nservices:\n  web: {image: 'repo/web:1.0.0'}\n"

# Malformed bytes every reader refuses the same way: (bytes, what the message says).
ENCODING_AND_YAML = [
    ("utf16", "\ufeffa: 1".encode("utf-16-le"), "the file is UTF-16 LE"),
    ("utf16be", "\ufeffa: 1".encode("utf-16-be"), "the file is UTF-16 BE"),
    ("utf16-nobom", "a: 1".encode("utf-16-le"), "looks like UTF-16 without a byte-order mark"),
    ("latin1", "a: caf\u00e9".encode("latin-1"), ":1: the file is not UTF-8 (byte 0xe9"),
]
YAML_ONLY = [
    ("bomb", BOMB.encode(), "the YAML expands to more than"),
    ("tag", b"a: !env X\n", ":1: a: the YAML tag !env is not supported"),
    ("dup", b"a: 1\na: 2\n", ":2: duplicate key 'a' (first at line 1)"),
    ("syntax", b"a: [1,\n", "not valid YAML"),
    ("control", b"a: 1\nb: x\x02y\n", ":2: the file holds the control character U+0002"),
]
JSON_ONLY = [
    ("dup", b'{"a": 1, "a": 2}', ":1: duplicate key 'a'"),
    ("nan", b'{"a": NaN}', "NaN is not a JSON number"),
    ("syntax", b'{"a": 1,}', ":1:9: not valid JSON"),
]


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No credentials anywhere, and any request botocore would send is recorded and refused."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    calls: list[str] = []

    def refuse(self: Any, operation_model: Any, request_dict: Any) -> Any:
        calls.append(operation_model.name)
        raise AssertionError(f"AWS call {operation_model.name} made for bad input")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", refuse)
    return calls


def _named(argument: str, names: dict[str, str]) -> str:
    for placeholder, value in names.items():
        argument = argument.replace(placeholder, value)
    return argument


def _one_problem(message: str, expected: str) -> None:
    assert expected in message, message
    assert "Traceback" not in message


# --- readers ------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "data", "expected"), ENCODING_AND_YAML + YAML_ONLY)
def test_the_yaml_readers_refuse_each_malformed_file_naming_the_file(
    tmp_path: Path, case: str, data: bytes, expected: str
) -> None:
    live, stack, manifest = (
        tmp_path / "live.yaml",
        tmp_path / "Pulumi.dev.yaml",
        tmp_path / "m.yaml",
    )
    for path in (live, stack, manifest):
        path.write_bytes(data)
    (tmp_path / "Pulumi.yaml").write_text("name: ecs-delivery\n")

    with pytest.raises(SimulationError) as live_error:
        SimulatedEnvironment.load(live)
    with pytest.raises(plan.PlanError) as stack_error:
        plan.stack_file("dev", tmp_path)
    with pytest.raises((ManifestError, inputs.ReadError)) as manifest_error:
        inventory = Inventory.model_validate(INVENTORY)
        load_manifest(inputs.read_text(manifest), inventory, name=str(manifest))

    _one_problem(str(live_error.value), f"{live}")
    _one_problem(str(live_error.value), expected)
    _one_problem(str(stack_error.value), "Pulumi.dev.yaml")
    _one_problem(str(stack_error.value), expected)
    _one_problem(str(manifest_error.value), expected)


@pytest.mark.parametrize(("case", "data", "expected"), ENCODING_AND_YAML[:3] + JSON_ONLY)
def test_the_json_readers_refuse_each_malformed_file_naming_the_file(
    tmp_path: Path, case: str, data: bytes, expected: str
) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(data)

    with pytest.raises(InventoryError) as inventory_error:
        load_inventory(path)
    with pytest.raises(PromotionRecordError) as record_error:
        read_record_file(path)
    with pytest.raises(diff.DiffError) as plan_error:
        diff.read_plan_file(path, str(path), "dev")

    for error in (inventory_error, record_error, plan_error):
        _one_problem(str(error.value), f"{path}")
        _one_problem(str(error.value), expected)


def test_a_zipped_record_that_unpacks_past_the_size_limit_is_refused_without_unpacking_it(
    tmp_path: Path,
) -> None:
    """A few KiB of zip can hold gigabytes; the record inside is read within the budget."""
    import zipfile

    path = tmp_path / "record.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("promotion.json", '{"a": "' + "x" * (inputs.MAX_BYTES + 10) + '"}')
    assert path.stat().st_size < 10_000

    with pytest.raises(PromotionRecordError) as caught:
        read_record_file(path)
    _one_problem(
        str(caught.value),
        f"{path}: promotion.json unpacks to more than {inputs.MAX_BYTES} bytes",
    )


@pytest.mark.parametrize(
    ("reader", "content", "expected"),
    [
        (
            "live",
            "accountId: 12\n",
            "live.yaml:1: accountId: 12 is a YAML number; give the 12 digits quoted (accountId: '111",
        ),
        ("live", "services: [web]\n", "live.yaml:1: services: Input should be a valid dictionary"),
        ("live", "acountId: '1'\n", "acountId: unknown key; did you mean 'accountId'?"),
        ("live", "hostedZones: {example.com: {}}\n", "hostedZones.example.com.id: required"),
        (
            "live",
            "accountId: 111111111111\n",
            "accountId: 111111111111 is a YAML number; give the 12 digits quoted (accountId: '111111111111')",
        ),
        (
            "live",
            "services: {web: {containers: {web: NOT AN IMAGE}}}\n",
            "services.web.containers.web: 'NOT AN IMAGE' is not an image reference",
        ),
        (
            "live",
            "services: {web: {digests: {web: zzz}}}\n",
            "services.web.digests.web: 'zzz' is not sha256:<64 hex digits>",
        ),
        (
            "live",
            "services: {web: {taskDefinitionArn: nonsense}}\n",
            "services.web.taskDefinitionArn: 'nonsense' is not a task definition ARN",
        ),
        (
            "live",
            "promotionRecords: {dev: {3f9c2a1: {web: {web: repo:1}}}}\n",
            "promotionRecords.dev.3f9c2a1.web.web: 'repo:1' is not an image digest reference",
        ),
        (
            "inventory",
            '{"environment": "dev", "services": {"web": {}}}',
            "services.web.cluster: required",
        ),
        ("inventory", '{"environment": 3}', "environment: Input should be a valid string"),
        (
            "inventory",
            json.dumps({"environment": "dev", "services": {"web": WEB | {"containerPort": True}}}),
            "services.web.containerPort: Input should be a valid integer (got True)",
        ),
        (
            "inventory",
            '{"releaseInventory": "[secret]"}',
            "in.json: releaseInventory is [secret]: run `pulumi stack output --json --show-secrets`",
        ),
        ("record", '{"schema": 1}', "sourceStack: is required"),
        ("record", "[]", "expected a JSON object, got list"),
        ("plan", '{"stack": "dev", "resources": {}}', "resources: Input should be a valid list"),
        (
            "manifest",
            "release: [r1]\nenvironment: dev\n",
            "release: Input should be a valid string",
        ),
        (
            "manifest",
            "release: r1\nenvironment: dev\nservices: {web: {}}\n",
            "services.web.image: required",
        ),
        (
            "manifest",
            "release: r1\nenvironment: dev\nproduction: yes\n",
            "production: use true or false (an unquoted YAML boolean), got 'yes'",
        ),
    ],
)
def test_each_reader_names_the_field_its_model_refuses(
    tmp_path: Path, reader: str, content: str, expected: str
) -> None:
    path = tmp_path / ("live.yaml" if reader == "live" else "in.json")
    path.write_text(content)
    errors = (SimulationError, InventoryError, PromotionRecordError, diff.DiffError, ManifestError)
    with pytest.raises(errors) as caught:
        if reader == "live":
            SimulatedEnvironment.load(path)
        elif reader == "inventory":
            load_inventory(path)
        elif reader == "record":
            read_record_file(path)
        elif reader == "plan":
            diff.read_plan_file(path, str(path), "dev")
        else:
            load_manifest(content, Inventory.model_validate(INVENTORY))
    _one_problem(str(caught.value), expected)
    if reader == "live":  # a LIVE file is not the stack file: no fix that points there
        assert "stack file" not in str(caught.value)


# --- entry points -------------------------------------------------------------------


def _release(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    from ecs_delivery.runtime.release.cli import main

    try:
        with contextlib.redirect_stderr(err):  # argparse writes its usage errors there
            code = main(argv, out=io.StringIO(), err=err, stop=threading.Event())
    except SystemExit as exited:  # argparse: usage errors exit 2
        code = int(exited.code or 0)
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("command", "manifest", "inventory", "extra", "expected"),
    [
        (
            "plan",
            "release: r1\nenvironment: dev\nservices: {web: {image: !env X}}\n",
            INVENTORY,
            [],
            "the YAML tag !env",
        ),
        ("apply", BOMB, INVENTORY, [], "expands to more than"),
        (
            "apply",
            MANIFEST,
            {"environment": "dev", "services": 3},
            [],
            "services: Input should be a valid dictionary",
        ),
        (
            "apply",
            MANIFEST.replace("dev", "prod", 1),
            INVENTORY,
            [],
            'environment: the manifest is for "prod"',
        ),
        (
            "apply",
            MANIFEST,
            INVENTORY,
            ["--poll-seconds=nan"],
            "--poll-seconds: nan is not a finite number",
        ),
        (
            "apply",
            MANIFEST,
            INVENTORY,
            ["--poll-seconds=1e-300"],
            "--poll-seconds: 1e-300 must be at least 1",
        ),
        (
            "apply",
            MANIFEST,
            INVENTORY,
            ["--timeout-minutes=-1"],
            "--timeout-minutes: -1 must be more than 0",
        ),
        (
            "plan",
            MANIFEST,
            INVENTORY,
            ["--endpoint-url", "nope"],
            "--endpoint-url: 'nope' is not an http(s) URL",
        ),
        (
            "status",
            "release: [r1]\n",
            INVENTORY,
            [],
            "--manifest: it names no environment and release",
        ),
        ("rollback", "\ufeffr".encode("utf-16-le"), INVENTORY, [], "the file is UTF-16 LE"),
    ],
)
def test_release_commands_answer_bad_input_with_exit_2_and_no_aws_call(
    tmp_path: Path, no_aws: list[str], command, manifest, inventory, extra, expected
) -> None:
    (tmp_path / "m.yaml").write_bytes(
        manifest if isinstance(manifest, bytes) else manifest.encode()
    )
    (tmp_path / "i.json").write_text(json.dumps(inventory))
    argv = [
        command,
        "--manifest",
        str(tmp_path / "m.yaml"),
        "--inventory",
        str(tmp_path / "i.json"),
    ]

    code, err = _release([*argv, "--state-bucket", "state", *extra])

    assert code == 2, err
    _one_problem(err, expected)
    assert "AWS error" not in err and no_aws == []


@pytest.mark.parametrize(
    ("setting", "extra", "expected"),
    [
        ({}, [], "no AWS credentials: pass --profile <name>"),
        ({"AWS_ACCESS_KEY_ID": "k"}, [], "missing: AWS_SECRET_ACCESS_KEY): give the key id and"),
        ({}, ["--profile", "nosuch"], "--profile nosuch: no such profile"),
        ({"AWS_PROFILE": "nosuch"}, [], "AWS_PROFILE=nosuch: no such profile"),
        ({"KEYS": "1"}, ["--region", "not a region"], "--region 'not a region': not an AWS region"),
        ({"KEYS": "1"}, ["--state-bucket", "Bad Bucket!"], 'Invalid bucket name "Bad Bucket!"'),
        ({"KEYS": "1"}, ["--release", "../x y"], "--release '../x y': not a release id"),
        ({"SSO": "1"}, ["--profile", "sso"], "run `aws sso login --profile sso`"),
    ],
)
def test_release_commands_answer_a_bad_aws_setup_with_exit_2_naming_the_setting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_aws: list[str],
    setting: dict[str, str],
    extra: list[str],
    expected: str,
) -> None:
    """No credentials, an unknown profile, a malformed region or bucket: the user's setup,
    refused before anything is sent (was exit 4, "run it again once AWS answers")."""
    if setting.pop("KEYS", None):
        setting |= {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    if setting.pop("SSO", None):  # an SSO profile nobody has logged in with (no cached token)
        (tmp_path / "config").write_text(
            "[profile sso]\nsso_start_url = https://example.awsapps.com/start\n"
            "sso_region = eu-west-1\nsso_account_id = 111111111111\nsso_role_name = Admin\n"
            "region = eu-west-1\n"
        )
        setting |= {"AWS_CONFIG_FILE": str(tmp_path / "config"), "HOME": str(tmp_path)}
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    argv = ["status", "--release", "dev-r1", "--state-bucket", "state", *extra]

    code, err = _release(argv)

    assert code == 2, err
    _one_problem(err, expected)
    assert err.count("\n") == 2  # the problem and "nothing was deployed"
    assert "AWS error" not in err and no_aws == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["diff", "--stack", "dev", "--base", "{base}"], "resources.0.urn: required"),
        (["diff", "--stack", "prod", "--base", "{ok}"], "stack: the plan is of stack 'dev', not"),
        (["diff", "--stack", "dev", "--base", "{ok}.gone"], "neither a plan JSON file nor a git"),
        (["diff", "--stack", "dev", "--base", "{ok}", "-c", "=1"], "-c '=1': the key is empty"),
        (["release"], "the following arguments are required: command"),
        ([], "usage: ecs-delivery <command> [options]"),
        (["bogus"], "ecs-delivery: unknown command 'bogus'"),
    ],
)
def test_the_ecs_delivery_command_answers_bad_input_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"stack": "dev", "resources": [{"type": "t", "name": "n"}]}))
    (tmp_path / "ok.json").write_text(json.dumps({"stack": "dev", "resources": []}))
    names = {"{base}": str(base), "{ok}": str(tmp_path / "ok.json")}
    try:
        code = ecs_delivery_cli.main([_named(a, names) for a in argv])
    except SystemExit as exited:
        code = int(exited.code or 0)

    assert code == 2
    _one_problem(capsys.readouterr().err, expected)


@pytest.mark.parametrize(
    ("stack_file", "expected"),
    [
        ("config: [1]\n", "Pulumi.dev.yaml:1: config must be a mapping"),
        (
            "config:\n  aws:region: !env REGION\n",
            "Pulumi.dev.yaml:2: config.aws:region: the YAML tag !env",
        ),
        ("config:\n  a: 1\n  a: 2\n", "Pulumi.dev.yaml:3: duplicate key 'a'"),
    ],
)
def test_plan_answers_a_malformed_stack_file_with_exit_1_before_running_the_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stack_file: str, expected: str
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: ecs-delivery\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(stack_file)

    code = plan.main(["--stack", "dev", "--root", str(tmp_path)])

    assert code == 1  # the plan's documented bad-input code
    err = capsys.readouterr().err
    _one_problem(err, expected)
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--json", "{tmp}"], "--json {tmp}: is a folder; give a file name, e.g. plan.json"),
        (["--stack", "../x"], "--stack '../x': not a stack name"),
        (["-c", "=1"], "-c '=1': the key is empty; use key=value"),
        (
            ["-c", 'services={"web":'],
            "-c services: the value is not valid JSON (line 1 column 8: Expecting value)",
        ),
    ],
)
def test_plan_answers_a_bad_option_with_exit_1_before_running_the_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], expected: str
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: ecs-delivery\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    argv = [
        "--stack",
        "dev",
        "--root",
        str(tmp_path),
        *(o.replace("{tmp}", str(tmp_path)) for o in option),
    ]

    code = plan.main(argv)

    assert code == 1
    err = capsys.readouterr().err
    _one_problem(err, expected.replace("{tmp}", str(tmp_path)))
    assert err.count("\n") == 1


DEPLOY = ["deploy", "--name", "web", "--cluster", "c", "--service", "s", "--container", "web"]
DEPLOY += ["--family", "f", "--application", "a", "--group", "g", "--container-port", "80"]
DIGEST_IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (
            [*DEPLOY, "--image-uri", DIGEST_IMAGE, "--timeout-minutes", "99999999999"],
            2,
            "--timeout-minutes: 99999999999 must be at most 1440",
        ),
        (
            [*DEPLOY, "--image-uri", DIGEST_IMAGE, "--timeout-minutes", "nan"],
            2,
            "--timeout-minutes: nan is not a finite number",
        ),
        ([*DEPLOY[:-1], "0", "--image-uri", DIGEST_IMAGE], 2, "0 is not a port number"),
        ([*DEPLOY, "--record", "{tmp}/missing.json"], 1, "missing.json: No such file"),
        ([*DEPLOY, "--image-uri", "repo:latest"], 1, "'repo:latest' is not a digest reference"),
        (["record-field", "--record", "{tmp}/utf16.json", "--field", "commit"], 1, "UTF-16 LE"),
        (["image-exists", "--repository-url", "notaurl", "--tag", "t"], 1, "'notaurl' is not an"),
        (["image-tag", "--source-version", ""], 1, "source version is empty"),
        (["image-tag", "--source-version", "a" * 40, "--length", "3"], 1, "use 7 or more"),
    ],
)
def test_the_pipeline_steps_answer_bad_input_with_one_line_and_no_aws_call(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_aws: list[str],
    argv: list[str],
    code: int,
    expected: str,
) -> None:
    from ecs_delivery.runtime import build

    (tmp_path / "utf16.json").write_bytes("\ufeff{}".encode("utf-16-le"))
    try:
        exit_code = build.main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    except SystemExit as exited:  # argparse: usage errors exit 2
        exit_code = int(exited.code or 0)

    assert exit_code == code
    err = capsys.readouterr().err
    _one_problem(err, expected)
    assert no_aws == []


def _steps_handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("STATE_BUCKET", "state")
    spec = importlib.util.spec_from_file_location(
        "release_steps_handler_fuzz",
        REPO / "src" / "ecs_delivery" / "lambdas" / "release_steps" / "handler.py",
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("step", "event", "expected"),
    [
        ("plan", [], "execution input: expected a JSON object, got list"),
        ("plan", {}, "execution input: give manifest_yaml or manifest_s3_uri"),
        ("plan", {"manifest_yaml": "a: !env X\n"}, "a: the YAML tag !env is not supported"),
        ("plan", {"manifest_yaml": BOMB}, "expands to more than"),
        (
            "plan",
            {"manifest_s3_uri": "http://x"},
            "manifest_s3_uri: 'http://x' is not s3://bucket/key",
        ),
        (
            "plan",
            {"manifest_s3_uri": "s3://b/"},
            "manifest_s3_uri: 's3://b/' is not s3://bucket/key",
        ),
        (
            "plan",
            {"manifest_s3_uri": "s3:///k"},
            "manifest_s3_uri: 's3:///k' is not s3://bucket/key",
        ),
        (
            "plan",
            {
                "execution": {"manifest_yaml": MANIFEST, "take_over": "yes"},
                "runner": "r",
                "lease_seconds": 60,
            },
            "execution input: take_over: give true or false (a JSON boolean), got 'yes'",
        ),
        ("start_service", {"release_id": "dev-r1"}, "event.service: required"),
        ("poll_service", "x", "event: expected a JSON object, got str"),
        ("update_tasks", {"release_id": None}, "event.release_id: give a name"),
        ("rollback_poll", {}, "event.release_id: required"),
    ],
)
def test_release_step_events_are_refused_naming_the_field_without_an_aws_call(
    monkeypatch: pytest.MonkeyPatch, no_aws: list[str], step: str, event: Any, expected: str
) -> None:
    handler = _steps_handler(monkeypatch)
    with pytest.raises((ReleaseInputError, ManifestError)) as caught:
        getattr(handler, step)(event)
    _one_problem(str(caught.value), expected)
    assert no_aws == []


def test_a_rollback_of_an_execution_whose_input_was_not_an_object_deploys_nothing(
    monkeypatch: pytest.MonkeyPatch, no_aws: list[str]
) -> None:
    handler = _steps_handler(monkeypatch)
    assert handler.rollback(["not", "an", "object"]) == {
        "release_id": None,
        "status": "nothing_deployed",
    }
    assert no_aws == []


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (None, "DeploymentId: missing or empty; LifecycleEventHookExecutionId: missing or empty"),
        ([], "DeploymentId: missing or empty"),
        ({"DeploymentId": "d-1"}, "LifecycleEventHookExecutionId: missing or empty"),
        (
            {"DeploymentId": 3, "LifecycleEventHookExecutionId": "h"},
            "DeploymentId: missing or empty",
        ),
        (
            {"DeploymentId": " ", "LifecycleEventHookExecutionId": "h"},
            "DeploymentId: missing or empty",
        ),
    ],
)
def test_the_hook_refuses_an_event_without_its_ids_naming_them_without_an_aws_call(
    no_aws: list[str], event: Any, expected: str
) -> None:
    from validation_hook import handler

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    with pytest.raises(handler.InvalidHookEvent) as caught:
        handler.handler(event, Context())
    _one_problem(str(caught.value), expected)
    assert no_aws == []
