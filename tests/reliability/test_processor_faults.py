"""Faults of the processor itself: kill -9 (1), kills at named points (2), SIGTERM (3), a Spot
notice (4) and a zombie instance (9). Each ends with the oracle."""

from __future__ import annotations

import random
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ROWS, Profile, clients
from .faults import ROOT, ControlledProcess, FaultJob, Run, complete, wait_rows
from .oracle import Oracle, end_offset, read_partition
from .spot import RECLAIM_SECONDS, Reclaimer

USER_DATA = ROOT / "option3-ec2-spot" / "user-data.sh"


@pytest.mark.parametrize("client", clients(ci="confluent"))
def test_kill_9_at_20_percent_steps(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    profile: Profile,
    seed: int,
    client: str,
) -> None:
    """Fault 1: kill -9 once each run has committed at least another 20% of the rows."""
    rng = random.Random(seed)
    job = fault_job(client)
    oracle = watch(job, "1 processor kill -9", seed=seed)
    for step in range(1, profile.pick(ci=1, torture=3) + 1):
        run = job.launch("--checkpoint-every", "500")
        target = ROWS * step // 5 + rng.randrange(1000)
        ended = wait_rows(oracle.checkpoints, run, target)
        assert ended is None, f"the run ended ({ended}) before {target} rows:\n{run.output()}"
        assert run.kill9() == -signal.SIGKILL
        oracle.injected("kill -9 at >= 20% steps")
        oracle.ran(-signal.SIGKILL)
    complete(job, oracle, "--checkpoint-every", "500")
    oracle.finish()


@pytest.mark.parametrize("client", clients(ci="kafka-python"))
def test_kill_9_at_random_instants(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    profile: Profile,
    seed: int,
    client: str,
) -> None:
    """Fault 1: kill -9 at seeded random instants, from start-up to commit; then a rerun."""
    rng = random.Random(seed)
    instants = profile.pick(ci=3, torture=20)
    # Enough rows that the last kill still lands before the end: a run can live 2.5 s, and the
    # copy's 200,000+ rows/s made three runs finish 200,000 rows once (seed 963894013).
    job = fault_job(client, rows=ROWS * profile.pick(ci=3, torture=10))
    oracle = watch(job, "1 processor kill -9", seed=seed)
    for _ in range(instants):
        every = rng.choice(["100", "500", "2000"])
        run = job.launch("--checkpoint-every", every)
        time.sleep(rng.uniform(0.2, 2.5))
        if run.poll() is not None:
            oracle.ran(run.wait(10))
            break
        assert run.kill9() == -signal.SIGKILL
        oracle.injected("kill -9 at a random instant")
        oracle.ran(-signal.SIGKILL)
    assert oracle.injections["kill -9 at a random instant"] == instants, (
        f"the job completed after {oracle.injections} kills (seed {seed}); make the CSV larger"
    )
    complete(job, oracle, "--checkpoint-every", "500")
    oracle.finish()


NAMED_POINTS = [
    pytest.param("after-commit", "confluent", id="after-commit-confluent"),
    pytest.param("after-checkpoint", "kafka-python", id="after-checkpoint-kafka-python"),
    pytest.param("in-transaction", "confluent", id="in-transaction-confluent"),
    pytest.param(
        "after-commit", "kafka-python", id="after-commit-kafka-python", marks=pytest.mark.torture
    ),
    pytest.param(
        "after-checkpoint", "confluent", id="after-checkpoint-confluent", marks=pytest.mark.torture
    ),
    pytest.param(
        "in-transaction",
        "kafka-python",
        id="in-transaction-kafka-python",
        marks=pytest.mark.torture,
    ),
]


