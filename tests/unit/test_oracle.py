"""The reliability oracle's own logic (tests/reliability/oracle.py, report.py), on bytes made
here: what it expects of a dead-letter topic and of a job of many objects, and that it catches
a dead letter missing, repeated, early or late, and a record of the wrong object."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any

import pytest

from tests.reliability.oracle import (
    CheckpointMonitor,
    DeadLetter,
    Expected,
    Verdict,
    compare,
    compare_letters,
    in_step,
)
from tests.reliability.report import table

DATA = (
    b"id,name\n"
    + b"1,a\n"  # line 2
    + b"2,b,extra\n"  # 3: field-count
    + b"3,c\n"  # 4
    + b'"4\nfour",d,e\r\n'  # 5-6: field-count, two lines, CRLF
    + b"5,\xff\xfe\n"  # 7: encoding
    + b"6,f\n"  # 8
    + b"7\n"  # 9: field-count, the last row
)
SOURCE = "s3://b/k.csv"


def test_a_dead_letter_job_splits_good_rows_and_bad_rows_with_their_bytes() -> None:
    expected = Expected(DATA, SOURCE, dead_letters=True)
    assert [r["id"] for r in expected.records] == ["1", "3", "6"]
    assert expected.letters == [
        DeadLetter(SOURCE, 3, b"2,b,extra"),
        DeadLetter(SOURCE, 5, b'"4\nfour",d,e'),
        DeadLetter(SOURCE, 7, b"5,\xff\xfe"),
        DeadLetter(SOURCE, 9, b"7"),
    ]
    # the good rows of the job before each bad row
    assert [before for before, _letter in expected.bad] == [1, 2, 2, 3]


def test_the_dead_letters_must_be_in_step_with_the_committed_rows() -> None:
    expected = Expected(DATA, SOURCE, dead_letters=True)
    good, letters = expected.records, expected.letters
    # A commit may end after a good row, or after the bad rows that follow it.
    for rows, dead in [(0, 0), (1, 0), (1, 1), (2, 1), (2, 3), (3, 3), (3, 4)]:
        assert in_step(expected, good[:rows], letters[:dead]) == [], (rows, dead)
    # A bad row before a committed good row is missing; one after the next good row is early.
    assert in_step(expected, good[:2], letters[:0])
    assert in_step(expected, good[:1], letters[:2])
    assert in_step(expected, good[:3], letters[:2])
    # Repeated, out of order, of another object.
    assert in_step(expected, good[:2], [letters[0], letters[0]])
    assert in_step(expected, good[:3], [letters[1], letters[0], letters[2]])
    assert in_step(expected, good[:2], [DeadLetter("s3://b/other.csv", 3, b"2,b,extra")])
    # Without a DLQ only the rows count.
    assert in_step(expected, good[:2], None) == []
    assert in_step(expected, [good[1]], None)


def test_compare_letters_counts_what_differs() -> None:
    expected = Expected(DATA, SOURCE, dead_letters=True)
    letters = expected.letters
    assert compare_letters(letters, expected).exact
    found = compare_letters([letters[0], letters[2], letters[2], letters[3]], expected)
    assert (found.missing, found.duplicated, found.reordered) == (1, 1, 1)
    assert found.first_difference == (
        f"dead letters 1: line 7 of {SOURCE} where line 5 of {SOURCE} was expected"
    )
    changed = compare_letters([*letters[:3], DeadLetter(SOURCE, 9, b"8")], expected)
    assert changed.content_differs == 1


def test_a_job_of_many_objects_expects_their_rows_in_job_order() -> None:
    one, two = b"id\n1\n2\n", b"id\n3\n4\n"
    expected = Expected.of_objects([(one, "s3://b/p/1.csv"), (two, "s3://b/p/2.csv")])
    assert expected.objects == 2
    assert [(r["_source_file"], r["_source_line"], r["id"]) for r in expected.records] == [
        ("s3://b/p/1.csv", 2, "1"),
        ("s3://b/p/1.csv", 3, "2"),
        ("s3://b/p/2.csv", 2, "3"),
        ("s3://b/p/2.csv", 3, "4"),
    ]
    records = expected.records
    assert compare(records, expected).exact
    # The same line numbers in two objects are not duplicates; the objects' order counts.
    swapped = compare([*records[2:], *records[:2]], expected)
    assert (swapped.duplicated, swapped.missing, swapped.reordered) == (0, 0, 1)
    repeated = compare([*records, records[3]], expected)
    assert repeated.duplicated == 1


def test_bad_rows_of_many_objects_count_the_good_rows_of_the_objects_before() -> None:
    expected = Expected.of_objects(
        [(b"id\n1\n2,x\n", "s3://b/p/1.csv"), (b"id\n3,y\n4\n", "s3://b/p/2.csv")],
        dead_letters=True,
    )
    assert [r["id"] for r in expected.records] == ["1", "4"]
    assert expected.bad == [
        (1, DeadLetter("s3://b/p/1.csv", 3, b"2,x")),
        (1, DeadLetter("s3://b/p/2.csv", 2, b"3,y")),
    ]


def _verdict(fault: str, **kw: Any) -> dict[str, Any]:
    verdict = Verdict(
        test=f"t.py::{fault}",
        fault=fault,
        client="confluent",
        seed=1,
        injected={"kill": 2},
        runs=3,
        exit_codes=[-9, -9, 0],
        rows=10,
        records_checked=10,
        missing=0,
        duplicated=0,
        reordered=0,
        content_differs=0,
        prefix_records_checked=10,
        prefix_violation=None,
        checkpoint_polls=5,
        checkpoint_values=3,
        checkpoint_regressions=[],
        first_difference=None,
        seconds=1.0,
        **kw,
    )
    return {**asdict(verdict), "rounds": verdict.rounds}


def test_the_report_has_the_dead_letter_and_object_columns() -> None:
    rows = [
        _verdict("1 processor kill -9"),
        _verdict(
            "13 dead letters: kill -9",
            dlq=True,
            bad_rows=4,
            dlq_records_checked=4,
            dlq_checks_after_faults=3,
            dlq_out_of_step=1,
        ),
        _verdict("14 many objects: kill -9", objects=4),
    ]
    lines = table(rows).splitlines()
    assert "| objects | dead letters checked (final + after faults) |" in lines[0]
    assert len({line.count("|") for line in lines}) == 1  # every row has every column
    assert lines[2].endswith("| 1 | - | - |")
    assert lines[3].startswith("| 13. dead letters: kill -9 |")
    assert lines[3].endswith("| 1 | 4 + 3 checks | 0 / 0 / 0 / 0 / 1 |")
    assert lines[4].endswith("| 4 | - | - |")


def test_a_job_refused_at_its_header_is_one_object_of_no_rows() -> None:
    assert (Expected(None, SOURCE).objects, len(Expected(None, SOURCE))) == (1, 0)
    assert Expected(DATA, SOURCE, dead_letters=True).objects == 1


class _SlowFirstRead:
    """A DynamoDB client stand-in: the first get_item reads the older checkpoint, then waits
    (up to 0.5 s) for a second read, which returns the newer one."""

    class exceptions:
        ResourceNotFoundException = KeyError

    def __init__(self) -> None:
        self.calls = 0
        self.second_read = threading.Event()

    def get_item(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            item = _item(2500, 28)
            self.second_read.wait(0.5)
            return item
        self.second_read.set()
        return _item(3000, 32)


def _item(total_sent: int, bad_rows: int) -> dict[str, Any]:
    return {
        "Item": {
            "status": {"S": "RUNNING"},
            "total_sent": {"N": str(total_sent)},
            "bad_rows": {"N": str(bad_rows)},
        }
    }


def test_two_observers_of_the_checkpoint_record_in_the_order_they_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The polling thread and a test's own observe(): an older read must not be recorded after
    a newer one (it looked like a step backwards of the checkpoint, in a CI run)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monitor = CheckpointMonitor("table", "job", "http://127.0.0.1:1")
    fake = _SlowFirstRead()
    monitor._client = fake  # type: ignore[assignment]
    first = threading.Thread(target=monitor.observe)
    first.start()
    while fake.calls == 0:
        time.sleep(0.001)
    monitor.observe()
    first.join()
    assert monitor.regressions == []
    assert [o.total_sent for o in monitor.history] == [2500, 3000]
