"""Compressed objects (issue 13): gzip, zstd and bzip2, found by their first bytes whatever
their name; multi-member and multi-frame objects read to their end; a kill -9 inside one, then
a rerun, leaves the topic exact; a truncated or corrupt one is bad input after its good rows."""

from __future__ import annotations

import bz2
import gzip
import re
import signal
import subprocess
import zlib

import boto3
import pytest
import zstandard

from .conftest import Job, expected_records, make_csv


def _gzip_members(data: bytes, parts: int) -> bytes:
    """``data`` as ``parts`` gzip members, cut at arbitrary bytes (as pigz and bgzip do)."""
    step = len(data) // parts + 1
    pieces = [data[i : i + step] for i in range(0, len(data), step)]
    return b"".join(gzip.compress(piece, 6, mtime=0) for piece in pieces)


def _zstd_frames(data: bytes, parts: int) -> bytes:
    step = len(data) // parts + 1
    z = zstandard.ZstdCompressor(level=3)
    return b"".join(z.compress(data[i : i + step]) for i in range(0, len(data), step))


ENCODERS = {
    "gzip": lambda data: gzip.compress(data, 6, mtime=0),
    "gzip-7-members": lambda data: _gzip_members(data, 7),
    "zstd-5-frames": lambda data: _zstd_frames(data, 5),
    "bzip2-2-streams": lambda data: (
        bz2.compress(data[: len(data) // 2]) + bz2.compress(data[len(data) // 2 :])
    ),
}


def _check(job: Job, *extra: str) -> subprocess.CompletedProcess[str]:
    return job.command("check", *extra)


@pytest.mark.parametrize("codec", list(ENCODERS))
def test_a_compressed_object_named_csv_is_copied_exactly(job: Job, codec: str) -> None:
    plain = make_csv(20_000)
    job.put(ENCODERS[codec](plain))
    job.data = plain  # the oracle reads the decoded rows

    result = job.run("--checkpoint-every", "3000")

    assert result.returncode == 0, result.stderr
    job.assert_exact()
    assert job.records()[-1]["_source_line"] == job.expected()[-1]["_source_line"]
    # Progress is in the stored bytes: the object's size at the end, never past it.
    cp = job.checkpoint()
    assert cp is not None
    assert int(cp["byte_offset"]) == int(cp["total_bytes"]) == len(ENCODERS[codec](plain))
    assert job.verify().returncode == 0
    checked = _check(job)
    assert checked.returncode == 0, checked.stderr
    assert "20,000 rows" in checked.stdout


@pytest.mark.parametrize("client", ["confluent"])
def test_input_compression_none_reads_the_stored_bytes(job: Job) -> None:
    job.put(gzip.compress(make_csv(100), mtime=0))

    result = job.run("--input-compression", "none")

    assert result.returncode == 3, result.stderr
    assert "not valid utf-8" in result.stderr


@pytest.mark.parametrize("codec", ["gzip", "gzip-7-members"])
@pytest.mark.parametrize("point", ["after-commit", "in-transaction"])
def test_kill_9_inside_a_compressed_object_then_rerun(job: Job, codec: str, point: str) -> None:
    plain = make_csv(30_000)
    job.put(ENCODERS[codec](plain))
    job.data = plain

    # Past the second of the 7 members: after 6 commits of 2000 rows, or inside the 7th (a
    # batch is 1000 rows: in-transaction fires twice per transaction).
    count = 6 if point == "after-commit" else 13
    crashed = job.run(
        "--checkpoint-every", "2000", env={"CSV_TO_KAFKA_FAILPOINTS": f"{point}={count}"}
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    final = job.run("--checkpoint-every", "2000")

    assert final.returncode == 0, final.stderr
    assert "resuming at row" in final.stderr
    # Of the multi-member object, only from the member that holds the resume point.
    assert ("decoding from compressed byte" in final.stderr) == (codec != "gzip")
    job.assert_exact()
    again = job.run()
    assert again.returncode == 0, again.stderr
    job.assert_exact()


def _decoded_prefix(stored: bytes) -> bytes:
    """What a gzip decoder gets out of a truncated object before it stops."""
    out = []
    d = zlib.decompressobj(wbits=31)
    data = stored
    while data:
        out.append(d.decompress(data))
        if not d.eof:
            break
        data = d.unused_data
        d = zlib.decompressobj(wbits=31)
    return b"".join(out)


def _assert_prefix(job: Job, decoded: bytes, plain: bytes) -> None:
    """Committed: every row that ends before the last newline decoded, in order, once; none of
    the rest."""
    got = job.records()
    want = expected_records(plain, job.source)
    assert got == want[: len(got)]
    # Every row that starts two lines before the last newline decoded (a row of make_csv spans
    # at most two lines) was committed.
    assert got
    assert got[-1]["_source_line"] >= decoded.count(b"\n") - 2


@pytest.mark.parametrize("members", [1, 4])
def test_a_truncated_gzip_stops_after_its_good_rows(job: Job, members: int) -> None:
    plain = make_csv(20_000)
    stored = _gzip_members(plain, members)
    cut = len(stored) * 3 // 4
    job.put(stored[:cut])

    result = job.run("--checkpoint-every", "1000")

    assert result.returncode == 3, result.stderr
    assert job.source in result.stderr
    assert "truncated" in result.stderr
    assert f"the object ends at compressed byte {cut}" in result.stderr
    assert "Traceback" not in result.stderr
    _assert_prefix(job, _decoded_prefix(stored[:cut]), plain)
    cp = job.checkpoint()
    assert cp is not None
    assert cp["status"] == "FAILED"
    rows = len(job.records())
    again = job.run()
    assert again.returncode == 3
    assert len(job.records()) == rows


def test_a_corrupt_zstd_frame_stops_after_the_frames_before_it(job: Job) -> None:
    plain = make_csv(20_000)
    step = len(plain) // 4 + 1
    z = zstandard.ZstdCompressor(level=3, write_checksum=True)
    frames = [z.compress(plain[i : i + step]) for i in range(0, len(plain), step)]
    broken = bytearray(frames[2])
    broken[len(broken) // 2] ^= 0xFF
    broken[len(broken) // 2 + 1] ^= 0x5A
    frames[2] = bytes(broken)
    start = len(frames[0]) + len(frames[1])
    job.put(b"".join(frames))

    result = job.run("--checkpoint-every", "1000")

    assert result.returncode == 3, result.stderr
    assert f"byte offset {start}" in result.stderr
    assert f"the zstd frame that starts at compressed byte {start} is corrupt" in result.stderr
    got = job.records()
    want = expected_records(plain, job.source)
    assert got == want[: len(got)]
    # At least every row of the two good frames (less one cut by the frame's edge).
    assert got[-1]["_source_line"] >= plain[: 2 * step].count(b"\n") - 2


def test_a_job_must_keep_its_input_compression(job: Job) -> None:
    plain = make_csv(20_000)
    job.put(_gzip_members(plain, 3))
    job.data = plain
    failpoint = {"CSV_TO_KAFKA_FAILPOINTS": "after-commit=5"}
    crashed = job.run("--checkpoint-every", "2000", env=failpoint)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    switched = job.run("--input-compression", "none")

    assert switched.returncode == 2, switched.stderr
    assert "a job must keep its --input-compression" in switched.stderr
    final = job.run()
    assert final.returncode == 0, final.stderr
    job.assert_exact()


def test_an_object_uploaded_with_content_encoding_gzip_is_decoded_once(job: Job) -> None:
    """``aws s3 cp --content-encoding gzip``: S3 serves the stored gzip bytes, whatever the
    header, and the SDK does not decode them: the copy decodes them once, also when it resumes
    inside with a ranged GET from a member."""
    plain = make_csv(20_000)
    boto3.client("s3").put_object(
        Bucket=job.bucket,
        Key=job.key,
        Body=_gzip_members(plain, 7),
        ContentEncoding="gzip",
        ContentType="text/csv",
    )
    job.data = plain
    crashed = job.run(
        "--checkpoint-every", "3000", env={"CSV_TO_KAFKA_FAILPOINTS": "after-commit=3"}
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert 0 < len(job.records()) < 20_000
    done = job.run("--checkpoint-every", "3000")
    assert done.returncode == 0, done.stderr
    job.assert_exact()
    assert job.verify().returncode == 0
    checked = _check(job)
    assert checked.returncode == 0, checked.stderr
    assert "20,000 rows" in checked.stdout


def _pieces(codec: str, data: bytes, parts: int) -> list[bytes]:
    """``data`` in ``parts`` gzip members, zstd frames or bzip2 streams, each stored apart."""
    step = len(data) // parts + 1
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    if codec == "gzip":
        return [gzip.compress(chunk, 6, mtime=0) for chunk in chunks]
    if codec == "zstd":
        z = zstandard.ZstdCompressor(level=3)
        return [z.compress(chunk) for chunk in chunks]
    return [bz2.compress(chunk) for chunk in chunks]


_PART = {"gzip": "member", "zstd": "frame", "bzip2": "stream"}


@pytest.mark.parametrize("codec", list(_PART))
def test_a_compressed_object_truncated_in_its_last_member_stops_a_resumed_run(
    job: Job, codec: str
) -> None:
    """Killed after 3 commits (inside member 2 of 5), then resumed from that member's start:
    the resumed run reads on to the last member, cut in its middle, and is exit 3 naming the
    object, the compressed byte where that member starts and where the object ends; every row
    before the cut is in the topic once, in order; a rerun adds nothing and says the same."""
    plain = make_csv(20_000)
    pieces = _pieces(codec, plain, 5)
    last = sum(len(piece) for piece in pieces[:-1])  # where the last member starts
    cut = last + len(pieces[-1]) // 2
    stored = b"".join(pieces)[:cut]
    job.put(stored)
    crashed = job.run(
        "--checkpoint-every", "2000", env={"CSV_TO_KAFKA_FAILPOINTS": "after-commit=3"}
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    rows = len(job.records())  # 3 transactions of about 2,000 rows (a batch ends with a block)
    assert 4000 < rows < 8000, rows

    resumed = job.run("--checkpoint-every", "2000")

    assert resumed.returncode == 3, resumed.stderr[-3000:]
    at = re.search(rf"resuming at row {rows}, line \d+, byte (\d+) of", resumed.stderr)
    assert at is not None, resumed.stderr[-3000:]
    # From the start of the member that holds the resume point (the 2nd: not a whole re-read).
    step = len(plain) // 5 + 1  # the decoded bytes of a member (_pieces)
    member = int(at.group(1)) // step
    assert member >= 1
    start = sum(len(piece) for piece in pieces[:member])
    assert f"decoding from compressed byte {start}," in resumed.stderr, resumed.stderr[-3000:]
    broke = (
        f"the {codec} {_PART[codec]} that starts at compressed byte {last} is truncated: "
        f"the object ends at compressed byte {cut}, inside it"
    )
    assert broke in resumed.stderr, resumed.stderr[-3000:]
    assert job.source in resumed.stderr
    assert f"byte offset {last}: {broke}" in resumed.stderr
    assert "Traceback" not in resumed.stderr
    decoded = b"".join(
        {
            "gzip": gzip.decompress,
            "zstd": zstandard.ZstdDecompressor().decompress,
            "bzip2": bz2.decompress,
        }[codec](piece)
        for piece in pieces[:-1]
    )
    _assert_prefix(job, decoded, plain)
    cp = job.checkpoint()
    assert cp is not None
    assert cp["status"] == "FAILED"
    rows = len(job.records())
    assert rows > 8000  # the resumed run committed on, up to the cut
    again = job.run("--checkpoint-every", "2000")
    assert again.returncode == 3, again.stderr[-3000:]
    assert broke in again.stderr
    assert len(job.records()) == rows
