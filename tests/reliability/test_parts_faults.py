"""A planned copy in four parts side by side, with kill -9s at random instants (issue 16).

The CI subset: 200,000 rows, two kills; the torture run (``--torture``): the issue's 1M-row
object, six kills, both clients. The object has a quoted field with newlines (and a fake row
inside it) around every multiple of 1,000 rows, where the plan's cuts fall.

The kills come from outside, at instants a seed draws (tests/integration/test_parts.py kills at
the named failpoints instead), and every one of them lands: the victim is a part with many rows
still to copy, its kill instant lies before the middle of what it has left, and it is frozen
(SIGSTOP) before it is checked to be running and killed, so it cannot end between the check and
the kill. A part that ends before its kill fails the test rather than letting it pass with fewer.
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
    CHECKPOINT_EVERY,
    PARTS,
    assert_parts_exact,
    make_plan,
    part_checkpoint_rows,
    parts_csv,
    start_part,
    verify_plan,
)

from .conftest import Profile, clients

MIN_LEFT = 20 * CHECKPOINT_EVERY  # a victim has at least this many rows left to copy


def _wait_rows(job: Job, part: int, proc: Any, target: int, timeout: float) -> None:
    """Until part ``part``'s checkpoint counts ``target`` rows; fails if the part ends first."""
    deadline = time.monotonic() + timeout
    while part_checkpoint_rows(job, part) < target:
        assert proc.poll() is None, f"part {part} ended (exit {proc.returncode}) before {target}"
        assert time.monotonic() < deadline, f"part {part}: no {target} rows in {timeout:.0f}s"
        time.sleep(0.02)


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
    for kill_number in range(1, kills_wanted + 1):
        done = {i: part_checkpoint_rows(job, i) for i in range(PARTS)}
        left = {i: plan["parts"][i]["rows"] - done[i] for i in range(PARTS)}
        candidates = [i for i, proc in procs.items() if proc.poll() is None and left[i] >= MIN_LEFT]
        assert candidates, f"kill {kill_number}: no part has {MIN_LEFT} rows left (seed {seed})"
        victim = rng.choice(candidates)
        target = done[victim] + rng.randrange(CHECKPOINT_EVERY, left[victim] // 2)
        _wait_rows(job, victim, procs[victim], target, timeout=600)
        # a commit every 500 rows takes 10-25 ms: the delay moves the kill across the commit cycle
        time.sleep(rng.uniform(0, 0.05))
        procs[victim].send_signal(signal.SIGSTOP)
        assert procs[victim].poll() is None, f"part {victim} ended before kill {kill_number}"
        assert kill(procs[victim]) == -signal.SIGKILL
        print(f"kill {kill_number}: part {victim} at >= {target} rows")
        procs[victim] = start_part(job, victim)
    for index, proc in procs.items():
        _out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"part {index}: {err}"

    assert_parts_exact(job, plan)
    verified = verify_plan(job, "--kafka-client", client)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"verify OK: {PARTS} parts, rows in CSV {rows}" in verified.stdout
