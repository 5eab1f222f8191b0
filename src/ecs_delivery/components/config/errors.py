"""Error formatting of the stack config: one line per problem, naming the key path and the fix
(through `ecs_delivery.inputs`, the one formatter of every reader)."""

from __future__ import annotations

import re

import pulumi
from pydantic import BaseModel, ValidationError

from ecs_delivery import inputs
from ecs_delivery.components.config.stack import StackConfig


class ConfigError(pulumi.RunError):
    """A stack configuration is invalid; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"invalid stack configuration ({len(problems)} problem(s)):\n{lines}\n"
            "See the configuration reference in README.md."
        )


# Keys earlier versions accepted, with what replaced them.
RETIRED_KEYS: dict[tuple[str | int, ...], str] = {
    ("promote",): (
        "replaced by promoteRelease: <commit> (the upstream release to take, named so that "
        "leaving it committed is harmless); remove promote (`pulumi config rm "
        "ecs-delivery:promote`) and set promoteRelease to the commit the upstream ran"
    ),
}


def validation_problems(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per problem of a pydantic error of `root`, naming the key path and the fix."""
    return inputs.problems(
        exc,
        root,
        retired=RETIRED_KEYS if root is StackConfig else None,
        missing="required; add it to the stack file",
    )


def typo_cascade(problems: list[str]) -> list[str]:
    """Drop "X: required" when an unknown key is a typo of X: the typo is the one problem."""
    typos = {
        m.group(1) for p in problems if (m := re.search(r"unknown key; did you mean '(.+)'\?", p))
    }
    return [p for p in problems if not any(p.startswith(f"{t}: required") for t in typos)]