@pytest.mark.parametrize(("point", "client"), NAMED_POINTS)
def test_kill_at_a_named_point(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    profile: Profile,
    seed: int,
    point: str,
    client: str,
) -> None:
    """Fault 2: SIGKILL after a Kafka commit and before the DynamoDB write (after-commit),
    after the DynamoDB write (after-checkpoint), or with records sent and not committed
    (in-transaction), at a seeded transaction count; each crashed run resumes where Kafka says."""
    rng = random.Random(seed)
    job = fault_job(client)
    oracle = watch(job, "2 kill at a named point", seed=seed)
    for _ in range(profile.pick(ci=1, torture=3)):
        nth = rng.randrange(2, 40)
        run = job.launch(
            "--checkpoint-every", "1000", env={"CSV_TO_KAFKA_FAILPOINTS": f"{point}={nth}"}
        )
        before = oracle.checkpoints.observe()
        code = run.wait(300)
        oracle.ran(code)
        assert code == -signal.SIGKILL, f"{point}={nth} did not kill the run:\n{run.output()}"
        oracle.injected(f"SIGKILL {point}")
        after = oracle.checkpoints.observe()
        if before is not None and after is not None:
            assert after.total_sent >= before.total_sent
    complete(job, oracle, "--checkpoint-every", "1000")
    oracle.finish()


@pytest.mark.parametrize("client", clients(ci="kafka-python"))
def test_sigterm_at_20_percent_steps(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    profile: Profile,
    seed: int,
    client: str,
) -> None:
    """Fault 3: SIGTERM once each run has committed another 20%: exit 143 within 30 s with an
    INTERRUPTED checkpoint at the last commit; the restart completes."""
    rng = random.Random(seed)
    job = fault_job(client)
    oracle = watch(job, "3 SIGTERM", seed=seed)
    for step in range(1, profile.pick(ci=1, torture=3) + 1):
        run = job.launch("--checkpoint-every", "1000")
        target = ROWS * step // 5 + rng.randrange(1000)
        ended = wait_rows(oracle.checkpoints, run, target)
        assert ended is None, f"the run ended ({ended}) before {target} rows:\n{run.output()}"
        sent = time.monotonic()
        run.signal(signal.SIGTERM)
        code = run.wait(60)
        took = time.monotonic() - sent
        oracle.injected("SIGTERM at >= 20% steps")
        oracle.ran(code)
        assert code == 143, f"SIGTERM: exit {code}:\n{run.output()[-3000:]}"
        assert took < 30, f"SIGTERM took {took:.1f}s"
        checkpoint = oracle.checkpoints.observe()
        assert checkpoint is not None
        assert checkpoint.status == "INTERRUPTED"
        committed = len(read_partition(job.bootstrap, job.topic))
        assert checkpoint.total_sent == committed, "the checkpoint is not at the last commit"
        assert 0 < committed < ROWS
        oracle.extra.setdefault("sigterm_seconds", []).append(round(took, 2))
    complete(job, oracle, "--checkpoint-every", "1000")
    oracle.finish()


