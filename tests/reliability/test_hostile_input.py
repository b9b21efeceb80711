"""Fault 12: hostile input. Every file of the corpus (tests/data/hostile, written by its
make_corpus.py, with the documented outcome of each in manifest.json) and the big cases
generated here (a 50 MB field, a 1 GB line, 10,000 columns) get the documented outcome: exit 3
with the line and byte offset, every row before the bad one committed and nothing from it on
sent; or a correct copy. Memory stays bounded: no object is read whole."""

from __future__ import annotations

import bz2
import json
import signal
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import boto3
import orjson
import pytest
import zstandard
from confluent_kafka import KafkaError, TopicPartition

from tests.unit.test_rejects import OTHER_FATAL, ROW_LEVEL

from .conftest import Profile, clients
from .faults import ROOT, FaultJob, Run
from .oracle import Expected, Oracle, _consumer, read_partition

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

CORPUS = ROOT / "tests" / "data" / "hostile"
MANIFEST: dict[str, dict[str, Any]] = json.loads((CORPUS / "manifest.json").read_text())
# The processor's peak resident memory, whatever the object: it streams, never reads it whole.
MAX_RSS_MB = 256


def _check_outcome(job: FaultJob, oracle: Oracle, run: Run, case: dict[str, Any]) -> None:
    code = run.wait(300)
    oracle.ran(code)
    out = run.output()
    assert run.max_rss_kb is not None
    rss_mb = run.max_rss_kb / 1024
    oracle.extra["max_rss_mb"] = round(rss_mb)
    assert rss_mb < MAX_RSS_MB, f"{case['why']}: the processor peaked at {rss_mb:.0f} MB"
    if case["outcome"] == "copy":
        assert code == 0, f"{case['why']}: exit {code}:\n{out[-3000:]}"
        oracle.finish()
        return
    assert code == 3, f"{case['why']}: exit {code}, expected 3:\n{out[-3000:]}"
    assert case["message"] in out, out[-3000:]
    if case.get("names_line", True):  # a decoder's error names the compressed offset only
        assert f"line {case['line']}," in out or f"line {case['line']}:" in out, out[-3000:]
    assert f"byte offset {case['offset']}" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    # Nothing from the bad row on was even sent: no record of it, aborted or not, in the log.
    sent = [
        orjson.loads(value)["_source_line"]
        for _offset, value in read_partition(job.bootstrap, job.topic, isolation="read_uncommitted")
    ]
    assert all(line < case["line"] for line in sent), (
        f"records from line {case['line']} on were sent: {[n for n in sent if n >= case['line']]}"
    )
    oracle.extra["message_names"] = f"line {case['line']}, byte offset {case['offset']}"
    oracle.finish(status="FAILED")  # a refused header too: FAILED at 0 rows, with the error


def _decoded(case: dict[str, Any], data: bytes) -> bytes:
    """A compressed file's text, as far as it decodes (by the standard tools, not the product's
    decoder): each gzip member, zstd frame or bzip2 stream in turn, up to one that breaks."""
    if not case.get("compressed"):
        return data
    out: list[bytes] = []
    while data:
        if data.startswith(b"\x1f\x8b"):
            d: Any = zlib.decompressobj(wbits=31)
        elif data.startswith(b"\x28\xb5\x2f\xfd"):
            d = zstandard.ZstdDecompressor().decompressobj()
        elif data.startswith(b"BZh"):
            d = bz2.BZ2Decompressor()
        else:
            break
        try:
            out.append(d.decompress(data))
        except (zlib.error, zstandard.ZstdError, OSError):
            break
        if not d.eof:
            break
        data = d.unused_data
    return b"".join(out)


def _expected(case: dict[str, Any], data: bytes, source: str) -> Expected:
    """The rows that must be committed: all of them, or those before the bad row."""
    fmt = case.get("fmt", {})
    data = _decoded(case, data)
    if case["outcome"] == "copy":
        return Expected(data, source, **fmt)
    if case["line"] > 1:
        return Expected(data[: case["row_start"]], source, **fmt)
    return Expected(None, source)


