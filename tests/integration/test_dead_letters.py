"""--errors-tolerance all: bad rows go to the dead-letter topic in the transaction of the rows
around them; the main topic holds exactly the good rows, the DLQ exactly the bad ones, in order,
once each, across crashes (issue 14)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.reliability.oracle import end_offset, read_partition

from .conftest import Job, kill, wait_for_progress
from .parts import make_plan, run_part, verify_plan

HEADER = b"id,name\n"


def dead_letters(job: Job, topic: str) -> list[tuple[bytes, dict[str, str]]]:
    """The DLQ's committed records: (value, headers)."""
    consumer = Consumer(
        {
            "bootstrap.servers": job.bootstrap,
            "group.id": f"dlq-test-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return []
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[tuple[bytes, dict[str, str]]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.1):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return out
                    raise RuntimeError(error.str())
                headers = {k: (v or b"").decode() for k, v in message.headers() or []}
                out.append((message.value() or b"", headers))
        raise TimeoutError(f"reading {topic}")
    finally:
        consumer.close()


def split_rows(data: bytes) -> tuple[list[str], list[tuple[int, bytes]]]:
    """The oracle: (ids of the good rows, (line, raw bytes) of the bad ones), by the csv module."""
    good, bad = [], []
    lines = data.split(b"\n")
    reader = csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline="\n"))
    width = len(next(reader))
    start = reader.line_num + 1
    for row in reader:
        end = reader.line_num
        if row:
            ok = len(row) == width and not any(
                "\udc80" <= ch <= "\udcff" for field in row for ch in field
            )
            if ok:
                good.append(row[0])
            else:
                bad.append((start, b"\n".join(lines[start - 1 : end]).removesuffix(b"\r")))
        start = end + 1
    return good, bad


def assert_exact(job: Job, dlq: str) -> None:
    good, bad = split_rows(job.data)
    ids = [r["id"] for r in job.records()]
    assert ids == good, f"{len(ids)} good rows committed, {len(good)} in the object"
    letters = dead_letters(job, dlq)
    assert [(int(h["csv-to-kafka.line"]), v) for v, h in letters] == bad


DATA = (
    HEADER
    + b"1,a\n"
    + b"2,b,extra\n"  # field-count
    + b"3,c\n"
    + b'"4\nfour",d,e\r\n'  # field-count, two lines, CRLF
    + b"5,\xff\xfe\n"  # encoding
    + b"6,f\n"
    + b"7\n"  # field-count, the last row
)


def test_bad_rows_go_to_the_dead_letter_topic_with_their_headers(job: Job) -> None:
    job.put(DATA)
    dlq = f"{job.topic}-dlq"
    result = job.run("--errors-tolerance", "all", "--dlq-topic", dlq, "--checkpoint-every", "2")
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in job.records()] == ["1", "3", "6"]
    letters = dead_letters(job, dlq)
    assert [v for v, _h in letters] == [b"2,b,extra", b'"4\nfour",d,e', b"5,\xff\xfe", b"7"]
    _value, headers = letters[1]
    assert headers["csv-to-kafka.line"] == "5"
    assert headers["csv-to-kafka.offset"] == str(DATA.index(b'"4'))
    assert headers["csv-to-kafka.source-file"] == job.source
    assert headers["csv-to-kafka.job"] == job.job_id
    assert headers["csv-to-kafka.error"] == "field-count"
    assert "csv-to-kafka.part" not in headers  # not a planned part
    assert headers["__connect.errors.exception.class.name"].endswith("BadInputError")
    assert "3 fields but the header has 2" in headers["__connect.errors.exception.message"]
    assert letters[2][1]["csv-to-kafka.error"] == "encoding"
    assert "4 BAD ROWS" in result.stdout + result.stderr
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    named = [entry["bad_row"] for entry in logged if "bad_row" in entry]
    assert [(b["line"], b["reason"]) for b in named] == [
        (3, "field-count"),
        (5, "field-count"),
        (7, "encoding"),
        (9, "field-count"),
    ]
    assert {b["source"] for b in named} == {job.source}  # each names its object
    assert f"of {job.source} (field-count)" in result.stderr
    assert any(entry.get("bad_rows") == 4 for entry in logged)
    assert_exact(job, dlq)
    cp = job.checkpoint()
    assert cp is not None
    assert (cp["status"], cp["total_sent"], cp["bad_rows"]) == ("COMPLETED", "3", "4")
    table = ("--checkpoint-table", job.table)
    status = subprocess.run(
        [sys.executable, "-m", "csv_to_kafka.cli", "status", "--job-id", job.job_id, *table],
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "BAD ROWS 4" in status.stdout, status.stderr


def test_skip_bad_rows_drops_them_counted(job: Job) -> None:
    job.put(DATA)
    result = job.run("--errors-tolerance", "all", "--skip-bad-rows")
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in job.records()] == ["1", "3", "6"]
    assert "4 BAD ROWS dropped" in result.stdout