@pytest.mark.parametrize("client", clients(ci="confluent"))
def test_spot_interruption_notice(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    tmp_path: Path,
    seed: int,
    client: str,
) -> None:
    """Fault 4: option3-ec2-spot/user-data.sh runs the processor and watches IMDSv2 (the stub);
    spot/instance-action flips from 404 to a notice; the watcher sends SIGTERM; EC2 would
    SIGKILL 120 s later. The processor drains (exit 143) well before that; a rerun completes."""
    if not USER_DATA.exists():
        pytest.skip(f"no {USER_DATA.relative_to(ROOT)}: the Spot watcher is not there to test")
    # Rows enough that the copy is still running when the watcher's next poll sees the notice.
    job = fault_job(client, rows=3 * ROWS)
    oracle = watch(job, "4 Spot interruption notice", seed=seed)
    imds = ControlledProcess("imds_stub.py", log=tmp_path / "imds.log")
    try:
        env = job.process_env(
            {
                "SPOT_JOB_IMDS": imds.address,
                "SPOT_JOB_PROCESSOR": f"{sys.executable} -m csv_to_kafka.cli",
                "SPOT_JOB_SHUTDOWN": "true",
                "SPOT_JOB_POLL_SECONDS": "0.5",
                "SPOT_JOB_ATTEMPTS": "1",
                "CSV_TO_KAFKA_SOURCE": job.source,
                "CSV_TO_KAFKA_TOPIC": job.topic,
                "CSV_TO_KAFKA_BOOTSTRAP_SERVERS": job.bootstrap,
                "CSV_TO_KAFKA_JOB_ID": job.job_id,
                "CSV_TO_KAFKA_CHECKPOINT_TABLE": job.table,
                "CSV_TO_KAFKA_CHECKPOINT_EVERY": "1000",
                "CSV_TO_KAFKA_KAFKA_CLIENT": client,
                "CSV_TO_KAFKA_PROGRESS": "json",
            }
        )
        instance = Run(["bash", str(USER_DATA)], env, tmp_path / "user-data.log", session=True)
        job.runs.append(instance)
        ended = wait_rows(oracle.checkpoints, instance, 40_000)
        assert ended is None, f"the run ended ({ended}) before the notice:\n{instance.output()}"
        imds.command("notice terminate")
        notice_at = time.monotonic()
        oracle.injected("Spot notice (IMDSv2 stub, user-data.sh watcher)")
        ec2 = Reclaimer(instance, notice_at)
        code = instance.wait(RECLAIM_SECONDS + 30)
        ec2.join(30)
        oracle.ran(code)
        assert not ec2.reclaimed, "the processor was still running 120 s after the notice"
        assert code == 143, f"exit {code}:\n{instance.output()[-3000:]}"
        assert instance.ended is not None
        drained = instance.ended - notice_at
        assert drained < 30, f"draining took {drained:.1f}s of the 120 s notice"
        oracle.extra["drain_seconds"] = round(drained, 2)
        assert "Spot interruption notice" in instance.output()
        requests = imds.command("stats")["requests"]
        assert any("api/token 200" in key for key in requests), requests
    finally:
        imds.close()
    checkpoint = oracle.checkpoints.observe()
    assert checkpoint is not None
    assert checkpoint.status == "INTERRUPTED"
    complete(job, oracle, "--checkpoint-every", "1000")
    oracle.finish()


ZOMBIES = [
    pytest.param("confluent", 0, id="confluent"),
    pytest.param("kafka-python", 0, id="kafka-python", marks=pytest.mark.torture),
    # Stopped for longer than transaction.timeout.ms (60 s): the broker has aborted its
    # transaction and bumped the epoch by the time it wakes up.
    pytest.param(
        "confluent",
        70,
        id="confluent-past-txn-timeout",
        marks=pytest.mark.torture,
    ),
    pytest.param("kafka-python", 70, id="kafka-python-past-txn-timeout", marks=pytest.mark.torture),
]


@pytest.mark.parametrize(("client", "asleep"), ZOMBIES)
def test_zombie_is_fenced(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    seed: int,
    client: str,
    asleep: float,
) -> None:
    """Fault 9: SIGSTOP a running processor, run a second instance of the job to the end, then
    SIGCONT the first: it is fenced, writes nothing, exits non-zero; the checkpoint stays at
    the end."""
    job = fault_job(client)
    oracle = watch(job, "9 zombie instance", seed=seed)
    first = job.launch("--checkpoint-every", "500")
    ended = wait_rows(oracle.checkpoints, first, ROWS // 5)
    assert ended is None, f"the first instance ended ({ended}) early:\n{first.output()}"
    first.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    oracle.injected("SIGSTOP, rival instance, SIGCONT")
    second = job.launch("--checkpoint-every", "500")
    code = second.wait(300)
    oracle.ran(code)
    assert code == 0, f"the second instance exited {code}:\n{second.output()[-3000:]}"
    time.sleep(max(0.0, asleep - (time.monotonic() - stopped_at)))
    log_end = end_offset(job.bootstrap, job.topic)
    at_end = oracle.checkpoints.observe()
    assert at_end is not None
    assert at_end.status == "COMPLETED"

    first.signal(signal.SIGCONT)
    zombie = first.wait(300)
    oracle.ran(zombie)

    assert end_offset(job.bootstrap, job.topic) == log_end, "the zombie wrote to the partition"
    assert zombie != 0, f"the zombie exited 0 instead of being fenced:\n{first.output()[-3000:]}"
    assert zombie == 4, f"the zombie exited {zombie}:\n{first.output()[-3000:]}"
    after = oracle.checkpoints.observe()
    assert after is not None
    assert (after.status, after.total_sent) == ("COMPLETED", at_end.total_sent)
    oracle.finish()
