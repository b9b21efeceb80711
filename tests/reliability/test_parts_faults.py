"""A planned copy in four parts side by side, with kill -9s at random instants (issue 16).

The CI subset: 200,000 rows, two kills; the torture run (``--torture``): the issue's 1M-row
object, six kills, both clients. The object has a quoted field with newlines (and a fake row
inside it) around every multiple of 1,000 rows, where the plan's cuts fall.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from typing import Any

import pytest

from tests.integration.conftest import Job, kill
from tests.integration.parts import (
    PARTS,
    assert_parts_exact,
    make_plan,
    part_checkpoint_rows,
    parts_csv,
    start_part,
    verify_plan,
)

from .conftest import Profile, clients


@pytest.mark.parametrize("client", clients(ci="confluent"))
def test_four_parts_with_kill_9s_at_random_instants(
    stack: dict[str, str], bucket: str, profile: Profile, seed: int, client: str
) -> None:
    rows = profile.pick(ci=200_000, torture=1_000_000)
    kills_wanted = profile.pick(ci=2, torture=6)
    rng = random.Random(seed)
    job = Job(env=stack, client=client, bucket=bucket, key=f"{uuid.uuid4()}.csv")
    job.put(parts_csv(rows))
    plan = make_plan(job)
    procs: dict[int, Any] = {i: start_part(job, i) for i in range(PARTS)}
    kills = 0
    deadline = time.monotonic() + 900
    while kills < kills_wanted and time.monotonic() < deadline:
        victim = rng.randrange(PARTS)
        proc = procs[victim]
        if proc.poll() is not None:
            if all(p.poll() is not None for p in procs.values()):
                break
            continue
        planned = plan["parts"][victim]["rows"]
        target = min(planned - 1, part_checkpoint_rows(job, victim) + rng.randrange(1, 20_000))
        while proc.poll() is None and part_checkpoint_rows(job, victim) < target:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))
        if proc.poll() is not None:
            continue
        assert kill(proc) == -signal.SIGKILL
        kills += 1
        procs[victim] = start_part(job, victim)
    for index, proc in procs.items():
        _out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"part {index}: {err}"
    print(f"{kills} kills landed")
    assert kills >= 1, f"no kill landed (seed {seed})"

    assert_parts_exact(job, plan)
    verified = verify_plan(job, "--kafka-client", client)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"verify OK: {PARTS} parts, rows in CSV {rows}" in verified.stdout
