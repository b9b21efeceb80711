"""Fault 11: a soak. For a fixed time (30 s in the CI subset, 300 s in the full run, three
seeds), random faults from 1 (processor kill -9), 5 (broker hard bounce), 7 (broker paused) and
8 (lost acknowledgements through the TCP proxy) hit a stream of copy jobs; the processor is
restarted whenever it exits. Each job that completes is judged by the oracle on the spot, and
the last one after the faults stop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from .conftest import Profile
from .faults import Broker, ControlledProcess, FaultJob, Run, complete
from .oracle import Oracle

FAULTS = ("kill -9", "broker hard bounce", "broker paused", "lost acks")
LOST_ACKS = (
    "set apis=produce,end_txn,add_partitions_to_txn drop=0.05 drop_reset_ms=300 delay=0.05 "
    "delay_ms=200-2000 reset=0.002"
)

SOAKS = [
    pytest.param(0, "confluent", id="seed0-confluent"),
    pytest.param(1, "kafka-python", id="seed1-kafka-python", marks=pytest.mark.torture),
    pytest.param(2, "confluent", id="seed2-confluent", marks=pytest.mark.torture),
]


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("nth", "client"), SOAKS)
def test_soak(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    broker: Broker,
    kafka_proxy: ControlledProcess,
    profile: Profile,
    seed: int,
    nth: int,
    client: str,
) -> None:
    soak_seed = seed + nth
    print(f"soak seed {soak_seed}")
    rng = random.Random(soak_seed)
    duration = profile.pick(ci=30, torture=300)
    deadline = time.monotonic() + duration
    args = ("--checkpoint-every", "500")
    judged = 0

    def new_job() -> tuple[FaultJob, Oracle, Run]:
        job = fault_job(client, kafka_via=kafka_proxy.address)
        oracle = watch(job, "11 soak (1, 5, 7, 8 at random)", seed=soak_seed)
        return job, oracle, job.launch(*args)

    job, oracle, run = new_job()
    faults_before = 0
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 4))
        code = run.poll()
        if code is not None:
            oracle.ran(code)
            assert code in (0, 4), f"exit {code} (soak seed {soak_seed}):\n{run.output()[-3000:]}"
            if code == 0:
                oracle.finish()
                judged += 1
                job, oracle, run = new_job()
            else:
                run = job.launch(*args)
            continue
        fault = rng.choice(FAULTS)
        if fault != "lost acks":
            oracle.injected(fault)
        if fault == "kill -9":
            oracle.ran(run.kill9())
            run = job.launch(*args)
        elif fault == "broker hard bounce":
            broker.kill()
            time.sleep(rng.uniform(0, 3))
            broker.up()
        elif fault == "broker paused":
            broker.pause()
            time.sleep(rng.uniform(2, 20))
            broker.resume()
        else:
            kafka_proxy.command(LOST_ACKS)
            time.sleep(rng.uniform(2, 8))
            kafka_proxy.command("clear")
            faults = kafka_proxy.command("stats")["faults_total"]
            oracle.injected("lost acks: responses dropped, delayed, reset", faults - faults_before)
            faults_before = faults
    # The faults stop; the job in flight is run to its end and judged.
    kafka_proxy.command("clear")
    broker.ensure_up()
    code = run.wait(600)
    oracle.ran(code)
    assert code in (0, 4), f"exit {code} (soak seed {soak_seed}):\n{run.output()[-3000:]}"
    if code != 0:
        complete(job, oracle, *args)
    oracle.extra["soak_seconds"] = duration
    oracle.finish()
    judged += 1
    print(f"soak seed {soak_seed}: {judged} jobs judged")
