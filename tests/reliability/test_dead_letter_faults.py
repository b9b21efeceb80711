"""Fault 13: dead letters under kill -9 (issue 14), both clients, judged by the oracle: a file
with 1.2% bad rows (a field too many, or bytes invalid in UTF-8) copied under
``--errors-tolerance all --dlq-topic``, killed at the product's failpoints (inside a
transaction, right after a Kafka commit, right after a checkpoint: where they land does not
depend on the machine's speed; the job needs more commits than those runs make, so every one
lands), then at random instants after a new commit, then run to the end. After each kill the
topic holds the first good rows and the dead-letter topic exactly the bad rows before them, in
order, once each (``Oracle.after_fault``); at the end both are exact, and the checkpoint counts
the bad rows. The CI subset has a short round with one client; the full torture run the long
one with both."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable

import pytest

from tests.integration.test_dead_letters import make_damaged

from .conftest import Profile, clients
from .faults import FaultJob
from .oracle import Expected, Oracle

POINTS = ("in-transaction", "after-commit", "after-checkpoint")
EVERY = 500  # rows per transaction


@pytest.mark.parametrize("client", clients(ci="confluent"))
def test_kill_9_at_failpoints_and_random_instants_with_bad_rows(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    profile: Profile,
    client: str,
    seed: int,
) -> None:
    rows = profile.pick(ci=20_000, torture=400_000)
    job = fault_job(client, data=make_damaged(rows, seed=seed))
    dlq = f"{job.topic}-dlq"
    oracle = watch(
        job,
        "13 dead letters: kill -9",
        seed=seed,
        expected=Expected(job.data, job.source, dead_letters=True),
        dlq_topic=dlq,
    )
    assert oracle.expected.bad, "the damaged file has bad rows"
    args = (
        *("--errors-tolerance", "all", "--dlq-topic", dlq),
        *("--max-bad-rows", str(rows), "--checkpoint-every", str(EVERY)),
    )
    rng = random.Random(seed)
    # At most 4 commits a run: fewer than the job's (rows / EVERY), so every failpoint lands.
    for kill in range(profile.pick(ci=3, torture=8)):
        point = f"{rng.choice(POINTS)}={rng.randint(1, 4)}"
        run = job.launch(*args, env={"CSV_TO_KAFKA_FAILPOINTS": point})
        code = run.wait(300)
        oracle.ran(code)
        assert code == -signal.SIGKILL, (
            f"kill {kill + 1} ({point}): exit {code}, expected a kill (the job has more "
            f"commits than these runs make):\n{run.output()[-3000:]}"
        )
        oracle.injected(f"SIGKILL {point.partition('=')[0]}")
        oracle.after_fault(f"after kill {kill + 1} ({point})")
    # Random instants: each after a new commit, 0-0.5 s later. A run that ends first (a fast
    # machine) ends the loop: the kills so far are judged all the same.
    for kill in range(profile.pick(ci=1, torture=20)):
        last = oracle.checkpoints.observe()
        done = last.total_sent if last is not None else 0
        run = job.launch(*args)
        while run.poll() is None:
            now = oracle.checkpoints.observe()
            if now is not None and now.total_sent > done:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0, 0.5))
        if run.poll() is not None:
            oracle.ran(run.wait(10))
            break
        oracle.ran(run.kill9())
        oracle.injected("kill -9 at a random instant")
        oracle.after_fault(f"after random kill {kill + 1}")
    if oracle.exit_codes[-1] != 0:
        run = job.launch(*args)
        code = run.wait(600)
        oracle.ran(code)
        assert code == 0, run.output()[-3000:]
        assert f"{len(oracle.expected.bad)} BAD ROWS" in run.output(), run.output()[-3000:]
    oracle.finish()
