"""The long variant of tests/integration/test_keys.py's kill loop (issue 15): twenty kill -9s
at random instants of a keyed copy into six partitions, both clients; the full torture run only
(the default run has the three-kill variant in tests/integration)."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import Job
from tests.integration.test_keys import keyed_kill_rounds

from .conftest import CLIENTS


@pytest.mark.torture
@pytest.mark.parametrize("client", CLIENTS)
def test_keyed_copy_killed_9_twenty_times(stack: dict[str, str], bucket: str, client: str) -> None:
    job = Job(env=stack, client=client, bucket=bucket, key=f"{uuid.uuid4()}.csv")
    keyed_kill_rounds(job, kills=20, rows=200_000)