def _one_file(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    name: str,
    client: str,
    *,
    killed: bool,
) -> str | None:
    """Copy one file of the corpus and judge it; the failure as text, or None."""
    case = MANIFEST[name]
    data = (CORPUS / name).read_bytes()
    try:
        job = fault_job(client, data=data)
        oracle = watch(job, "12 hostile input", expected=_expected(case, data, job.source))
        if killed:
            # One row per transaction, killed after the 2nd commit: the rerun resumes at a byte
            # offset after BOMs, CRLFs, quoted newlines, multi-byte text.
            args = ("--checkpoint-every", "1", *case.get("args", []))
            crashed = job.launch(*args, env={"CSV_TO_KAFKA_FAILPOINTS": "after-commit=2"})
            code = crashed.wait(120)
            oracle.ran(code)
            assert code == -signal.SIGKILL, crashed.output()
            oracle.injected(f"kill after the 2nd commit: {name}")
        else:
            # Small transactions, so that a bad row meets rows already committed before it.
            args = ("--checkpoint-every", "7", *case.get("args", []))
            oracle.injected(f"{case['outcome']}: {name}")
        _check_outcome(job, oracle, job.launch(*args, measure_rss=True), case)
    except AssertionError as err:
        return f"{name} ({client}{', killed and resumed' if killed else ''}): {err}"
    return None


# Killed and resumed in the CI subset: the files whose byte offsets are the hardest to resume
# at; in the full run, every valid file with 3 rows or more.
CI_RESUMES = (
    "blank_lines.csv",
    "bom_crlf_quoted.csv",
    "non_ascii.csv",
    "quoted_newlines.csv",
    "gzip_multi_member.csv",
    "zstd_frames.csv",
)
RESUMABLE = [
    name
    for name, case in sorted(MANIFEST.items())
    if case["outcome"] == "copy"
    and len(_expected(case, (CORPUS / name).read_bytes(), "s3://x/y")) >= 3
]


@pytest.mark.parametrize("client", clients(ci="confluent"))
def test_hostile_corpus(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    profile: Profile,
    client: str,
) -> None:
    """Every file of the corpus gets its documented outcome; the valid ones also survive a
    kill. Three files at a time (each run is mostly the processor starting up)."""
    cases = [(name, False) for name in sorted(MANIFEST)]
    cases += [(name, True) for name in profile.pick(ci=CI_RESUMES, torture=RESUMABLE)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(
            pool.map(lambda c: _one_file(fault_job, watch, c[0], client, killed=c[1]), cases)
        )
    failures = [failure for failure in outcomes if failure is not None]
    assert not failures, f"{len(failures)} of {len(cases)} files:\n\n" + "\n\n".join(failures)


def _one_file_under_all(
    fault_job: Callable[..., FaultJob], watch: Callable[..., Oracle], name: str, client: str
) -> str | None:
    """Copy one bad file of the corpus under ``--errors-tolerance all --dlq-topic`` and judge
    both topics; the failure as text, or None."""
    case = MANIFEST[name]
    data = (CORPUS / name).read_bytes()
    try:
        job = fault_job(client, data=data)
        dlq = f"{job.topic}-dlq"
        args = ("--checkpoint-every", "7", "--errors-tolerance", "all", "--dlq-topic", dlq)
        if name in ROW_LEVEL:  # a dead letter, and the copy goes on to the end
            expected = Expected(data, job.source, dead_letters=True)
            assert [(letter.line, letter.source) for letter in expected.letters] == [
                (ROW_LEVEL[name][0], job.source)
            ], f"{name}: the csv module finds other bad rows than the manifest"
            oracle = watch(job, "12 hostile input", expected=expected, dlq_topic=dlq)
            oracle.injected(f"dead letter under all: {name}")
            run = job.launch(*args, measure_rss=True)
            code = run.wait(300)
            oracle.ran(code)
            assert code == 0, f"{case['why']}: exit {code} under all:\n{run.output()[-3000:]}"
            assert "1 BAD ROWS" in run.output(), run.output()[-3000:]
            oracle.finish()
            return None
        # Fatal under all too (the header's, or the parser's place lost): the outcome of the
        # manifest (or OTHER_FATAL's), with no dead letter at all.
        message, line, offset = OTHER_FATAL.get(
            name, (case["message"], case["line"], case["offset"])
        )
        fatal = {**case, "message": message, "line": line, "offset": offset}
        expected = _expected(fatal, data, job.source)
        oracle = watch(job, "12 hostile input", expected=expected, dlq_topic=dlq)
        oracle.injected(f"fatal under all: {name}")
        _check_outcome(job, oracle, job.launch(*args, measure_rss=True), fatal)
    except AssertionError as err:
        return f"{name} ({client}, --errors-tolerance all): {err}"
    return None


@pytest.mark.parametrize("client", clients(ci="kafka-python"))
def test_hostile_corpus_under_errors_tolerance_all(
    fault_job: Callable[..., FaultJob], watch: Callable[..., Oracle], client: str
) -> None:
    """Every file of the corpus that is bad input gets its documented outcome under
    ``--errors-tolerance all`` too (README "Bad rows"): a row-level error is a dead letter and
    the copy goes on, judged on both topics; an error of the header or one that loses the
    parser's place still stops the job (exit 3), every row before it committed and no dead
    letter written."""
    names = sorted(name for name, case in MANIFEST.items() if case["outcome"] == "bad")
    assert set(ROW_LEVEL) <= set(names)
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda n: _one_file_under_all(fault_job, watch, n, client), names))
    failures = [failure for failure in outcomes if failure is not None]
    assert not failures, f"{len(failures)} of {len(names)} files:\n\n" + "\n\n".join(failures)


