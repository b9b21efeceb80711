"""Fixtures shared by every test folder.

The broker, chosen by ``CSV_TO_KAFKA_BROKER``:

- ``local`` (the default): ``KAFKA_BOOTSTRAP_SERVERS`` if set (with ``AWS_ENDPOINT_URL`` for
  moto, and the secure listeners' ``SECURE_STACK_VARIABLES`` when set too), else the local
  stack (``local/stack up``: Apache Kafka in KRaft mode and moto in server mode).
- ``container``: the broker image of ``local/engine kafka-image`` (KRaft, one node) started by
  testcontainers on the host network, where ``DOCKER_HOST`` reaches an engine; moto as a local
  server process. ``make test`` runs the integration copy, crash and verify tests this way once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROKER_ENV = "CSV_TO_KAFKA_BROKER"
# Set by the container branch: the id of the broker's container (the tests of that branch check
# that their records went through it).
CONTAINER_ID_ENV = "CSV_TO_KAFKA_BROKER_CONTAINER"

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
    broker = os.environ.get(BROKER_ENV, "local")
    if broker == "container":
        yield from _testcontainers_env()
        return
    if broker != "local":
        pytest.exit(f"{BROKER_ENV}={broker!r}: expected 'local' or 'container'", returncode=4)
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("AWS_ENDPOINT_URL"):
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        }
        env.update(
            {name: os.environ[name] for name in SECURE_STACK_VARIABLES if name in os.environ}
        )
    else:
        env = _local_stack_env()
    yield from _exported(env)


def _exported(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Put ``env`` (plus fake AWS credentials) in os.environ for the session, then restore it."""
    env.setdefault("AWS_REGION", "us-east-1")
    env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with environ_set(env):
        yield env


@contextmanager
def environ_set(env: dict[str, str]) -> Iterator[None]:
    """``env`` in os.environ for the block, then each variable as it was (or absent) again."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _testcontainers_env() -> Iterator[dict[str, str]]:
    """Kafka in a container (the image of ``local/engine kafka-image``), moto as a local server
    process. The container shares the host's network: the engine of ``local/engine`` has no
    bridge, and no registry serves testcontainers' Ryuk reaper, so the fixture stops the
    container itself."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    image = os.environ.get("CSV_TO_KAFKA_KAFKA_IMAGE", "csv-to-kafka-kafka:dev")
    kafka_port, controller_port, moto_port = _free_port(), _free_port(), _free_port()
    kafka = (
        DockerContainer(image)
        .with_env("KAFKA_PORT", str(kafka_port))
        .with_env("KAFKA_CONTROLLER_PORT", str(controller_port))
        .with_kwargs(network_mode="host")
        .waiting_for(LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(120))
    )
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
    try:
        try:
            kafka.start()
        except Exception as err:  # docker's errors: no engine, no image
            pytest.exit(
                f"{BROKER_ENV}=container: could not start {image} ({err}); build it with "
                "`make kafka-image` and point DOCKER_HOST at its engine: "
                'eval "$(local/stack env)"',
                returncode=3,
            )
        try:
            env = {
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
                CONTAINER_ID_ENV: kafka.get_wrapped_container().id,
            }
            yield from _exported(env)
        finally:
            kafka.stop()
    finally:
        moto.terminate()
        moto.wait(timeout=30)


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable
