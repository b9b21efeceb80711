"""Fixtures of the fault tests: the profile (CI subset or full torture), seeds, jobs whose
processor may go through fault proxies, the broker to bounce, and the oracle.

Two profiles, one code path:

- the CI subset (default; the end of ``make test``): one round of each fault type, each with one
  of the two Kafka clients;
- the full torture run (``make torture``: ``pytest tests/reliability --torture``, or
  ``CSV_TO_KAFKA_TORTURE=1``): every test with both clients and the rounds the issue asks for.

Tests and parameters that belong to the full run only carry the ``torture`` marker and are
deselected in the CI subset. ``CSV_TO_KAFKA_SEED`` replays a printed seed.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Job, bucket, make_csv  # noqa: F401 (bucket: a fixture)

from .faults import Broker, ControlledProcess, FaultJob
from .oracle import Expected, Oracle

CLIENTS = ("confluent", "kafka-python")
TORTURE_ENV = "CSV_TO_KAFKA_TORTURE"
SEED_ENV = "CSV_TO_KAFKA_SEED"
ROWS = 200_000


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--torture",
        action="store_true",
        default=False,
        help="run the full reliability torture (both clients, every round); default: the CI "
        f"subset. {TORTURE_ENV}=1 does the same.",
    )


def torture_mode(config: pytest.Config) -> bool:
    return bool(config.getoption("torture", default=False)) or os.environ.get(TORTURE_ENV) == "1"


def pytest_report_header(config: pytest.Config) -> str:
    if torture_mode(config):
        return "reliability: full torture run"
    return "reliability: CI subset (one round of each fault type); --torture runs everything"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torture_mode(config):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        in_here = Path(str(item.fspath)).is_relative_to(Path(__file__).parent)
        (drop if in_here and item.get_closest_marker("torture") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def clients(ci: str) -> list[Any]:
    """Both clients; the one not named ``ci`` only in the full torture run."""
    return [
        pytest.param(name, id=name, marks=() if name == ci else (pytest.mark.torture,))
        for name in CLIENTS
    ]


@dataclass(frozen=True)
class Profile:
    torture: bool

    def pick(self, ci: Any, torture: Any) -> Any:
        return torture if self.torture else ci


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Profile:
    return Profile(torture=torture_mode(pytestconfig))


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    value = int(os.environ.get(SEED_ENV) or random.randrange(1 << 31))
    print(f"seed {value} ({SEED_ENV}={value} replays it)")
    request.node.user_properties.append(("seed", value))
    return value


@functools.lru_cache(maxsize=4)
def csv_data(rows: int = ROWS, seed: int = 7) -> bytes:
    """A CSV of ``rows`` rows with quoted commas, quotes and newlines, non-ASCII and empties."""
    return make_csv(rows, seed=seed)


@pytest.fixture
def fault_job(
    stack: dict[str, str],
    bucket: str,  # noqa: F811 (the session fixture imported above)
    tmp_path: Path,
) -> Iterator[Callable[..., FaultJob]]:
    """A factory of jobs on a fresh topic; their processes are killed at the end if still up."""
    made: list[FaultJob] = []
    lock = threading.Lock()  # jobs may be made from several threads at once

    def make(client: str, *, rows: int = ROWS, data: bytes | None = None, **kw: Any) -> FaultJob:
        with lock:
            logs = tmp_path / f"job-{len(made) + 1}"
            logs.mkdir()
            job = FaultJob(
                env=stack, client=client, bucket=bucket, key=f"{uuid.uuid4()}.csv", logs=logs, **kw
            )
            made.append(job)
        job.put(data if data is not None else csv_data(rows))
        return job

    yield make
    for job in made:
        job.cleanup()


@pytest.fixture
def watch(stack: dict[str, str], request: pytest.FixtureRequest) -> Iterator[Callable[..., Oracle]]:
    """A factory of oracles watching a job (started before the faults, judged by finish())."""
    made: list[Oracle] = []

    def make(
        job: Job,
        fault: str,
        *,
        seed: int | None = None,
        expected: Expected | None = None,
        dlq_topic: str | None = None,
    ) -> Oracle:
        oracle = Oracle(
            test=request.node.nodeid,
            fault=fault,
            client=job.client,
            seed=seed,
            bootstrap=stack["KAFKA_BOOTSTRAP_SERVERS"],
            aws_endpoint=stack["AWS_ENDPOINT_URL"],
            topic=job.topic,
            table=job.table,
            job_id=job.job_id,
            expected=expected if expected is not None else Expected(job.data, job.source),
            dlq_topic=dlq_topic,
        )
        made.append(oracle)
        return oracle

    yield make
    for oracle in made:
        oracle.close()


@pytest.fixture
def broker(stack: dict[str, str]) -> Iterator[Broker]:
    """The local stack's broker; skipped where the broker is not local/stack's. It is running
    again (resumed, restarted) after the test, whatever happened."""
    control = Broker(stack["KAFKA_BOOTSTRAP_SERVERS"])
    reason = control.unusable()
    if reason is not None:
        pytest.skip(reason)
    try:
        yield control
    finally:
        control.ensure_up()


@pytest.fixture
def kafka_proxy(stack: dict[str, str], tmp_path: Path, seed: int) -> Iterator[ControlledProcess]:
    """local/kafka_fault_proxy.py in front of the broker, no faults until told."""
    proxy = ControlledProcess(
        "kafka_fault_proxy.py",
        "--upstream",
        stack["KAFKA_BOOTSTRAP_SERVERS"],
        "--seed",
        str(seed),
        log=tmp_path / "kafka-proxy.log",
    )
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def aws_proxy(stack: dict[str, str], tmp_path: Path, seed: int) -> Iterator[ControlledProcess]:
    """local/aws_fault_proxy.py in front of moto, no faults until told."""
    proxy = ControlledProcess(
        "aws_fault_proxy.py",
        "--upstream",
        stack["AWS_ENDPOINT_URL"],
        "--seed",
        str(seed),
        log=tmp_path / "aws-proxy.log",
    )
    try:
        yield proxy
    finally:
        proxy.close()