@pytest.mark.parametrize("client", ["confluent"])
@pytest.mark.parametrize(
    "args",
    [
        ("--errors-tolerance", "all"),
        ("--dlq-topic", "x"),
        ("--errors-tolerance", "all", "--dlq-topic", "x", "--skip-bad-rows"),
        ("--errors-tolerance", "some"),
    ],
)
def test_inconsistent_options_are_a_config_error(job: Job, args: tuple[str, ...]) -> None:
    job.put(DATA)
    result = job.run(*args)
    assert result.returncode == 2, result.stderr
    assert job.records() == []


def test_past_max_bad_rows_stops_after_what_came_before_and_a_rerun_goes_on(job: Job) -> None:
    job.put(DATA)
    dlq = f"{job.topic}-dlq"
    common = ("--errors-tolerance", "all", "--dlq-topic", dlq, "--checkpoint-every", "1")
    result = job.run(*common, "--max-bad-rows", "2")
    assert result.returncode == 3, result.stderr
    assert "more than 2 bad rows" in result.stderr
    assert "line 7" in result.stderr  # the third bad row
    # Exactly what came before it is committed: the good rows and the two bad rows before it.
    assert [r["id"] for r in job.records()] == ["1", "3"]
    assert [int(h["csv-to-kafka.line"]) for _v, h in dead_letters(job, dlq)] == [3, 5]
    again = job.run(*common, "--max-bad-rows", "2")
    assert again.returncode == 3
    done = job.run(*common, "--max-bad-rows", "10")
    assert done.returncode == 0, done.stderr
    assert_exact(job, dlq)


def test_a_transaction_that_ends_with_bad_rows_resumes_after_them(job: Job) -> None:
    # Batches of one row: the last transaction holds only dead letters, and the crash comes
    # after its commit: the position is on the dead letters, not in the main topic.
    job.put(HEADER + b"1,a\n2,b\n3\n4\n")
    dlq = f"{job.topic}-dlq"
    common = ("--errors-tolerance", "all", "--dlq-topic", dlq, "--checkpoint-every", "1")
    crashed = job.run(*common, env={"CSV_TO_KAFKA_FAILPOINTS": "after-commit=3"})
    assert crashed.returncode == -9, crashed.stderr
    assert len(dead_letters(job, dlq)) == 2
    result = job.run(*common)
    assert result.returncode == 0, result.stderr
    assert "2 BAD ROWS" in result.stdout
    assert_exact(job, dlq)