def test_the_corpus_is_large_enough() -> None:
    files = [path.name for path in CORPUS.iterdir() if path.name in MANIFEST]
    assert len(files) == len(MANIFEST) >= 30
    assert set(CI_RESUMES) <= set(RESUMABLE)


# -- generated: too big to commit ------------------------------------------------------------

PART = 16 * 1024 * 1024


def _put_parts(job: FaultJob, parts: Iterator[bytes]) -> int:
    """Upload an object part by part (multipart), never holding it whole; returns its size."""
    s3 = boto3.client("s3")
    upload = s3.create_multipart_upload(Bucket=job.bucket, Key=job.key)["UploadId"]
    done: list[CompletedPartTypeDef] = []
    size, buffer = 0, bytearray()

    def flush(final: bool) -> None:
        nonlocal buffer
        while len(buffer) >= PART or (final and buffer):
            piece, buffer = bytes(buffer[:PART]), buffer[PART:]
            number = len(done) + 1
            etag = s3.upload_part(
                Bucket=job.bucket, Key=job.key, UploadId=upload, PartNumber=number, Body=piece
            )["ETag"]
            done.append({"ETag": etag, "PartNumber": number})

    for part in parts:
        buffer += part
        size += len(part)
        flush(final=False)
    flush(final=True)
    s3.complete_multipart_upload(
        Bucket=job.bucket, Key=job.key, UploadId=upload, MultipartUpload={"Parts": done}
    )
    return size


def _repeat(byte: bytes, total: int) -> Iterator[bytes]:
    block = byte * PART
    while total > 0:
        yield block[: min(PART, total)]
        total -= PART


BIG_CASES = [
    pytest.param("50 MB field", 50 * 1000 * 1000, True, id="50MB-field"),
    # Uploading 1 GB to moto takes a while: the full run only (CI has the 50 MB field).
    pytest.param("1 GB line", 1000 * 1000 * 1000, False, id="1GB-line", marks=pytest.mark.torture),
]
HEAD = b"id,name,note\n1,first,ok\n"


