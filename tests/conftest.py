"""Fixtures shared by every test folder.

The broker: ``KAFKA_BOOTSTRAP_SERVERS`` if set (with ``AWS_ENDPOINT_URL`` for moto, and the secure
listeners' ``SECURE_STACK_VARIABLES`` when set too); else
testcontainers' Kafka where a Docker engine answers (``CSV_TO_KAFKA_NO_TESTCONTAINERS`` turns
that off), with moto as a local server process; else the local stack (``local/stack up``:
Apache Kafka in KRaft mode and moto in server mode).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What `local/stack env` exports for MSK's secure listeners (tests/integration/test_auth.py).
SECURE_STACK_VARIABLES = (
    "KAFKA_TLS_BOOTSTRAP_SERVERS",
    "KAFKA_SCRAM_BOOTSTRAP_SERVERS",
    "KAFKA_IAM_BOOTSTRAP_SERVERS",
    "KAFKA_CA_LOCATION",
    "KAFKA_SCRAM_USERNAME",
    "KAFKA_SCRAM_PASSWORD",
)


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
        env.update(
            {name: os.environ[name] for name in SECURE_STACK_VARIABLES if name in os.environ}
        )
    elif os.environ.get("CSV_TO_KAFKA_NO_TESTCONTAINERS") is None and _docker_engine_answers():
        yield from _testcontainers_env()
        return
    else:
        env = _local_stack_env()
    yield from _exported(env)


def _exported(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Put ``env`` (plus fake AWS credentials) in os.environ for the session, then restore it."""
    env.setdefault("AWS_REGION", "us-east-1")
    env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _testcontainers_env() -> Iterator[dict[str, str]]:
    """Kafka in a container (where a Docker engine answers), moto as a local server process.

    Not exercised on the machines this project is built on, which have no Docker engine.
    """
    from testcontainers.community.kafka import KafkaContainer

    kafka = (
        KafkaContainer()
        .with_kraft()
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        moto_port = probe.getsockname()[1]
    moto = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("moto_server")),
            "-H",
            "127.0.0.1",
            "-p",
            str(moto_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    kafka.start()
    try:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.get_bootstrap_server(),
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        }
        yield from _exported(env)
    finally:
        kafka.stop()
        moto.terminate()
        moto.wait(timeout=30)


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
