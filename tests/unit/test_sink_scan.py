"""The resume scan's windows (sink.last_point) and the fenced message (sink.fenced)."""

from __future__ import annotations

import time

from csv_to_kafka.cli import build_config, build_parser
from csv_to_kafka.record import ResumePoint
from csv_to_kafka.sink import SCAN_WINDOW, fenced, first_window, last_point, outlived

REQUIRED = ["--source", "s3://b/k.csv", "--topic", "t", "--bootstrap-servers", "h:9092"]
REQUIRED += ["--job-id", "j", "--checkpoint-table", "cp"]


def _scan(
    points: dict[int, ResumePoint], low: int, end: int, hint: int | None, window: int | None = None
) -> tuple[ResumePoint | None, list[tuple[int, int]]]:
    reads: list[tuple[int, int]] = []

    def last_of_job(start: int, stop: int) -> ResumePoint | None:
        reads.append((start, stop))
        found = [offset for offset in points if start <= offset < stop]
        return points[max(found)] if found else None

    return last_point(last_of_job, low, end, hint, window), reads


def _point(offset: int) -> ResumePoint:
    return ResumePoint("j", 0, offset, offset + 1, offset * 10, "e", kafka_offset=offset)


def test_kafka_a_transaction_ahead_reads_one_window_not_the_transaction() -> None:
    """The checkpoint at offset 1,000, Kafka's last commit 50,001 records later: one window of
    SCAN_WINDOW offsets before the end, not the 50,000 records from the checkpoint on."""
    points = {1_000: _point(1_000), 51_000: _point(51_000)}
    found, reads = _scan(points, 0, 51_002, hint=1_000)
    assert found == points[51_000]
    assert reads == [(51_002 - SCAN_WINDOW, 51_002)]


def test_the_windows_stop_at_the_hint_then_go_below_it() -> None:
    points = {10: _point(10)}  # the hint's record is not the job's: a topic recreated since
    found, reads = _scan(points, 0, 40_000, hint=30_000)
    assert found == points[10]
    assert reads[0] == (40_000 - SCAN_WINDOW, 40_000)
    above = [start for start, stop in reads if stop > 30_000]
    assert min(above) == 30_000  # down to the hint first, not past it
    assert reads[-1][0] == 0


def test_nothing_of_the_job() -> None:
    found, reads = _scan({}, 5, 20_000, hint=None)
    assert found is None
    assert reads[-1][0] == 5
    assert sum(stop - start for start, stop in reads) == 20_000 - 5


def test_a_scan_of_many_partitions_starts_each_with_its_share_of_the_window() -> None:
    """12 partitions: the first pass reads SCAN_WINDOW offsets in all, not 12 times that; a
    partition whose last point is further back doubles its window until it gets there."""
    window = first_window(12)
    assert window * 12 <= SCAN_WINDOW < (window + 1) * 12
    assert first_window(1) == SCAN_WINDOW
    assert first_window(SCAN_WINDOW * 2) == 1
    points = {20_000 - 2 * window: _point(20_000 - 2 * window)}
    found, reads = _scan(points, 0, 20_000, None, window)
    assert found == points[20_000 - 2 * window]
    assert reads == [(20_000 - window, 20_000), (20_000 - 3 * window, 20_000 - window)]


def test_fenced_names_the_timeout_only_when_the_transaction_outlived_it() -> None:
    config = build_config(build_parser().parse_args(["run", *REQUIRED]), {})
    plain = str(fenced("commit_transaction", config))
    assert "another instance of job j took over" in plain
    assert "transaction.timeout.ms" not in plain
    both = str(fenced("commit_transaction", config, 6000))
    assert "another instance of job j took over" in both
    assert "transaction.timeout.ms (6000 ms" in both
    assert "-X transaction.timeout.ms" in both
    assert outlived(None, 6000) is None
    assert outlived(time.monotonic(), 6000) is None
    assert outlived(time.monotonic() - 7, 6000) == 6000