def make_damaged(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = [HEADER]
    for i in range(1, rows + 1):
        roll = rng.random()
        if roll < 0.01:
            out.append(b"%d,bad,row\n" % i)
        elif roll < 0.012:
            out.append(b"%d,\xff\n" % i)
        else:
            out.append(b"%d,name %d\n" % (i, rng.randrange(10**6)))
    return b"".join(out)


def damaged_args(dlq: str) -> tuple[str, ...]:
    return ("--errors-tolerance", "all", "--dlq-topic", dlq, "--checkpoint-every", "2000")


def test_kill_9_at_random_instants_keeps_both_topics_exact(job: Job) -> None:
    kill_loop(job, kills=2, rows=60_000, seed=14)


def kill_loop(job: Job, *, kills: int, rows: int, seed: int) -> None:
    """kill -9 at ``kills`` random instants after a first commit, then a run to the end."""
    job.put(make_damaged(rows, seed=seed))
    dlq = f"{job.topic}-dlq"
    common = (*damaged_args(dlq), "--max-bad-rows", str(rows))
    rng = random.Random(seed)
    for _ in range(kills):
        cp = job.checkpoint()
        done = int(cp["total_sent"]) if cp is not None else 0
        proc = job.start(*common)
        try:
            wait_for_progress(proc, job, done + 1)  # a new commit, then a random instant
        except AssertionError:
            break  # finished before a commit was seen: nothing to kill
        time.sleep(rng.uniform(0, 0.5))
        kill(proc)
    result = job.run(*common)
    assert result.returncode == 0, result.stderr
    assert_exact(job, dlq)


@pytest.mark.parametrize("client", ["confluent"])
def test_a_zombie_cannot_write_dead_letters(job: Job) -> None:
    """SIGSTOP a run, run a second instance of the job to the end, SIGCONT the first: it is
    fenced (exit 4) and neither topic gains a record."""
    job.put(make_damaged(200_000, seed=9))
    dlq = f"{job.topic}-dlq"
    common = (*damaged_args(dlq), "--max-bad-rows", "10000")
    first = job.start(*common)
    try:
        wait_for_progress(first, job, 2000)
        first.send_signal(signal.SIGSTOP)
        second = job.run(*common)
        assert second.returncode == 0, second.stderr
        ends = end_offset(job.bootstrap, job.topic), end_offset(job.bootstrap, dlq)
        first.send_signal(signal.SIGCONT)
        _out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            kill(first)
    assert first.returncode == 4, err[-3000:]
    assert (end_offset(job.bootstrap, job.topic), end_offset(job.bootstrap, dlq)) == ends
    assert_exact(job, dlq)


@pytest.mark.parametrize("client", ["confluent"])
def test_check_lists_every_bad_row(job: Job) -> None:
    job.put(DATA)
    result = job.command("check", "--errors-tolerance", "all")
    assert result.returncode == 0, result.stderr
    assert "4 BAD ROWS" in result.stdout
    for line in (3, 5, 7, 9):
        assert f"bad row at line {line}, byte " in result.stdout
    as_json = job.command("check", "--errors-tolerance", "all", "--json")
    report = json.loads(as_json.stdout)
    assert [(r["line"], r["reason"]) for r in report["bad_rows"]] == [
        (3, "field-count"),
        (5, "field-count"),
        (7, "encoding"),
        (9, "field-count"),
    ]
    assert report["bad_rows"][0]["byte_offset"] == DATA.index(b"2,b,extra")
    assert report["rows"] == 3
    over = job.command("check", "--errors-tolerance", "all", "--max-bad-rows", "3")
    assert over.returncode == 3
    assert "more than 3 bad rows" in over.stdout
    plain = job.command("check")
    assert plain.returncode == 3


def verify_args(job: Job, dlq: str) -> list[str]:
    return [
        *job.args()[:3],
        "verify",
        *("--source", job.source, "--topic", job.topic, "--bootstrap-servers", job.bootstrap),
        *("--kafka-client", job.client, "--dlq-topic", dlq),
    ]


def test_verify_checks_the_topic_and_the_dead_letter_topic(job: Job) -> None:
    job.put(DATA)
    dlq = f"{job.topic}-dlq"
    result = job.run("--errors-tolerance", "all", "--dlq-topic", dlq)
    assert result.returncode == 0, result.stderr
    verified = subprocess.run(
        verify_args(job, dlq),
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"bad rows in CSV 4, dead letters in {dlq} 4" in verified.stdout
    # Without the DLQ, verify stops at the first bad row, as run --errors-tolerance none would.
    assert job.verify().returncode == 3
    # A DLQ that lacks the bad rows is a mismatch.
    empty = f"{dlq}-empty"
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_topics([NewTopic(empty, num_partitions=1)])[empty].result(30)
    other = subprocess.run(
        verify_args(job, empty),
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert other.returncode == 1, other.stdout + other.stderr
    assert "0 dead letters of this object, the CSV has 4 bad rows" in other.stdout


def test_a_record_too_large_for_kafka_is_a_dead_letter(job: Job) -> None:
    # 300 KB of a byte JSON escapes as 6: the row fits, its record (1.8 MB) does not.
    row = b"2," + b"\x01" * 300_000
    job.put(HEADER + b"1,a\n" + row + b"\r\n3,c\n")
    dlq = f"{job.topic}-dlq"
    result = job.run("--errors-tolerance", "all", "--dlq-topic", dlq)
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in job.records()] == ["1", "3"]
    ((value, headers),) = dead_letters(job, dlq)
    assert value == row
    assert headers["csv-to-kafka.error"] == "record-too-large"
    assert headers["csv-to-kafka.line"] == "3"
    assert headers["csv-to-kafka.offset"] == str(len(HEADER) + 4)


TYPED_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "amount": {"type": ["number", "null"]}},
}


def make_typed(rows: int) -> tuple[bytes, list[int], list[tuple[int, bytes]]]:
    """A typed file, every 97th row a misfit (plain, or quoted), in blocks the C loop reads:
    the data, the ids of the good rows, (line, bytes) of the misfits."""
    out, good, bad = [b"id,amount,name\n"], [], []
    for i in range(1, rows + 1):
        line = i + 1
        if i % 97 == 0:
            row = b"%d,%s,n%d" % (i, b"lots" if i % 2 else b'"1,5"', i)
            bad.append((line, row))
        else:
            row = b"%d,%d.25,n%d" % (i, i, i)
            good.append(i)
        out.append(row + b"\n")
    return b"".join(out), good, bad


