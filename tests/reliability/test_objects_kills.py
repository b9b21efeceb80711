"""Fault 14: a job over a prefix killed -9 again and again (issue 13), judged by the oracle: a
multi-member gzip, a multi-frame zstd, a plain object, a gzip named .csv and a _SUCCESS marker,
both clients. Each run dies at a point drawn from the seed: inside a transaction (records sent,
not committed), right after a Kafka commit (the checkpoint not yet written) or right after a
checkpoint, at its 1st to 4th such point. The kills are the product's own failpoints, so where
they land does not depend on the machine's speed; the job needs more commits than the runs can
make, so every one of them lands. After each kill the committed records are exactly the first
rows of the objects in job order (``Oracle.after_fault``), a read_committed consumer sees only
such a prefix all along, and the last run makes them all of it; a rerun adds nothing. The CI
subset has a short round with one client; the full torture run the long one with both."""

from __future__ import annotations

import random
import signal
import uuid
from collections.abc import Callable

import pytest
import zstandard

from tests.integration.conftest import Job, make_csv
from tests.integration.test_objects import Prefix, _gzip_members

from .conftest import Profile, clients
from .oracle import Expected, Oracle

# Kills, and rows per object: 20,000 rows, about 67 transactions of 300, for 12 runs that
# make at most 48; in the CI subset 6,000 rows, 20 transactions, for 3 runs that make 12.
KILLS = (3, 12)
ROWS = (1_500, 5_000)
EVERY = 300
POINTS = ("in-transaction", "after-commit", "after-checkpoint")


def _zstd_frames(data: bytes, parts: int) -> bytes:
    step = len(data) // parts + 1
    packer = zstandard.ZstdCompressor(level=3)
    return b"".join(packer.compress(data[i : i + step]) for i in range(0, len(data), step))


@pytest.mark.parametrize("client", clients(ci="kafka-python"))
def test_a_prefix_job_killed_9_again_and_again_is_exact(
    stack: dict[str, str],
    bucket: str,
    watch: Callable[..., Oracle],
    profile: Profile,
    client: str,
    seed: int,
) -> None:
    kills, rows = profile.pick(ci=KILLS[0], torture=KILLS[1]), profile.pick(*ROWS)
    job = Job(env=stack, client=client, bucket=bucket, key=f"{uuid.uuid4()}/")
    prefix = Prefix(job)
    texts = [make_csv(rows, seed=n) for n in range(4)]
    prefix.put("part-0000.csv.gz", _gzip_members(texts[0], 4), texts[0])
    prefix.put("part-0001.csv.zst", _zstd_frames(texts[1], 5), texts[1])
    prefix.put("part-0002.csv", texts[2])
    prefix.put("part-0003.csv", _gzip_members(texts[3], 1), texts[3])
    prefix.put("_SUCCESS", b"", data=False)
    expected = Expected.of_objects([(text, prefix.uri(key)) for key, text in prefix.parts])
    assert expected.objects == 4
    oracle = watch(job, "14 many objects: kill -9", seed=seed, expected=expected)
    rng = random.Random(seed)
    for kill in range(1, kills + 1):
        point = f"{rng.choice(POINTS)}={rng.randint(1, 4)}"
        run = job.run("--checkpoint-every", str(EVERY), env={"CSV_TO_KAFKA_FAILPOINTS": point})
        oracle.ran(run.returncode)
        assert run.returncode == -signal.SIGKILL, (
            f"kill {kill} ({point}): exit {run.returncode}, expected a kill (the job needs more "
            f"commits than {kills} runs make):\n{run.stderr[-3000:]}"
        )
        oracle.injected(f"SIGKILL {point.partition('=')[0]}")
        committed, _letters = oracle.after_fault(f"after kill {kill} ({point})")
    assert committed < len(expected)
    done = job.run("--checkpoint-every", str(EVERY))
    oracle.ran(done.returncode)
    assert done.returncode == 0, done.stderr[-3000:]
    again = job.run()
    oracle.ran(again.returncode)
    assert again.returncode == 0, again.stderr[-3000:]
    verified = job.verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    oracle.finish()
