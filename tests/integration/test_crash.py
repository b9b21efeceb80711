"""Crashes, stops and rivals: after each, a rerun completes and the topic is exact."""

from __future__ import annotations

import random
import signal
import time

import pytest

from .conftest import Job, kill, make_csv, wait_for_progress

ROWS = 100_000


def test_kill_9_at_ten_random_instants(job: Job) -> None:
    """Ten kills, each at a random point of the copy: once the checkpoint passes a random row
    count, after a further random delay of up to 0.1 s (a commit every 500 rows is every 10-25 ms:
    inside a transaction as often as between two; short, so that a fast machine does not reach
    the end first)."""
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    job.put(make_csv(ROWS))
    targets = sorted(rng.sample(range(1_000, ROWS * 9 // 10), 10))
    kills = 0
    for target in targets:
        proc = job.start("--checkpoint-every", "500")
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            cp = job.checkpoint()
            if cp is not None and int(cp.get("total_sent", 0)) >= target:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.1))
        if proc.poll() is not None:
            proc.communicate()
            continue  # it finished first: the final check still holds
        kills += 1
        assert kill(proc) == -signal.SIGKILL
    final = job.run()
    assert final.returncode == 0, final.stderr
    assert kills >= 5, f"only {kills} kills landed before the end (seed {seed})"
    job.assert_exact()


@pytest.mark.parametrize("point", ["in-transaction", "after-commit", "after-checkpoint"])
def test_crash_at_a_named_point(job: Job, point: str) -> None:
    job.put(make_csv(20_000))
    crashed = job.run("--checkpoint-every", "1000", env={"CSV_TO_KAFKA_FAILPOINTS": f"{point}=4"})
    assert crashed.returncode == -signal.SIGKILL
    before = job.checkpoint()

    final = job.run("--checkpoint-every", "1000")

    assert final.returncode == 0, final.stderr
    job.assert_exact()
    after = job.checkpoint()
    assert after is not None
    assert after["status"] == "COMPLETED"
    if before is not None:
        assert int(after["total_sent"]) >= int(before["total_sent"])


def test_sigterm_stops_cleanly_and_the_rerun_completes(job: Job) -> None:
    job.put(make_csv(ROWS))
    proc = job.start("--checkpoint-every", "1000")
    wait_for_progress(proc, job, 5_000)

    started = time.monotonic()
    code = kill(proc, signal.SIGTERM)

    assert code == 143
    assert time.monotonic() - started < 30
    cp = job.checkpoint()
    assert cp is not None
    assert cp["status"] == "INTERRUPTED"
    in_topic = len(job.records())
    assert int(cp["total_sent"]) == in_topic  # the checkpoint is at the last commit
    assert 0 < in_topic < ROWS
    final = job.run()
    assert final.returncode == 0, final.stderr
    job.assert_exact()


def test_two_instances_of_one_job_one_is_fenced(job: Job) -> None:
    """Two runs of one job overlap: the first is paused (SIGSTOP) with rows committed, the
    second runs to the end, then the first is continued. The pause makes the overlap certain
    on any machine: free-running, the first could finish before the second has started."""
    job.put(make_csv(ROWS))
    first = job.start("--checkpoint-every", "500")
    wait_for_progress(first, job, 2_000)
    first.send_signal(signal.SIGSTOP)
    try:
        second = job.start("--checkpoint-every", "500")
        _out2, err2 = second.communicate(timeout=240)
    finally:
        first.send_signal(signal.SIGCONT)
    _out1, err1 = first.communicate(timeout=240)

    codes = sorted([first.returncode, second.returncode])
    assert codes == [0, 4], (first.returncode, err1[-2000:], second.returncode, err2[-2000:])
    loser = err1 if first.returncode == 4 else err2
    assert "another instance" in loser
    job.assert_exact()
    cp = job.checkpoint()
    assert cp is not None
    assert cp["status"] == "COMPLETED"