def test_a_type_misfit_is_a_type_dead_letter_under_all(job: Job, tmp_path: Any) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(TYPED_SCHEMA))
    data, good, bad = make_typed(5000)
    job.put(data)
    dlq = f"{job.topic}-dlq"
    common = ("--schema", str(schema), "--checkpoint-every", "700")
    result = job.run(*common, "--errors-tolerance", "all", "--dlq-topic", dlq)
    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in job.records()] == good
    letters = dead_letters(job, dlq)
    assert [(int(h["csv-to-kafka.line"]), v) for v, h in letters] == bad
    _line, first_row = bad[0]
    headers = letters[0][1]
    assert headers["csv-to-kafka.error"] == "type"
    assert headers["csv-to-kafka.offset"] == str(data.index(b"\n" + first_row) + 1)
    assert headers["csv-to-kafka.source-file"] == job.source
    assert headers["csv-to-kafka.job"] == job.job_id
    assert headers["__connect.errors.exception.class.name"].endswith("BadInputError")
    assert (
        "column 'amount': 'lots' is not a number" in headers["__connect.errors.exception.message"]
    )
    assert {h["csv-to-kafka.error"] for _v, h in letters} == {"type"}
    assert f"{len(bad)} BAD ROWS" in result.stdout + result.stderr
    verified = subprocess.run(
        [*verify_args(job, dlq), "--schema", str(schema)],
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("client", ["confluent"])
def test_a_type_misfit_under_none_is_still_exit_3_at_its_row(job: Job, tmp_path: Any) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(TYPED_SCHEMA))
    data, good, bad = make_typed(500)
    job.put(data)
    result = job.run("--schema", str(schema), "--checkpoint-every", "50")
    assert result.returncode == 3, result.stderr
    line, row = bad[0]
    assert f"line {line}" in result.stderr
    offset = data.index(b"\n" + row) + 1
    assert f"byte offset {offset}" in result.stderr
    assert [r["id"] for r in job.records()] == good[: line - 2]


def spaced_bad_rows(rows: int, every: int, first: int = 1) -> tuple[bytes, list[int]]:
    """``rows`` rows, every ``every``-th a field too many: the data, the bad rows' lines."""
    out, bad = [HEADER], []
    for i in range(first, first + rows):
        if i % every == 0:
            out.append(b"%d,bad,row\n" % i)
            bad.append(i - first + 2)
        else:
            out.append(b"%d,n%d\n" % (i, i))
    return b"".join(out), bad


def ids_before(data: bytes, line: int) -> list[str]:
    good, _bad = split_rows(b"\n".join(data.split(b"\n")[: line - 1]) + b"\n")
    return good


@pytest.mark.parametrize("checkpoint_every", ["1", "7", "5000"])
def test_max_bad_rows_is_exact_in_one_object(job: Job, checkpoint_every: str) -> None:
    data, bad = spaced_bad_rows(1000, 13)
    job.put(data)
    dlq = f"{job.topic}-dlq"
    common = ("--errors-tolerance", "all", "--dlq-topic", dlq)
    result = job.run(*common, "--checkpoint-every", checkpoint_every, "--max-bad-rows", "20")
    assert result.returncode == 3, result.stderr
    assert f"line {bad[20]}" in result.stderr
    assert [int(h["csv-to-kafka.line"]) for _v, h in dead_letters(job, dlq)] == bad[:20]
    assert [r["id"] for r in job.records()] == ids_before(data, bad[20])
    cp = job.checkpoint()
    assert cp is not None
    assert (cp["status"], cp["bad_rows"]) == ("FAILED", "20")


@pytest.mark.parametrize("client", ["confluent"])
def test_max_bad_rows_counts_over_the_objects_of_a_job(job: Job) -> None:
    from .test_objects import Prefix

    prefix = Prefix(job)
    texts = [spaced_bad_rows(300, 10, first=1 + 300 * n) for n in range(3)]  # 30 bad rows each
    for n, (text, _bad) in enumerate(texts):
        prefix.put(f"part-{n}.csv", text)
    dlq = f"{job.topic}-dlq"
    common = ("--errors-tolerance", "all", "--dlq-topic", dlq, "--checkpoint-every", "50")
    result = job.run(*common, "--max-bad-rows", "70")  # the 71st: the 11th of the third object
    assert result.returncode == 3, result.stderr
    third, third_bad = texts[2]
    assert f"line {third_bad[10]}" in result.stderr
    assert prefix.uri(prefix.parts[2][0]) in result.stderr
    letters = dead_letters(job, dlq)
    assert len(letters) == 70
    assert [h["csv-to-kafka.source-file"] for _v, h in letters] == [
        prefix.uri(key) for key, _text in prefix.parts for _ in range(30)
    ][:70]
    want = (
        split_rows(texts[0][0])[0] + split_rows(texts[1][0])[0] + ids_before(third, third_bad[10])
    )
    assert [r["id"] for r in job.records()] == want


@pytest.mark.parametrize("client", ["confluent"])
def test_max_bad_rows_is_exact_over_a_killed_and_resumed_run(job: Job) -> None:
    """The first run is killed (kill -9, the ``after-commit`` failpoint: deterministic) just
    after its second commit, with 15 or 16 bad rows committed with its 200 good rows (the count
    is in the records' headers, committed with them); the resumed run counts on from them and
    stops exactly at the job's 21st bad row."""
    data, bad = spaced_bad_rows(1000, 13)
    job.put(data)
    dlq = f"{job.topic}-dlq"
    common = ("--errors-tolerance", "all", "--dlq-topic", dlq, "--checkpoint-every", "100")
    common += ("--max-bad-rows", "20")
    crashed = job.run(*common, env={"CSV_TO_KAFKA_FAILPOINTS": "after-commit=2"})
    assert crashed.returncode == -9, crashed.stderr
    assert len(job.records()) == 200  # two transactions of 100 good rows each
    letters = [int(h["csv-to-kafka.line"]) for _v, h in dead_letters(job, dlq)]
    assert letters == bad[: len(letters)]
    assert 15 <= len(letters) <= 16
    result = job.run(*common)
    assert result.returncode == 3, result.stderr
    assert f"line {bad[20]}" in result.stderr
    assert [int(h["csv-to-kafka.line"]) for _v, h in dead_letters(job, dlq)] == bad[:20]
    assert [r["id"] for r in job.records()] == ids_before(data, bad[20])
    again = job.run(*common)  # the count is the job's: a rerun stops at once
    assert again.returncode == 3
    assert len(dead_letters(job, dlq)) == 20
    done = job.run(*common[:-2], "--max-bad-rows", "1000")
    assert done.returncode == 0, done.stderr
    assert_exact(job, dlq)


