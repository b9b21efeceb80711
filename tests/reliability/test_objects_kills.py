"""A job over a prefix killed -9 again and again (issue 13), the full torture run only: a
multi-member gzip, a multi-frame zstd, a plain object, a gzip named .csv and a _SUCCESS marker,
both clients. Each run dies at a point drawn from the seed: inside a transaction (records sent,
not committed), right after a Kafka commit (the checkpoint not yet written) or right after a
checkpoint, at its 1st to 4th such point. The kills are the product's own failpoints, so where
they land does not depend on the machine's speed; the job needs more commits than the runs can
make, so every one of them lands. After each kill the committed records are exactly the first
rows of the concatenation, and the last run makes them all of it; a rerun adds nothing."""

from __future__ import annotations

import random
import signal
import uuid

import pytest
import zstandard

from tests.integration.conftest import Job, make_csv
from tests.integration.test_objects import Prefix, _gzip_members

from .conftest import CLIENTS

KILLS = 12
ROWS = 5_000  # per object: 20,000 rows, about 67 transactions of 300; 12 runs make at most 48
EVERY = 300
POINTS = ("in-transaction", "after-commit", "after-checkpoint")


def _zstd_frames(data: bytes, parts: int) -> bytes:
    step = len(data) // parts + 1
    packer = zstandard.ZstdCompressor(level=3)
    return b"".join(packer.compress(data[i : i + step]) for i in range(0, len(data), step))


@pytest.mark.torture
@pytest.mark.parametrize("client", CLIENTS)
def test_a_prefix_job_killed_9_again_and_again_is_exact(
    stack: dict[str, str], bucket: str, client: str, seed: int
) -> None:
    job = Job(env=stack, client=client, bucket=bucket, key=f"{uuid.uuid4()}/")
    prefix = Prefix(job)
    texts = [make_csv(ROWS, seed=n) for n in range(4)]
    prefix.put("part-0000.csv.gz", _gzip_members(texts[0], 4), texts[0])
    prefix.put("part-0001.csv.zst", _zstd_frames(texts[1], 5), texts[1])
    prefix.put("part-0002.csv", texts[2])
    prefix.put("part-0003.csv", _gzip_members(texts[3], 1), texts[3])
    prefix.put("_SUCCESS", b"", data=False)
    want = prefix.expected()
    rng = random.Random(seed)
    for kill in range(1, KILLS + 1):
        point = f"{rng.choice(POINTS)}={rng.randint(1, 4)}"
        run = job.run("--checkpoint-every", str(EVERY), env={"CSV_TO_KAFKA_FAILPOINTS": point})
        assert run.returncode == -signal.SIGKILL, (
            f"kill {kill} ({point}): exit {run.returncode}, expected a kill (the job needs more "
            f"commits than {KILLS} runs make):\n{run.stderr[-3000:]}"
        )
        got = job.records()
        assert got == want[: len(got)], (
            f"after kill {kill} ({point}): the {len(got)} committed records are not the first "
            f"{len(got)} rows of the objects"
        )
    assert len(job.records()) < len(want)
    done = job.run("--checkpoint-every", str(EVERY))
    assert done.returncode == 0, done.stderr[-3000:]
    prefix.assert_exact()
    again = job.run()
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(job.records()) == len(want)
    verified = job.verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr
