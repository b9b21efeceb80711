"""Dead letters under kill -9 (issue 14): the full rounds of the integration test's kill loop,
both clients; both topics exact after each job."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import Job
from tests.integration.test_dead_letters import kill_loop


@pytest.mark.torture
@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_kill_9_at_20_random_instants_with_bad_rows(
    stack: dict[str, str], bucket: str, client: str, seed: int
) -> None:
    job = Job(env=stack, client=client, bucket=bucket, key=f"{uuid.uuid4()}.csv")
    kill_loop(job, kills=20, rows=400_000, seed=seed)