def run_verify(job: Job, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*job.args()[:3], "verify", *job.args()[4:10], "--kafka-client", job.client, *extra],
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize("client", ["confluent"])
def test_keyed_verify_compares_the_dead_letters(job: Job) -> None:
    job.put(DATA)
    dlq = f"{job.topic}-dlq"
    keyed = ("--key-column", "id", "--partitions", "2")
    result = job.run(*keyed, "--errors-tolerance", "all", "--dlq-topic", dlq)
    assert result.returncode == 0, result.stderr
    verified = run_verify(job, "--key-column", "id", "--dlq-topic", dlq)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"bad rows in CSV 4, dead letters in {dlq} 4" in verified.stdout
    empty = f"{dlq}-empty"
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_topics([NewTopic(empty, num_partitions=1)])[empty].result(30)
    other = run_verify(job, "--key-column", "id", "--dlq-topic", empty)
    assert other.returncode == 1, other.stdout + other.stderr
    assert "0 dead letters of this object, the CSV has 4 bad rows" in other.stdout


def with_sources(
    job: Job, command: str, sources: tuple[str, ...], *extra: str
) -> subprocess.CompletedProcess[str]:
    """``run`` or ``verify`` of the job with ``sources`` (repeated --source) instead of its
    own --source, when given."""
    args = job.args()
    if command == "verify":
        args = [*args[:3], "verify", *args[4:10], "--kafka-client", job.client]
    if sources:
        at = args.index("--source")
        del args[at : at + 2]
    return subprocess.run(
        [*args, *sources, *extra],
        env=job.process_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.parametrize("client", ["confluent"])
@pytest.mark.parametrize("how", ["prefix", "repeated"])
def test_verify_dlq_over_the_objects_of_a_job(job: Job, how: str) -> None:
    from .test_objects import Prefix

    prefix = Prefix(job)
    texts = [spaced_bad_rows(300, 10, first=1 + 300 * n)[0] for n in range(3)]  # 30 bad each
    keys = [prefix.put(f"part-{n}.csv", text) for n, text in enumerate(texts)]
    # repeated: two of the three objects, named, the third first
    sources = ("--source", prefix.uri(keys[2]), "--source", prefix.uri(keys[0]))
    sources = sources if how == "repeated" else ()
    dlq = f"{job.topic}-dlq"
    tolerate = ("--errors-tolerance", "all", "--dlq-topic", dlq, "--checkpoint-every", "50")
    result = with_sources(job, "run", sources, *tolerate)
    assert result.returncode == 0, result.stderr
    verified = with_sources(job, "verify", sources, "--dlq-topic", dlq)
    bad = 60 if sources else 90
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"bad rows in CSV {bad}, dead letters in {dlq} {bad}" in verified.stdout
    # A dead-letter topic that lacks the last object's is a mismatch.
    partial = f"{dlq}-partial"
    copy_letters(job, partial, dead_letters(job, dlq)[: bad - 30])
    missing = with_sources(job, "verify", sources, "--dlq-topic", partial)
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert f"{bad - 30} dead letters of the objects, the CSV has {bad} bad rows" in missing.stdout
    # Dead letters in another order (the objects swapped) are a mismatch naming the object.
    swapped = f"{dlq}-swapped"
    letters = dead_letters(job, dlq)
    copy_letters(job, swapped, letters[30:60] + letters[:30] + letters[60:])
    other = with_sources(job, "verify", sources, "--dlq-topic", swapped)
    assert other.returncode == 1, other.stdout + other.stderr
    first = keys[2] if sources else keys[0]
    assert f"dead letter 1 in {swapped} is s3://" in other.stdout
    assert f"expected {prefix.uri(first)} line" in other.stdout


def copy_letters(job: Job, topic: str, letters: list[tuple[bytes, dict[str, str]]]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": job.bootstrap})
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(30)
    for value, headers in letters:
        producer.produce(topic, value, headers=[(k, v.encode()) for k, v in headers.items()])
    producer.flush(30)


def test_verify_uses_runs_record_size_limit(job: Job) -> None:
    """A record over run's -X message.max.bytes is a record-too-large dead letter; verify with
    the same -X finds both topics exact (with the default limit, the row would be expected in
    the topic)."""
    row = b"2," + b"x" * 5000
    job.put(HEADER + b"1,a\n" + row + b"\n3,c\n")
    dlq = f"{job.topic}-dlq"
    limit = ("-X", "message.max.bytes=4000")
    result = job.run(*limit, "--errors-tolerance", "all", "--dlq-topic", dlq)
    assert result.returncode == 0, result.stderr
    ((value, headers),) = dead_letters(job, dlq)
    assert (value, headers["csv-to-kafka.error"]) == (row, "record-too-large")
    verified = run_verify(job, *limit, "--dlq-topic", dlq)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"bad rows in CSV 1, dead letters in {dlq} 1" in verified.stdout
    without = run_verify(job, "--dlq-topic", dlq)  # another limit: the row is expected
    assert without.returncode == 1, without.stdout + without.stderr


@pytest.mark.parametrize("client", ["confluent"])
def test_the_dead_letter_topic_has_one_partition_for_a_keyed_job(job: Job) -> None:
    """--partitions 3 with --key-column: the topic gets 3 partitions, the dead-letter topic one
    (it was created with 3); an existing DLQ of several partitions is used all the same, its
    partition 0 holding the dead letters."""
    job.put(DATA)
    dlq = f"{job.topic}-dlq"
    keyed = ("--key-column", "id", "--partitions", "3", "--errors-tolerance", "all")
    result = job.run(*keyed, "--dlq-topic", dlq)
    assert result.returncode == 0, result.stderr
    admin = AdminClient({"bootstrap.servers": job.bootstrap})
    topics = admin.list_topics(timeout=30).topics
    assert (len(topics[job.topic].partitions), len(topics[dlq].partitions)) == (3, 1)
    lines = [int(h["csv-to-kafka.line"]) for _v, h in dead_letters(job, dlq)]
    assert lines == [3, 5, 7, 9]
    wide = f"{dlq}-wide"
    admin.create_topics([NewTopic(wide, num_partitions=2)])[wide].result(30)
    other = Job(env=job.env, client=job.client, bucket=job.bucket, key=job.key)
    other.data = job.data
    again = other.run(*keyed, "--dlq-topic", wide)
    assert again.returncode == 0, again.stderr
    assert [int(h["csv-to-kafka.line"]) for _v, h in dead_letters(other, wide)] == [3, 5, 7, 9]


def make_typed_parts(rows: int, every: int) -> tuple[bytes, dict[int, int], dict[int, bytes]]:
    """A typed file whose every ``every``-th row is a misfit (plain, or a quoted field): the
    data, {line: id} of the good rows, {line: bytes} of the bad ones. ``plan`` reads no schema,
    so the misfits only show in ``run --schema``: bad rows inside a plan's parts."""
    out, good, bad = [b"id,amount,name\n"], {}, {}
    for i in range(1, rows + 1):
        line = i + 1
        if i % every == 0:
            row = b"%d,%s,n%d" % (i, b"lots" if i % 2 else b'"1,5"', i)
            bad[line] = row
        else:
            row = b"%d,%d.25,n%d" % (i, i, i)
            good[line] = i
        out.append(row + b"\n")
    return b"".join(out), good, bad


@pytest.mark.timeout(600)
def test_dead_letters_of_a_planned_job_go_to_partition_0_once_each(job: Job, tmp_path: Any) -> None:
    """A plan of 3 parts with bad rows in every part, each part run with a dead-letter topic
    (part 1 killed by a failpoint after its 2nd commit, then run again): partition I holds
    part I's good rows in order, once each; the DLQ (one partition) holds every bad row once,
    with its line, offset, part's job id and part index, each part's in line order."""
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(TYPED_SCHEMA))
    data, good, bad = make_typed_parts(6_000, every=211)
    job.put(data)
    plan = make_plan(job, 3)
    parts = plan["parts"]
    assert len(parts) == 3
    ends = [part["first_line"] for part in parts[1:]] + [1 << 62]
    ranges = [range(part["first_line"], end) for part, end in zip(parts, ends, strict=True)]
    assert all(any(line in lines for line in bad) for lines in ranges), "a part has no bad row"
    dlq = f"{job.topic}-dlq"
    extra = ("--schema", str(schema), "--errors-tolerance", "all", "--dlq-topic", dlq)

    for index in (0, 2):
        done = run_part(job, index, extra=extra)
        assert done.returncode == 0, done.stderr
        part_bad = sum(line in ranges[index] for line in bad)
        assert f"{part_bad} BAD ROWS" in done.stdout + done.stderr
    crashed = run_part(job, 1, {"CSV_TO_KAFKA_FAILPOINTS": "after-commit=2"}, extra=extra)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    half = read_partition(job.bootstrap, job.topic, partition=1, timeout=60)
    assert 0 < len(half) < sum(line in ranges[1] for line in good)  # killed mid-way
    again = run_part(job, 1, extra=extra)
    assert again.returncode == 0, again.stderr

    for index, lines in enumerate(ranges):
        got = [
            orjson.loads(value)
            for _offset, value in read_partition(
                job.bootstrap, job.topic, partition=index, timeout=60
            )
        ]
        want = [(line, ident) for line, ident in good.items() if line in lines]
        assert [(r["_source_line"], r["id"]) for r in got] == want, f"partition {index}"
    letters = dead_letters(job, dlq)
    found = sorted((int(h["csv-to-kafka.line"]), v) for v, h in letters)
    assert found == sorted(bad.items())  # every bad row, once
    for index, lines in enumerate(ranges):
        mine = [(v, h) for v, h in letters if h["csv-to-kafka.job"] == f"{job.job_id}.part-{index}"]
        assert [int(h["csv-to-kafka.line"]) for _v, h in mine] == [
            line for line in bad if line in lines
        ], f"part {index}'s dead letters"
        for value, headers in mine:
            assert headers["csv-to-kafka.offset"] == str(data.index(b"\n" + value + b"\n") + 1)
            assert headers["csv-to-kafka.error"] == "type"
            assert headers["csv-to-kafka.source-file"] == job.source
            assert headers["csv-to-kafka.part"] == str(index)

    # verify --plan --dlq-topic judges each part's dead letters, counted per part
    typed = ("--schema", str(schema), "--kafka-client", job.client)
    verified = verify_plan(job, *typed, "--dlq-topic", dlq)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    shown = verified.stdout.splitlines()
    for index, lines in enumerate(ranges):
        count = sum(line in lines for line in bad)
        [line] = [text for text in shown if text.startswith(f"part {index} (partition {index})")]
        assert line.endswith(f"bad rows in CSV {count}, dead letters in {dlq} {count}")
    assert f"dead letters in {dlq} {len(bad)}" in verified.stdout.splitlines()[-1]
    # one of part 2's dead letters missing: part 2 (only) differs
    lost = f"{dlq}-lost"
    second = next(i for i, (_v, h) in enumerate(letters) if h["csv-to-kafka.part"] == "2")
    copy_letters(job, lost, letters[:second] + letters[second + 1 :])
    mismatch = verify_plan(job, *typed, "--dlq-topic", lost)
    assert mismatch.returncode == 1, mismatch.stdout + mismatch.stderr
    assert "MISMATCH in 1 part(s)" in mismatch.stdout
    assert "part 2 (partition 2): verify MISMATCH" in mismatch.stdout


@pytest.mark.parametrize("client", ["confluent"])
def test_max_bad_rows_counts_each_part_of_a_plan_alone(job: Job, tmp_path: Any) -> None:
    """--max-bad-rows N with a plan is per part: each part is its own job. With N between the
    smallest part's and the largest part's bad rows, the parts with at most N finish (exit 0)
    although the job's total is over N, and a part with more stops at its own (N+1)th bad row
    (exit 3) with everything before it committed."""
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(TYPED_SCHEMA))
    data, good, bad = make_typed_parts(4_000, every=101)
    # part 0's rows (lines up to the plan's first cut) get more bad rows: every 101st, and
    # rows 510-519 too
    for i in range(510, 520):
        data = data.replace(b"\n%d,%d.25," % (i, i), b"\n%d,many," % i, 1)
        bad[i + 1] = b"%d,many,n%d" % (i, i)
        del good[i + 1]
    bad = dict(sorted(bad.items()))
    job.put(data)
    plan = make_plan(job, 2)
    cut = plan["parts"][1]["first_line"]
    first = [line for line in bad if line < cut]
    second = [line for line in bad if line >= cut]
    limit = len(second)
    assert len(first) > limit  # so the job's total is over the limit too
    dlq = f"{job.topic}-dlq"
    extra = ("--schema", str(schema), "--errors-tolerance", "all", "--dlq-topic", dlq)
    extra += ("--max-bad-rows", str(limit))

    done = run_part(job, 1, extra=extra)
    assert done.returncode == 0, done.stderr
    assert f"{limit} BAD ROWS" in done.stdout + done.stderr
    stopped = run_part(job, 0, extra=extra)
    assert stopped.returncode == 3, stopped.stderr
    over = first[limit]  # part 0's (limit + 1)th bad row
    assert f"more than {limit} bad rows (--max-bad-rows)" in stopped.stderr
    assert f"line {over}" in stopped.stderr
    got = read_partition(job.bootstrap, job.topic, partition=0, timeout=60)
    assert [orjson.loads(v)["_source_line"] for _o, v in got] == [
        line for line in good if line < over
    ]
    letters = dead_letters(job, dlq)
    assert sorted(int(h["csv-to-kafka.line"]) for _v, h in letters) == sorted(
        first[:limit] + second
    )


