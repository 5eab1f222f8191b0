"""`release plan | apply | status | rollback`: the engine from a laptop or a CI job.

Exit codes: 0 success or nothing to change; 1 the release failed and was rolled back (the
failed service is named); 2 bad input (nothing deployed); 3 the rollback failed or was
interrupted (a person must look: `release status`, then `release rollback`); 4 AWS failed
before anything was deployed (the message says what was and was not done; run it again).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import threading
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    InvalidRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from ecs_delivery import inputs
from ecs_delivery.runtime.aws import RETRY_CONFIG
from ecs_delivery.runtime.aws import session as aws_session
from ecs_delivery.runtime.release.engine import (
    EngineConfig,
    Outcome,
    ReleaseEngine,
    ReleaseInputError,
    prepare,
)
from ecs_delivery.runtime.release.inventory import InventoryError, load_inventory
from ecs_delivery.runtime.release.live import Aws, Clients, LiveStateError, TaskDefinitions
from ecs_delivery.runtime.release.manifest import (
    RELEASE_ID,
    ManifestError,
    load_manifest,
    release_of,
)
from ecs_delivery.runtime.release.pacing import Clock, SystemClock
from ecs_delivery.runtime.release.progress import LogProgress, TtyProgress, summary_table
from ecs_delivery.runtime.release.state import StateReadError, StateStore

EXIT_OK, EXIT_ROLLED_BACK, EXIT_BAD_INPUT, EXIT_NEEDS_HUMAN, EXIT_AWS = 0, 1, 2, 3, 4


class UsageError(Exception):
    """Bad command-line input (exit 2)."""


def _endpoint(text: str) -> str:
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL; e.g. http://localhost:5000 (moto) or "
            "http://localhost:4566 (LocalStack)"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecs-delivery release",
        description="Release many ECS services and scheduled tasks from one manifest.",
        epilog="exit codes: 0 ok, 1 failed and rolled back, 2 bad input, 3 rollback failed, "
        "4 AWS failed before anything was deployed",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("plan", "show what the manifest would change (reads AWS, changes nothing)"),
        ("apply", "deploy the release; on any failure roll the whole release back"),
        ("status", "show a release's persisted state"),
        ("rollback", "roll a release back to the revisions it replaced"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--manifest", type=Path, help="release manifest YAML")
        command.add_argument(
            "--inventory",
            type=Path,
            help="releaseInventory JSON: `pulumi stack output releaseInventory --json`, "
            "`pulumi stack output --json`, or a plan from `make plan PLAN_JSON=...`",
        )
        command.add_argument("--state-bucket", help="S3 bucket holding release state")
        command.add_argument(
            "--release", help="release id (<environment>-<release>) instead of --manifest"
        )
        command.add_argument(
            "--max-parallel",
            type=inputs.option("--max-parallel", at_most=1000, whole=True),
            default=10,
            help="deployments in flight at once (default 10)",
        )
        command.add_argument(
            "--poll-seconds",
            type=inputs.option("--poll-seconds", at_least=1, at_most=3600),  # below 1: a busy loop
            default=15.0,
            help="seconds between deployment polls (default 15)",
        )
        command.add_argument(
            "--timeout-minutes",
            type=inputs.option("--timeout-minutes", at_most=24 * 60),
            default=60.0,
            help="a deployment running longer fails (default 60)",
        )
        command.add_argument("--region", help="AWS region")
        command.add_argument("--profile", help="AWS profile")
        command.add_argument(
            "--endpoint-url",
            type=_endpoint,
            help="send every AWS call here, e.g. http://localhost:5000 for a moto server or "
            "http://localhost:4566 for LocalStack (default: the AWS endpoints)",
        )
        command.add_argument(
            "--json", action="store_true", help="machine-readable output (plan, status)"
        )
        command.add_argument(
            "--take-over",
            action="store_true",
            help="apply: run the release although another runner's lease on it has not "
            "expired (only when that runner is known to be dead)",
        )
        command.add_argument(
            "--end-termination-wait",
            action="store_true",
            help="apply, rollback: a deployment that finds its group held by another "
            "deployment's termination wait ends that wait (ContinueDeployment: its old tasks "
            "go, it can no longer be stopped back); give it when the stack says "
            "deployment.onTerminationWait: end (default: a deploy fails on a busy group, a "
            "rollback waits for it)",
        )
    return parser


def _read(path: Path | None, flag: str) -> str:
    if path is None:
        raise UsageError(f"{flag} is required")
    try:
        return inputs.read_text(path)
    except inputs.ReadError as error:
        raise UsageError(f"{flag}: {error}") from None


def _release_of(args: argparse.Namespace) -> str:
    if args.release:
        found, flag = str(args.release), "--release"
    else:
        found, flag = release_of(_read(args.manifest, "--manifest (or --release)")), "--manifest"
    if found is None:
        raise UsageError("--manifest: it names no environment and release; use --release <id>")
    if not RELEASE_ID.match(found):
        raise UsageError(
            f"{flag} {found!r}: not a release id; give <environment>-<release> as the "
            "manifest names them, e.g. dev-2024.06.01-1"
        )
    return found


def _config(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig(
        max_parallel=args.max_parallel,
        poll_seconds=args.poll_seconds,
        deployment_timeout_seconds=args.timeout_minutes * 60,
        end_termination_wait=args.end_termination_wait,
    )


def _timed_out(failure: str | None) -> bool:
    """The failure is a deployment that outlived --timeout-minutes (engine's wording)."""
    return failure is not None and "did not finish within" in failure


def clients_for(session: Any, region: str | None, endpoint_url: str | None) -> Clients:
    """The engine's clients from `session`, every one sent to `endpoint_url` when given."""
    if endpoint_url is None:
        return Clients.from_session(session, region)
    made = {
        name: session.client(
            name, region_name=region, endpoint_url=endpoint_url, config=RETRY_CONFIG
        )
        for name in (field.name for field in dataclasses.fields(Clients))
    }
    return Clients(**made)


class Cli:
    """One invocation; clients and clock are injectable for tests."""

    def __init__(
        self,
        args: argparse.Namespace,
        clients: Clients | None,
        clock: Clock,
        out: TextIO,
        err: TextIO,
        stop: threading.Event | None,
    ) -> None:
        self.args = args
        self._clients = clients
        self.clock = clock
        self.out = out
        self.err = err
        self.stop = stop

    @property
    def aws(self) -> Aws:
        if self._clients is None:
            self._clients = self._checked_clients()
        return Aws(self._clients, self.clock)

    def _checked_clients(self) -> Clients:
        """The clients, once the user's AWS setup is known to work: a missing profile, region
        or credentials is the user's to fix (exit 2), not an AWS failure to retry."""
        profile = self.args.profile or os.environ.get("AWS_PROFILE")
        named = f"AWS_PROFILE={profile}" if profile else "the default AWS profile"
        named = f"--profile {profile}" if self.args.profile else named
        try:
            session = aws_session(region=self.args.region, profile=self.args.profile)
            region = self.args.region or session.region_name
            if not region:
                # botocore's "You must specify a region" names no option (issue 16).
                raise UsageError(
                    "no AWS region: pass --region <the stack's aws:region>, "
                    "or set AWS_REGION or the profile's region"
                )
            credentials = session.get_credentials()
            if credentials is None:
                raise UsageError(
                    "no AWS credentials: pass --profile <name>, or set AWS_PROFILE, or "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (`aws sso login` for SSO)"
                )
            credentials.get_frozen_credentials()  # an SSO profile loads its token only now
            return clients_for(session, self.args.region, self.args.endpoint_url)
        except (SSOTokenLoadError, UnauthorizedSSOTokenError, TokenRetrievalError):
            login = f"aws sso login --profile {profile}" if profile else "aws sso login"
            raise UsageError(
                f"{named}: no valid SSO login (none, or it expired): run `{login}`, then "
                "run this again"
            ) from None
        except ProfileNotFound:
            raise UsageError(
                f"{named}: no such profile in the AWS config; `aws configure list-profiles` "
                "lists them"
            ) from None
        except PartialCredentialsError as error:
            raise UsageError(
                f"incomplete AWS credentials ({error}): give the key id and the secret together"
            ) from None
        except InvalidRegionError:
            raise UsageError(
                f"--region {region!r}: not an AWS region name; give one such as eu-west-1"
            ) from None

    def _store(self, release: str) -> StateStore:
        if not self.args.state_bucket:
            raise UsageError("--state-bucket is required")
        return StateStore(self.aws.clients.s3, self.args.state_bucket, release, self.clock)

    def _progress(self) -> LogProgress | TtyProgress:
        tty = hasattr(self.out, "isatty") and self.out.isatty()
        return TtyProgress(self.out) if tty else LogProgress(self.out)

    def _say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # -- commands

    def plan(self) -> int:
        inventory = load_inventory(self.args.inventory) if self.args.inventory else None
        if inventory is None:
            raise UsageError("--inventory is required")
        manifest = load_manifest(
            _read(self.args.manifest, "--manifest"), inventory, str(self.args.manifest)
        )
        if self.args.state_bucket:
            state, plan = prepare(self.aws, self._store(manifest.release_id), manifest, inventory)
            if state is not None:
                self._say(f"release {state.release_id} already exists: {state.status}")
                self._print_state(state)
                return EXIT_OK
        else:
            from ecs_delivery.runtime.release.plan import compute_plan

            plan = compute_plan(self.aws, manifest, inventory)
        assert plan is not None
        if self.args.json:
            self._say(json.dumps(plan.to_dict(), indent=2))
        else:
            for line in plan.describe():
                self._say(line)
        return EXIT_OK

    def apply(self) -> int:
        if self.args.inventory is None:
            raise UsageError("--inventory is required")
        inventory = load_inventory(self.args.inventory)
        manifest = load_manifest(
            _read(self.args.manifest, "--manifest"), inventory, str(self.args.manifest)
        )
        config = _config(self.args)
        store = self._store(manifest.release_id)
        definitions = TaskDefinitions(self.aws)
        state, plan = prepare(self.aws, store, manifest, inventory, definitions)
        progress = self._progress()
        engine = ReleaseEngine(self.aws, store, config, progress, definitions)
        if state is None:
            assert plan is not None
            for line in plan.describe():
                self._say(line)
            if not plan.has_changes:
                return EXIT_OK
            state = engine.begin(plan)
        else:
            self._say(f"resuming release {state.release_id} ({state.status})")
        progress.start(state)
        try:
            outcome = engine.run(self.stop, take_over=self.args.take_over)
        except (ReleaseInputError, KeyboardInterrupt):
            raise
        except Exception as error:  # the state is in S3; a person decides what next
            progress.finish()
            return self._stopped(store, error)
        progress.finish()
        return self._report(outcome, store)

    def status(self) -> int:
        store = self._store(_release_of(self.args))
        state = store.load()
        if state is None:
            raise UsageError(
                f"release {store.release_id} has no state in s3://{store.bucket}/{store.key}"
            )
        if self.args.json:
            self._say(state.model_dump_json(indent=2))
        else:
            self._print_state(state)
        return EXIT_OK

    def rollback(self) -> int:
        store = self._store(_release_of(self.args))
        if store.load() is None:
            raise UsageError(
                f"release {store.release_id} has no state in s3://{store.bucket}/{store.key}; nothing was deployed"
            )
        progress = self._progress()
        engine = ReleaseEngine(self.aws, store, _config(self.args), progress)
        progress.start(store.state)
        try:
            outcome = engine.rollback("rollback requested from the command line")
        except KeyboardInterrupt:
            raise
        except Exception as error:
            progress.finish()
            return self._stopped(store, error)
        progress.finish()
        self._print_state(store.state)
        if outcome.status == "rolled_back":
            self._say(
                f"release {outcome.release_id} rolled back: what the release set is taken back, "
                "onto what runs now"
            )
            self._kept_newer(outcome)
            return EXIT_OK
        return self._report(outcome, store)

    # -- reporting

    def _print_state(self, state: Any) -> None:
        self._say(f"release {state.release_id} ({state.environment}): {state.status}")
        if state.failure:
            self._say(f"  failure: {state.failed_item or 'release'}: {state.failure}")
        for line in summary_table(state):
            self._say("  " + line)

    def _report(self, outcome: Outcome, store: StateStore) -> int:
        if outcome.state is not None:
            self._print_state(outcome.state)
        failed = outcome.failed_item or "the release"
        if outcome.status == "succeeded":
            self._say(f"release {outcome.release_id} succeeded")
        elif outcome.status == "rolled_back":
            self.err.write(
                f"release {outcome.release_id} failed: {failed}: {outcome.failure}\n"
                "rolled back: what the release set is taken back, onto what runs now\n"
            )
            self._kept_newer(outcome)
            self._emulator_note(_timed_out(outcome.failure))
        else:
            stuck = []
            if outcome.state is not None:
                stuck = [n for n, s in outcome.state.services.items() if s.rollback == "failed"]
                stuck += [n for n, t in outcome.state.tasks.items() if t.rollback == "failed"]
            self.err.write(
                f"release {outcome.release_id} failed ({failed}: {outcome.failure}) and its "
                f"rollback did not finish ({outcome.status}); needs a human. Not rolled back: "
                f"{', '.join(stuck) or 'see the table'}. State: s3://{store.bucket}/{store.key}; "
                "retry with `release rollback`\n"
            )
        return outcome.exit_code

    def _kept_newer(self, outcome: Outcome) -> None:
        """Name each item the rollback left running because a newer deployment set it."""
        if outcome.state is None:
            return
        items = [("service", n, s) for n, s in outcome.state.services.items()]
        items += [("task", n, t) for n, t in outcome.state.tasks.items()]
        for kind, name, item in sorted(items, key=lambda i: (i[0], i[1])):
            if item.rollback == "superseded":
                self.err.write(f"kept newer: {kind} {name}: {item.rollback_note}\n")

    def _stopped(self, store: StateStore, error: BaseException) -> int:
        # An emulator's error 500 carries a whole HTML page as its message: drop it.
        message = re.sub(r":?\s*<!doctype.*", "", str(error), flags=re.I | re.S)
        self.err.write(
            f"release {store.release_id} stopped with an error: {message}\n"
            f"its state is in s3://{store.bucket}/{store.key}; check `release status`, then "
            "run `release apply` again to resume or `release rollback` to undo\n"
        )
        stuck_stop = isinstance(error, ClientError) and error.operation_name == "StopDeployment"
        self._emulator_note(stuck_stop)
        return EXIT_NEEDS_HUMAN

    def _emulator_note(self, evidence: bool) -> None:
        """Why a release against an emulator hangs, and what to do instead."""
        if not (evidence and self.args.endpoint_url):
            return
        self.err.write(
            f"note: --endpoint-url {self.args.endpoint_url}: its deployments did not finish. "
            "An emulator's CodeDeploy may never finish one (a moto server leaves them "
            "`Created` and answers StopDeployment with an error 500), so `apply` waits "
            "--timeout-minutes, fails the release and tries to stop them. Against an "
            "emulator use `plan` and `status`; to watch a whole release (deploy, failure, "
            "rollback) run `make release-demo`, a simulated AWS whose deployments finish\n"
        )


# Codes AWS answers for credentials it does not accept (STS, S3 and the JSON services).
_CREDENTIAL_ERRORS = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "InvalidAccessKeyId"}
    | {"UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidSignatureException"}
)