@pytest.mark.parametrize(("what", "size", "newline_after"), BIG_CASES)
def test_a_huge_row_is_refused_in_bounded_memory(
    fault_job: Callable[..., FaultJob],
    watch: Callable[..., Oracle],
    profile: Profile,
    what: str,
    size: int,
    newline_after: bool,
) -> None:
    """A 50 MB unquoted field (followed by more rows), or a 1 GB line with no newline at all:
    exit 3 at that row (line 3), row 2 committed, and the processor's memory stays bounded."""
    job = fault_job("confluent", data=b"")
    tail = b"\n3,x,y\n" if newline_after else b""
    parts = iter([HEAD + b"2,big,", *_repeat(b"x", size), tail])
    total = _put_parts(job, parts)
    assert total > size
    oracle = watch(job, "12 hostile input", expected=Expected(HEAD, job.source))
    oracle.injected(f"bad: {what} (generated, streamed)")
    try:
        run = job.launch("--checkpoint-every", "1", measure_rss=True)
        case = {
            "outcome": "bad",
            "why": what,
            "line": 3,
            "offset": len(HEAD),
            "message": "larger than",
        }
        _check_outcome(job, oracle, run, case)
    finally:
        boto3.client("s3").delete_object(Bucket=job.bucket, Key=job.key)


def test_ten_thousand_columns_are_copied(
    fault_job: Callable[..., FaultJob], watch: Callable[..., Oracle]
) -> None:
    columns = 10_000
    header = ",".join(f"c{i}" for i in range(columns)).encode() + b"\n"
    body = b"".join(
        ",".join(f"{row}.{i}" if i % 7 else "" for i in range(columns)).encode() + b"\n"
        for row in range(1, 31)
    )
    job = fault_job("confluent", data=header + body)
    oracle = watch(job, "12 hostile input")
    oracle.injected("copy: 10,000 columns (generated)")
    run = job.launch("--checkpoint-every", "4", measure_rss=True)
    _check_outcome(job, oracle, run, {"outcome": "copy", "why": "10,000 columns"})


def test_a_field_just_under_the_message_limit_is_copied(
    fault_job: Callable[..., FaultJob], watch: Callable[..., Oracle]
) -> None:
    """A 600 KB quoted field with newlines and non-ASCII text, under the 1 MB record limit."""
    field = ("ligne é\n" * 100_000)[:600_000]
    data = b'id,text\n1,short\n2,"' + field.encode() + b'"\n3,after\n'
    job = fault_job("confluent", data=data)
    oracle = watch(job, "12 hostile input")
    oracle.injected("copy: 600 KB field (generated)")
    run = job.launch("--checkpoint-every", "1", measure_rss=True)
    _check_outcome(job, oracle, run, {"outcome": "copy", "why": "600 KB field"})


def test_a_2_mb_quoted_field_with_newlines_is_refused(
    fault_job: Callable[..., FaultJob], watch: Callable[..., Oracle]
) -> None:
    head = b"id,text\n1,short\n"
    data = head + b'2,"' + b"line\n" * 400_000 + b'"\n3,after\n'
    job = fault_job("confluent", data=data)
    oracle = watch(job, "12 hostile input", expected=Expected(head, job.source))
    oracle.injected("bad: 2 MB quoted field (generated)")
    run = job.launch("--checkpoint-every", "1", measure_rss=True)
    case = {
        "outcome": "bad",
        "why": "2 MB field",
        "line": 3,
        "offset": len(head),
        "message": "larger than",
    }
    _check_outcome(job, oracle, run, case)


def test_an_impossible_kafka_setting_is_a_configuration_error(
    fault_job: Callable[..., FaultJob], watch: Callable[..., Oracle]
) -> None:
    """Hostile configuration: -X message.timeout.ms=70000 with the default
    transaction.timeout.ms (60000) is refused by librdkafka: exit 2 with a message naming it, no
    traceback, nothing sent. (Found by this suite with -X transaction.timeout.ms=10000, which
    then gave a KafkaException traceback and exit 1; fixed in 73fe039, where that setting now
    works.)"""
    job = fault_job("confluent", data=HEAD)
    run = job.launch("-X", "message.timeout.ms=70000")
    code = run.wait(120)
    out = run.output()
    assert "Traceback" not in out, out[-3000:]
    assert code == 2, f"exit {code}:\n{out[-3000:]}"
    assert "message.timeout.ms" in out
    assert read_partition(job.bootstrap, job.topic) == []


# -- a gzip bomb: ~1 MB stored, 512 MiB of rows --------------------------------------------

