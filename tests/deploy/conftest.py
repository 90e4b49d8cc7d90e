"""Podman for the container tests: the images are built once per run by
scripts/containers.sh, the same script people use."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "containers.sh"
CONF = ROOT / "deploy" / "podman" / "containers.conf"


def unavailable(message: str) -> None:
    """Skip on a developer's machine; in CI the tools are installable, so fail."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}; the container tests must run in CI", pytrace=False)
    pytest.skip(message)


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONTAINERS_CONF": str(CONF)}
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def containers_sh(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> None:
    done = subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"scripts/containers.sh {' '.join(args)}:\n{done.stderr[-4000:]}")


@pytest.fixture(scope="session")
def podman_works() -> None:
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (scripts/setup.sh installs it)")
    probe = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False)
    if probe.returncode != 0:
        unavailable(f"podman cannot run here: {probe.stderr.strip()[-500:]}")


@pytest.fixture(scope="session")
def movierec_image(podman_works: None) -> str:
    """localhost/movierec, built from the local Debian base (scripts/containers.sh build)."""
    containers_sh("build")
    return "localhost/movierec"


@pytest.fixture(scope="session")
def standin_image(podman_works: None) -> str:
    """Local stand-ins for the public Kafka, nginx and Prometheus images."""
    containers_sh("standins")
    return "localhost/movierec-standins"
