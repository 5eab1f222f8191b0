"""What a service or scheduled task runs before its first release.

A service's bootstrap serves its own health check (and validation path) on its container port,
as the configured non-root user on a read-only root filesystem: busybox `httpd` serving files
the entry point writes under a writable path. A task's bootstrap exits 0. Only a busybox image
gets the generated entry point; any other bootstrap image runs as it is (the plan warns).
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from ecs_delivery.runtime.taskdef import BOOTSTRAP_LABEL

# A tag, not a digest: the digest must be verified against the registry before pinning it
# (nothing here can reach one). public.ecr.aws mirrors Docker Hub's official image.
DEFAULT_IMAGE = "public.ecr.aws/docker/library/busybox:1.36"
# Marks the generated entry point, so a deployer that swaps in a real image can drop it.
LABEL = BOOTSTRAP_LABEL  # the runtime drops the entry point when a ship replaces the image
WEB_DIRECTORY = "bootstrap-www"


@dataclass(frozen=True)
class BootstrapContainer:
    """The image and entry point a bootstrapping container runs (entry point None: the image's)."""

    image: str
    entry_point: list[str] | None
    labels: dict[str, str]


def is_busybox(image: str) -> bool:
    """True for any busybox repository (Docker Hub, its public ECR mirror, a private mirror)."""
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return repository.split(":", 1)[0] == "busybox"


def _file_for(path: str, root: str) -> str:
    """The file under `root` that busybox httpd serves for a request path."""
    clean = unquote(path.split("?", 1)[0].split("#", 1)[0])
    if clean.endswith("/"):
        clean += "index.html"
    resolved = posixpath.normpath(posixpath.join(root, clean.lstrip("/")))
    if not resolved.startswith(root + "/"):
        raise ValueError(f"{path!r} leaves the web root; use a path like /health")
    return resolved


def service_script(port: int, paths: Iterable[str], web_root: str) -> str:
    """The shell script that writes one file per path and serves them on `port`."""
    files = sorted({_file_for(p, web_root) for p in ["/", *paths]})
    directories = sorted({posixpath.dirname(f) for f in files})
    lines = ["set -e", "mkdir -p " + " ".join(shlex.quote(d) for d in directories)]
    lines += [
        f"echo 'ecs-delivery bootstrap: no release shipped yet' > {shlex.quote(f)}" for f in files
    ]
    lines.append(f"exec busybox httpd -f -v -p {port} -h {shlex.quote(web_root)}")
    return "\n".join(lines)


def service_container(
    image: str, *, port: int, paths: Iterable[str], writable_paths: list[str]
) -> BootstrapContainer:
    """A service's bootstrap: busybox answers 200 on `paths` at `port`; other images as they are."""
    if not is_busybox(image):
        return BootstrapContainer(image=image, entry_point=None, labels={})
    # The first writable path (default /tmp) is the only place a read-only root lets it write.
    base = (writable_paths or ["/tmp"])[0].rstrip("/") or "/tmp"
    script = service_script(port, paths, f"{base}/{WEB_DIRECTORY}")
    return BootstrapContainer(
        image=image, entry_point=["sh", "-c", script], labels={LABEL: "service"}
    )


def task_container(image: str) -> BootstrapContainer:
    """A scheduled task's bootstrap: busybox `true` exits 0 whatever the task's command is."""
    if not is_busybox(image):
        return BootstrapContainer(image=image, entry_point=None, labels={})
    return BootstrapContainer(image=image, entry_point=["true"], labels={LABEL: "task"})


def worker_container(image: str, kind: str = "worker") -> BootstrapContainer:
    """A worker's (or a built sidecar's, `kind` "sidecar") bootstrap: busybox sleeps (a worker
    that exits would trip the circuit breaker and roll back its first deploy, an essential
    sidecar that exits stops the task) until a ship replaces the image."""
    if not is_busybox(image):
        return BootstrapContainer(image=image, entry_point=None, labels={})
    return BootstrapContainer(
        image=image, entry_point=["sleep", "2147483647"], labels={LABEL: kind}
    )


def custom_image_warning(service: str, image: str, *, port: int, path: str) -> str | None:
    """Why a service's own bootstrap image will likely keep its first deploy unhealthy."""
    if is_busybox(image):
        return None
    return (
        f"services.{service}.bootstrapImage: {image!r} runs as it is (only busybox gets the "
        f"generated health server); unless it answers {path} on port {port} as the configured "
        "user on a read-only root filesystem, the first deploy stays unhealthy until a release "
        f"ships. Remove bootstrapImage to use {DEFAULT_IMAGE}."
    )
