"""Fixtures shared by every test folder.

The broker: ``KAFKA_BOOTSTRAP_SERVERS`` if set (with ``AWS_ENDPOINT_URL`` for moto); else the
local stack (``local/stack up``: Apache Kafka in KRaft mode and moto in server mode). A Docker
engine would allow testcontainers, but the machines this project is built on have none, so the
local stack is the fallback that always works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if "integration" in path.parts:
            item.add_marker(pytest.mark.integration)
        if "reliability" in path.parts:
            item.add_marker(pytest.mark.reliability)


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _local_stack_env() -> dict[str, str]:
    result = subprocess.run(
        [str(ROOT / "local" / "stack"), "up"], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        pytest.exit(f"local/stack up failed:\n{result.stderr}", returncode=3)
    env: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value.strip().strip("'\"")
    return env


@pytest.fixture(scope="session")
def stack() -> Iterator[dict[str, str]]:
    """The environment that points AWS clients at moto and Kafka clients at the broker."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("AWS_ENDPOINT_URL"):
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        }
    elif _docker_engine_answers() and os.environ.get("CSV_TO_KAFKA_TESTCONTAINERS"):
        pytest.exit(
            "testcontainers support needs a moto container too; set "
            "KAFKA_BOOTSTRAP_SERVERS and AWS_ENDPOINT_URL instead",
            returncode=3,
        )
    else:
        env = _local_stack_env()
    env.setdefault("AWS_REGION", "us-east-1")
    env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
