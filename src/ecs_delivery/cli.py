"""The `ecs-delivery` command: `plan` and `diff` (offline, in a Pulumi project) and `release`."""

from __future__ import annotations

import sys

USAGE = """usage: ecs-delivery <command> [options]

commands:
  plan     what `pulumi up` would register for a stack, offline (run in the Pulumi project)
  diff     what changes between two plans (a plan JSON or a git ref) and this tree
  release  plan, apply, status or roll back a release of many services at once

`ecs-delivery <command> --help` describes each command's options."""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command in ("-h", "--help"):
        print(USAGE)
        return 0
    if not command:  # a usage error: on stderr, as argparse writes its own
        print(USAGE, file=sys.stderr)
        return 2
    if command == "plan":
        import gc

        gc.disable()  # plan.cli's choice (no cyclic GC in a one-shot plan), from its imports on
        from ecs_delivery.offline import plan

        plan.cli(rest)  # exits: a plan skips interpreter teardown
    if command == "diff":
        from ecs_delivery.offline import diff

        return diff.main(rest)
    if command == "release":
        from ecs_delivery.runtime.release.cli import main as release

        return release(rest)
    print(f"ecs-delivery: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