BOMB_ROW = b"bomb," + b"x" * 1018 + b"\n"  # 1 KiB, the same every row: deflate's best ratio
BOMB_ROWS = 512 * 1024  # 512 MiB of rows
BOMB_EVERY = 10_000  # rows per transaction: killed after the 3rd commit, 30,000 rows in
BOMB_MAX_RSS_MB = 160


def _gzip_bomb() -> bytes:
    """One gzip member of the header and BOMB_ROWS rows (level 6: 1.4 MB, made in 6 s; level 9
    makes 1.1 MB in 36 s), compressed 8 MiB at a time."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    block = BOMB_ROW * 8192
    out = [packer.compress(b"kind,pad\n")]
    out += [packer.compress(block) for _ in range(BOMB_ROWS // 8192)]
    return b"".join(out) + packer.flush()


def _assert_bomb_topic(job: FaultJob) -> None:
    """The topic holds one record per row, in order, once each, as Python reads them; read as
    a stream (the topic is 600 MB: never held whole)."""
    want = {"kind": "bomb", "pad": "x" * 1018, "_source_file": job.source}
    consumer = _consumer(job.bootstrap)
    try:
        consumer.assign([TopicPartition(job.topic, 0, 0)])
        line = 2
        while True:
            messages = consumer.consume(10_000, timeout=5)
            assert messages, f"no record after line {line - 1}: the topic ends early"
            for message in messages:
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error.str()
                    assert line == BOMB_ROWS + 2, f"{line - 2} records, {BOMB_ROWS} rows"
                    return
                record = orjson.loads(message.value())
                assert record == {**want, "_source_line": line}, (line, record)
                line += 1
    finally:
        consumer.close()


def test_a_gzip_bomb_is_copied_killed_and_resumed_in_flat_memory(
    fault_job: Callable[..., FaultJob], tmp_path: Any
) -> None:
    """A 1.4 MB gzip of 512 MiB of rows (370:1): the processor decodes it in bounded pieces,
    so its peak RSS stays under BOMB_MAX_RSS_MB while copying, killed (-9, deterministically:
    the after-commit failpoint, after 150,000 of 524,288 rows), and resumed (re-decoding the
    single member from its start and dropping what was copied); the topic is exact. 30 s on
    the local stack (2 shared vCPUs): in the CI subset. Peaks here: 81 MB killed, 100 MB
    resumed, at transactions of 10,000 rows (10 MB); at 50,000 rows (52 MB) the resumed run
    peaked at 210 MB, reading the last transaction back from Kafka to find its position; 106 MB
    since the resume scan reads backwards in windows (478ab7c)."""
    bomb = _gzip_bomb()
    assert len(bomb) < 1_600_000, len(bomb)
    job = fault_job("confluent", data=bomb)
    args = ("--checkpoint-every", str(BOMB_EVERY))
    crashed = job.launch(*args, env={"CSV_TO_KAFKA_FAILPOINTS": "after-commit=3"}, measure_rss=True)
    code = crashed.wait(600)
    assert code == -signal.SIGKILL, f"exit {code}:\n{crashed.output()[-3000:]}"
    cp = job.checkpoint()
    assert cp is not None
    # Killed mid-copy: 3 commits in (of at most BOMB_EVERY rows each: --checkpoint-seconds may
    # end one sooner), the checkpoint at or behind them.
    assert 0 < int(cp["total_sent"]) <= 3 * BOMB_EVERY < BOMB_ROWS, cp
    resumed = job.launch(*args, measure_rss=True)
    code = resumed.wait(900)
    assert code == 0, f"exit {code}:\n{resumed.output()[-3000:]}"
    peaks = [run.max_rss_kb for run in (crashed, resumed)]
    assert None not in peaks
    peak_mb = [round(kb / 1024) for kb in peaks if kb is not None]
    print(f"gzip bomb: {len(bomb):,} bytes stored, peak RSS {peak_mb} MB (killed, resumed)")
    assert max(peak_mb) < BOMB_MAX_RSS_MB, f"peak RSS {peak_mb} MB"
    cp = job.checkpoint()
    assert cp is not None
    assert (cp["status"], int(cp["total_sent"])) == ("COMPLETED", BOMB_ROWS)
    _assert_bomb_topic(job)