def make_ragged_parts(rows: int) -> tuple[bytes, dict[int, int], dict[int, bytes]]:
    """``parts_csv``-like rows (quoted newlines with a fake row around each 1,000th row) with
    bad rows right before and after every 1,000th row (where plan's batches, so its cuts, end)
    and every 457th: in turn a row of 2 fields, one with bytes invalid in UTF-8 and one of 4
    fields. (object, {line: id of each good row}, {line: bytes of each bad row})."""
    out, good, bad, line = [b"id,name,note\n"], {}, {}, 2
    kinds = itertools.cycle([b"%d,ragged", b"%d,caf\xe9,latin-1", b"%d,four,fields,here"])
    for i in range(1, rows + 1):
        if i % 1000 in (998, 999, 0, 1, 2):
            note = b'"cut near %d\n%d,fake,row\n"' % (i, i + 1)
        else:
            note = b"plain %d" % i
        row = b"%d,name%d,%s" % (i, i, note)
        good[line] = i
        out.append(row + b"\n")
        line += row.count(b"\n") + 1
        if i % 1000 in (999, 0) or i % 457 == 0:
            bad[line] = next(kinds) % i
            out.append(bad[line] + b"\n")
            line += 1
    return b"".join(out), good, bad


@pytest.mark.timeout(600)
def test_a_plan_made_with_errors_tolerance_all_copies_ragged_rows_to_the_dlq(job: Job) -> None:
    """plan --errors-tolerance all of an object with ragged rows and rows invalid in UTF-8,
    some right at the planned cuts: each part starts at the first byte of a row and counts its
    good and bad rows; a run --plan without --errors-tolerance all is refused (exit 2); every
    part run with a DLQ (part 1 killed by a failpoint after its 2nd commit, then run again) puts
    its good rows in partition I in order and each bad row once in the DLQ (line, offset,
    reason, part); verify --plan --dlq-topic says OK. Both clients."""
    data, good, bad = make_ragged_parts(6_000)
    job.put(data)
    plan = make_plan(job, 3, "--errors-tolerance", "all")
    assert plan["errors_tolerance"] == "all"
    parts = plan["parts"]
    ends = [part["first_line"] for part in parts[1:]] + [1 << 62]
    ranges = [range(part["first_line"], end) for part, end in zip(parts, ends, strict=True)]
    for part, lines in zip(parts, ranges, strict=True):
        assert part["rows"] == sum(line in lines for line in good), f"part {part['index']}"
        assert part["bad_rows"] == sum(line in lines for line in bad) > 0, part
        if part["index"]:  # the cut: the first byte of the part's first row (good or bad)
            first = good.get(part["first_line"])
            row = b"%d,name%d," % (first, first) if first else bad[part["first_line"]]
            assert data[part["first_byte"] - 1 : part["first_byte"] + len(row)] == b"\n" + row
    near = [line for line in bad if any(0 <= line - r.start <= 3 for r in ranges[1:])]
    assert near, "no bad row at a cut"

    refused = run_part(job, 0)
    assert refused.returncode == 2, refused.stderr
    assert f"counts {len(bad)} bad rows" in refused.stderr
    assert "run --plan needs --errors-tolerance all" in refused.stderr

    dlq = f"{job.topic}-dlq"
    extra = ("--errors-tolerance", "all", "--dlq-topic", dlq)
    crashed = run_part(job, 1, {"CSV_TO_KAFKA_FAILPOINTS": "after-commit=2"}, extra=extra)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    half = read_partition(job.bootstrap, job.topic, partition=1, timeout=60)
    assert 0 < len(half) < sum(line in ranges[1] for line in good)  # killed mid-way
    for index, lines in enumerate(ranges):
        done = run_part(job, index, extra=extra)
        assert done.returncode == 0, done.stderr
        assert f"{sum(line in lines for line in bad)} BAD ROWS" in done.stdout + done.stderr

    for index, lines in enumerate(ranges):
        got = [
            orjson.loads(value)
            for _offset, value in read_partition(
                job.bootstrap, job.topic, partition=index, timeout=60
            )
        ]
        want = [(line, str(ident)) for line, ident in good.items() if line in lines]
        assert [(r["_source_line"], r["id"]) for r in got] == want, f"partition {index}"
    letters = dead_letters(job, dlq)
    assert sorted((int(h["csv-to-kafka.line"]), v) for v, h in letters) == sorted(bad.items())
    for index, lines in enumerate(ranges):
        mine = [(v, h) for v, h in letters if h["csv-to-kafka.part"] == str(index)]
        assert [int(h["csv-to-kafka.line"]) for _v, h in mine] == [
            line for line in bad if line in lines
        ], f"part {index}'s dead letters"
        for value, headers in mine:
            assert headers["csv-to-kafka.offset"] == str(data.index(b"\n" + value + b"\n") + 1)
            want_error = "encoding" if b"\xe9" in value else "field-count"
            assert headers["csv-to-kafka.error"] == want_error, value
            assert headers["csv-to-kafka.job"] == f"{job.job_id}.part-{index}"

    verified = verify_plan(job, "--kafka-client", job.client, "--dlq-topic", dlq)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"dead letters in {dlq} {len(bad)}" in verified.stdout.splitlines()[-1]