_NOT_DONE = {
    "plan": "nothing was changed (plan only reads); run it again once AWS answers",
    "status": "nothing was changed (status only reads); run it again once AWS answers",
    "apply": "nothing was deployed; run `release apply` again once AWS answers",
    "rollback": "the rollback did not start; nothing was changed; run `release rollback` "
    "again once AWS answers",
}


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Clients | None = None,
    clock: Clock | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run the CLI; returns the exit code (tests pass simulated clients and a clock)."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    own_stop = stop is None and threading.current_thread() is threading.main_thread()
    if stop is None:
        stop = threading.Event()
    previous_handler = None
    if own_stop:
        # First Ctrl-C: stop and roll back; a second one interrupts the rollback itself.
        def on_sigint(signum: int, frame: Any) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            err.write("stopping: rolling the release back (Ctrl-C again to abandon)\n")
            stop.set()

        previous_handler = signal.signal(signal.SIGINT, on_sigint)
    cli = Cli(args, clients, clock or SystemClock(), out, err, stop)
    try:
        return int(getattr(cli, args.command)())
    except ManifestError as error:
        err.write(
            f"manifest {args.manifest} is invalid ({len(error.errors)} problems; nothing deployed):\n"
        )
        for line in error.lines:
            err.write(f"  {line}\n")
        return EXIT_BAD_INPUT
    except (UsageError, InventoryError, ReleaseInputError, LiveStateError, StateReadError) as error:
        err.write(f"error: {error}\nnothing was deployed\n")
        return EXIT_BAD_INPUT
    except ParamValidationError as error:
        # botocore refused a value before sending it (e.g. --state-bucket): the user's input.
        reasons = str(error).splitlines()[1:] or [str(error)]
        shown = "; ".join(
            re.sub(r":? *(Bucket name )?must match the regex.*", "", r) for r in reasons
        )
        err.write(f"error: {shown} (refused before it was sent)\nnothing was deployed\n")
        return EXIT_BAD_INPUT
    except (ClientError, BotoCoreError) as error:
        code = (
            error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        )
        if code in _CREDENTIAL_ERRORS:  # the user's to mend: running it again fails the same way
            err.write(
                f"error: AWS refused the credentials ({code}: {error}); refresh them (a new "
                "session token, `aws sso login`, or the right keys) and run it again\n"
                "nothing was deployed\n"
            )
            return EXIT_BAD_INPUT
        # Raised before any deployment started (plan, state read): an AWS failure, not the
        # user's input; what was not done depends on the command.
        err.write(f"AWS error: {error}\n{_NOT_DONE[args.command]}\n")
        return EXIT_AWS
    except KeyboardInterrupt:
        err.write(
            "interrupted: the release's state is saved; run `release status`, then "
            "`release rollback` to finish rolling back\n"
        )
        return EXIT_NEEDS_HUMAN
    finally:
        if own_stop and previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)


if __name__ == "__main__":
    raise SystemExit(main())
