"""Run a planned pipeline against moto, action by action, as CodePipeline would.

A test double for CodePipeline and CodeBuild: the stages and buildspecs are the ones the plan
registered; every `python -m ecs_delivery.runtime.build` command of a buildspec runs for real (in-process,
against moto), the Deploy action's `deploy` steps included; `docker` and `aws` CLI lines are
skipped (the image is pushed to moto's ECR beforehand). Where moto stops short of CodeDeploy
(deployments stay `Created`, no StopDeployment), the one CodeDeploy simulator
(`ecs_delivery.offline.codedeploy_sim`) answers the CodeDeploy client the tool gets, on a virtual
clock the tool waits on too: each deployment runs its lifecycle (`lifecycle`, default one
minute all at once) and its revision becomes the PRIMARY task set.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import yaml

from ecs_delivery.offline.codedeploy_sim import CodeDeploySim, Lifecycle, on_virtual_time
from ecs_delivery.offline.plan import Plan
from ecs_delivery.offline.simcloud import plain
from ecs_delivery.runtime import build
from ecs_delivery.runtime.taskdef import describe
from tests.support.plans import PIPELINE, PROJECT

_ASSIGN = re.compile(r'^(?P<var>[A-Z_]+)="\$\((?P<command>.*)\)"(?: && export [A-Z_]+)?$')
_VARIABLE = re.compile(r'"\$\{?(?P<var>[A-Z_]+)\}?"')
# `if <tool>; then :; else <docker ...>; fi`: the tool runs (found, or not found: exit 3);
# the docker branch is skipped like every docker line.
_IF_TOOL = re.compile(r"^if (?P<command>python -m ecs_delivery\.runtime\.build .*?); then :; else ")
_SKIPPED = ("echo ", "aws ", "docker ", "if ", "[ ")
TOOL = ("python", "-m", "ecs_delivery.runtime.build")


@dataclass
class Deployment:
    """What one deployment of the Deploy action deployed, and its AppSpec."""

    service: str
    task_definition: dict[str, Any]
    appspec: dict[str, Any]


@dataclass
class PipelineRun:
    plan: Plan
    workdir: Path
    ecs: Any
    s3: Any
    # A moto CodeDeploy client; the run attaches the simulation to it.
    codedeploy: Any
    commit: str
    # Called when the run reaches the approval (a person reads it, then approves).
    on_approval: Callable[[], None] = lambda: None
    # Called after each stage, with its name.
    after_stage: Callable[[str], None] = lambda stage: None
    upstream_record: bytes | None = None
    # Runs just before each CreateDeployment is sent (another deployer's last moment).
    before_create: Callable[[dict[str, Any]], None] | None = None
    artifacts: dict[str, Path] = field(default_factory=dict)
    stage_order: list[str] = field(default_factory=list)
    simulated: CodeDeploySim | None = None
    # How every deployment group's deployments run, and per ECS service where they differ
    # (prod's canary and termination wait...).
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    lifecycles: dict[str, Lifecycle] = field(default_factory=dict)
    # The tool's client for a service not given above (default: a new moto client).
    client: Callable[[str, str], Any] | None = None
    # The simulator's own ECS client, when the tool's must see only the tool's calls (a
    # recorded one); default: the tool's.
    simulator_ecs: Any = None

    @property
    def deployments(self) -> list[Deployment]:
        """The deployments that shipped (production runs them: succeeded, or in their
        termination wait), in order; not the stopped or failed ones."""
        assert self.simulated is not None, "run() first"
        found = []
        for deployment in self.simulated.shipped():
            arn = deployment.task_definition
            service = deployment.group.service
            found.append(
                Deployment(service, describe(self.ecs, arn)["taskDefinition"], deployment.appspec)
            )
        return found

    def run(self) -> None:
        ecs = self.simulator_ecs or self.ecs
        with on_virtual_time(ecs, self.codedeploy, lifecycle=self.lifecycle) as simulated:
            simulated.observe(self.ecs)
            self.simulated = simulated
            simulated.lifecycles.update(self.lifecycles)
            simulated.before_create = self.before_create
            self._run_stages()

    def _run_stages(self) -> None:
        stages = plain(self.plan.named(PIPELINE, "pipeline").inputs)["stages"]
        for stage in stages:
            self.stage_order.append(stage["name"])
            for action in sorted(stage["actions"], key=lambda a: a.get("runOrder", 1)):
                self._run_action(action)
            self.after_stage(stage["name"])

    # ------------------------------------------------------------------ actions

    def _run_action(self, action: dict[str, Any]) -> None:
        provider = action["provider"]
        configuration = action.get("configuration") or {}
        if action["category"] == "Source":
            out = self._artifact_dir(action["outputArtifacts"][0])
            if provider == "S3":
                assert self.upstream_record is not None, "the S3 source needs the upstream record"
                with zipfile.ZipFile(io.BytesIO(self.upstream_record)) as archive:
                    archive.extractall(out)
        elif action["category"] == "Approval":
            self.on_approval()
        elif provider == "CodeBuild":
            self._codebuild(configuration["ProjectName"], action)
        elif provider == "S3":
            self._s3_deploy(action, configuration)
        else:
            raise AssertionError(f"the pipeline run does not know provider {provider}")

    def _artifact_dir(self, name: str) -> Path:
        directory = self.workdir / "artifacts" / name
        directory.mkdir(parents=True, exist_ok=False)
        self.artifacts[name] = directory
        return directory

    def _codebuild(self, project_name: str, action: dict[str, Any]) -> None:
        projects = [
            plain(p.inputs) for p in self.plan.of_type(PROJECT) if p.inputs["name"] == project_name
        ]
        assert len(projects) == 1, f"no single CodeBuild project {project_name}"
        spec = yaml.safe_load(projects[0]["source"]["buildspec"])
        source = self.workdir / "builds" / action["name"]
        inputs = action.get("inputArtifacts") or []
        if inputs:
            shutil.copytree(self.artifacts[inputs[0]], source)
        else:
            source.mkdir(parents=True)
        env = {"CODEBUILD_RESOLVED_SOURCE_VERSION": self.commit, "CODEBUILD_BUILD_SUCCEEDING": "1"}
        env.update(spec.get("env", {}).get("variables", {}))
        for phase in ("pre_build", "build", "post_build"):
            for command in spec["phases"].get(phase, {}).get("commands", []):
                self._shell(command, env, source)
        declared_artifacts = spec.get("artifacts", {})
        outputs = action.get("outputArtifacts") or []
        secondary = declared_artifacts.get("secondary-artifacts", {})
        for name in outputs:
            # One output artifact is CodeBuild's primary one; several are matched by name.
            declared = declared_artifacts if len(outputs) == 1 else secondary[name]
            out = self._artifact_dir(name)
            for file in declared["files"]:
                shutil.copy(source / declared["base-directory"] / file, out / file)

    def _shell(self, command: str, env: dict[str, str], cwd: Path) -> None:
        assigned = _ASSIGN.match(command)
        if assigned:
            env[assigned["var"]] = self._tool(assigned["command"], env, cwd).strip()
        elif command.startswith(" ".join(TOOL)):
            self._tool(command, env, cwd)
        elif tested := _IF_TOOL.match(command):
            self._tool(tested["command"], env, cwd, accept=(build.EXIT_OK, build.EXIT_NOT_FOUND))
        else:
            assert command.startswith(_SKIPPED), f"the pipeline run cannot run: {command}"

    def _tool(
        self, command: str, env: dict[str, str], cwd: Path, accept: tuple[int, ...] = (0,)
    ) -> str:
        text = _VARIABLE.sub(lambda m: shlex.quote(env[m["var"]]), command)
        argv = shlex.split(text)
        assert tuple(argv[:3]) == TOOL, command
        out = io.StringIO()
        previous = Path.cwd()
        os.chdir(cwd)
        try:
            with contextlib.redirect_stdout(out), mock.patch.object(build, "_client", self._client):
                code = build.main(argv[3:])
        finally:
            os.chdir(previous)
        assert code in accept, f"{command} exited {code}: {out.getvalue()}"
        return out.getvalue()

    def _client(self, service: str, region: str | None) -> Any:
        """The tool's clients: these moto ones (CodeDeploy simulated), else a new moto one."""
        known = {"ecs": self.ecs, "codedeploy": self.codedeploy, "s3": self.s3}
        if service in known:
            return known[service]
        region = region or self.ecs.meta.region_name
        return (
            self.client(service, region)
            if self.client
            else boto3.client(service, region_name=region)
        )

    def _s3_deploy(self, action: dict[str, Any], configuration: dict[str, str]) -> None:
        source = self.artifacts[action["inputArtifacts"][0]]
        assert configuration["Extract"] == "false"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for file in sorted(source.iterdir()):
                archive.write(file, file.name)
        self.s3.put_object(
            Bucket=configuration["BucketName"],
            Key=configuration["ObjectKey"],
            Body=buffer.getvalue(),
        )
