"""Bad input: exit 3, a message with the line and byte offset, the rows before it committed and
nothing from it on."""

from __future__ import annotations

import json
import subprocess

import orjson
import pytest

from .conftest import Job, make_csv

GOOD = b"id,name\n1,a\n2,b\n3,c\n"
# name -> (bytes after the good rows, line of the bad row, byte offset where it starts, message)
CASES = {
    "ragged row": (b"4,d,extra\n5,e\n", 5, len(GOOD), "row has 3 fields but the header has 2"),
    "invalid utf-8": (b"4,\xff\xfe\n5,e\n", 5, len(GOOD) + 2, "not valid utf-8"),
    "unterminated quote": (b'4,"open\n5,e\n', 5, len(GOOD), "never closed"),
    "stray quote": (b'4,"x"y\n5,e\n', 5, len(GOOD), "not valid CSV"),
    "row too large": (b"4," + b"x" * 1_100_000 + b"\n5,e\n", 5, len(GOOD), "larger than"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_row_stops_the_copy_after_the_rows_before_it(job: Job, case: str) -> None:
    tail, line, offset, message = CASES[case]
    job.put(GOOD + tail)

    result = job.run()

    assert result.returncode == 3, result.stderr
    assert message in result.stderr
    assert f"line {line}" in result.stderr
    assert f"byte offset {offset}" in result.stderr
    assert [r["id"] for r in job.records()] == ["1", "2", "3"]
    cp = job.checkpoint()
    assert cp is not None
    assert cp["status"] == "FAILED"
    assert int(cp["total_sent"]) == 3
    # A rerun stops at the same row and adds nothing.
    again = job.run()
    assert again.returncode == 3
    assert [r["id"] for r in job.records()] == ["1", "2", "3"]


HEADER_CASES = {
    "empty object": (b"", "empty"),
    "duplicate header": (b"a,b,a\n1,2,3\n", "twice"),
    "empty header name": (b"a,,c\n1,2,3\n", "empty name"),
    "metadata name": (b"a,_source_line\n1,2\n", "_source_line"),
    "header not utf-8": (b"a,\xe9\n1,2\n", "not valid utf-8"),
}


@pytest.mark.parametrize("client", ["confluent"])
@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_bad_header_sends_nothing(job: Job, case: str) -> None:
    data, message = HEADER_CASES[case]
    job.put(data)

    result = job.run()

    assert result.returncode == 3, result.stderr
    assert message in result.stderr
    assert "line 1" in result.stderr
    assert job.records() == []


def test_object_replaced_between_runs(job: Job) -> None:
    job.put(b"id\n" + b"".join(b"%d\n" % i for i in range(1, 5001)))
    first = job.run(
        "--checkpoint-every", "100", env={"CSV_TO_KAFKA_FAILPOINTS": "after-checkpoint=5"}
    )
    assert first.returncode == -9
    sent = len(job.records())
    assert sent > 0

    job.put(b"id\n" + b"".join(b"%d\n" % i for i in range(1, 6001)))
    result = job.run()

    assert result.returncode == 3
    assert "changed" in result.stderr
    assert "new --job-id" in result.stderr
    assert len(job.records()) == sent


def check(job: Job, *extra: str) -> subprocess.CompletedProcess[str]:
    return job.command("check", *extra, timeout=120)


def logged_error(stderr: str) -> str:
    """The message of run's ERROR log line (JSON lines: --progress json)."""
    errors = [
        entry["message"]
        for entry in map(json.loads, filter(None, stderr.splitlines()))
        if entry.get("level") == "ERROR"
    ]
    assert len(errors) == 1, stderr
    return str(errors[0])


@pytest.mark.parametrize("client", ["confluent"])
@pytest.mark.parametrize("case", [*CASES, *HEADER_CASES])
def test_check_finds_the_bad_row_run_would_stop_at(job: Job, case: str) -> None:
    data = GOOD + CASES[case][0] if case in CASES else HEADER_CASES[case][0]
    job.put(data)

    checked = check(job, "--progress", "none")

    assert checked.returncode == 3, checked.stderr
    good_rows = 3 if case in CASES else 0
    prefix = f"check FAILED: {job.source}: {good_rows} good rows, then: "
    assert checked.stdout.startswith(prefix), checked.stdout
    assert job.records() == [], "check sent something"
    # run, with nothing checked before it, stops at the same row with the same message.
    result = job.run()
    assert result.returncode == 3
    assert logged_error(result.stderr) == checked.stdout.removeprefix(prefix).rstrip("\n")


@pytest.mark.parametrize("client", ["kafka-python"])
def test_check_passes_what_run_copies(job: Job) -> None:
    job.put(make_csv(3000))

    checked = check(job, "--json", "--kafka-client", "kafka-python", "-X", "max.request.size=600")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    want = job.expected()
    assert (report["ok"], report["rows"], report["limit_bytes"]) == (True, 3000, 600)
    assert report["columns"] == ["id", "name", "email", "amount", "note"]
    assert report["largest_record_bytes"] == max(len(orjson.dumps(r)) for r in want)
    assert job.run("-X", "max.request.size=600").returncode == 0
    job.assert_exact()
