"""Row-level errors as data: with ``tolerate``, bad rows travel with their batch as Rejects.

The oracle is Python's csv module: the good rows are exactly the rows it reads with the
header's width, in order, and each Reject's bytes are the row's bytes in the object.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import orjson
import pytest

from csv_to_kafka import source
from csv_to_kafka._parse_process import ready_batches
from csv_to_kafka.deadletter import BadRowLimit
from csv_to_kafka.errors import BadInputError
from csv_to_kafka.record import RecordEncoder
from csv_to_kafka.source import ENCODING, FIELD_COUNT, Reject, parse_header, parse_rows


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture(params=["c", "python"])
def fast_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(source, "_encode_block", None)
    elif source._encode_block is None:
        pytest.skip("csv_to_kafka._speedups is not built")
    return str(request.param)


def parse(data: bytes, size: int, *, tolerate: bool = True, fast: bool = True, **kw):
    header = parse_header(iter(chunked(data, size)), source="s3://b/k", **kw)
    encoder = RecordEncoder(header.names, "s3://b/k", 1_000_000)
    batches = list(
        parse_rows(
            iter(chunked(data[header.data_offset :], size)),
            source="s3://b/k",
            start_offset=header.data_offset,
            start_line=header.data_line,
            expected_fields=len(header.names),
            batch_rows=4,
            encoder=encoder if fast else None,
            tolerate=tolerate,
            **kw,
        )
    )
    return header, encoder, batches


def good_lines(batches) -> list[int]:
    return [line for batch in batches for line in batch.lines]


def rejects_of(batches) -> list[Reject]:
    return [r for batch in batches for r in batch.rejects]


def test_field_count_rows_are_rejects_and_the_rows_after_them_follow(fast_loop: str) -> None:
    data = b"a,b\n1,2\n3\n4,5\n6,7,8\r\n9,10\n"
    for size in (1, 3, 7, 1000):
        _header, _encoder, batches = parse(data, size)
        assert good_lines(batches) == [2, 4, 6]
        rejects = rejects_of(batches)
        assert [(r.line, r.offset, r.raw, r.reason) for r in rejects] == [
            (3, 8, b"3", FIELD_COUNT),
            (5, 14, b"6,7,8", FIELD_COUNT),
        ]
        assert [(r.next_line, r.end_offset) for r in rejects] == [(4, 10), (6, 21)]
        assert rejects[0].message == "row has 1 fields but the header has 2"


def test_a_quoted_bad_row_keeps_its_newlines_and_its_bytes(fast_loop: str) -> None:
    data = b'a,b\n1,2\n"x\ny",2,3\n4,5\n'
    _header, _encoder, batches = parse(data, 1000)
    assert good_lines(batches) == [2, 5]
    (reject,) = rejects_of(batches)
    assert (reject.line, reject.next_line, reject.raw) == (3, 5, b'"x\ny",2,3')
    assert data[reject.offset : reject.end_offset] == b'"x\ny",2,3\n'


def test_bytes_invalid_in_the_encoding_are_a_reject_of_their_row_only() -> None:
    data = b'a,b\n1,2\n"q\n\xff",3\n4,\xc3\xa9\n5,6\n'
    for size in (2, 5, 1000):
        _header, _encoder, batches = parse(data, size)
        assert good_lines(batches) == [2, 5, 6]
        (reject,) = rejects_of(batches)
        assert (reject.line, reject.reason, reject.raw) == (3, ENCODING, b'"q\n\xff",3')
        assert data[reject.offset : reject.end_offset] == b'"q\n\xff",3\n'


def test_without_tolerate_the_first_bad_row_still_ends_the_stream() -> None:
    data = b"a,b\n1,2\n3\n4,5\n"
    with pytest.raises(BadInputError) as caught:
        parse(data, 1000, tolerate=False)
    assert (caught.value.line, caught.value.byte_offset) == (3, 8)


def test_a_quote_never_closed_still_stops_the_copy_with_tolerate() -> None:
    data = b'a,b\n1,2\n3\n"4,5\n6,7\n'
    with pytest.raises(BadInputError, match="quote is never closed"):
        parse(data, 1000)


def test_ready_batches_carry_rejects_and_a_batch_of_only_rejects_has_a_position() -> None:
    data = b"a,b\n1,2\nx\ny\nz\nw\n"
    _header, encoder, batches = parse(data, 1000)
    ready = list(ready_batches(batches, encoder))
    assert [len(r.values) for r in ready] == [1]
    assert [r.line for r in ready[0].rejects] == [3, 4, 5, 6]
    assert (ready[0].next_offset, ready[0].next_line, ready[0].last_line) == (len(data), 7, 6)


def test_random_damage_matches_the_csv_module(fast_loop: str) -> None:
    rng = random.Random(14)
    lines = [b"h1,h2,h3"]
    for i in range(3000):
        roll = rng.random()
        if roll < 0.02:
            lines.append(b"%d,bad" % i)
        elif roll < 0.03:
            lines.append(b'"q%d\nq",x,y' % i)
        elif roll < 0.04:
            lines.append(b'"q%d",x,y,z' % i)
        else:
            lines.append(b"%d,b%d,c" % (i, i))
    data = b"\n".join(lines) + b"\n"
    expected_good, expected_bad = [], []
    reader = csv.reader(io.StringIO(data.decode(), newline=""))
    next(reader)
    for row in reader:
        (expected_good if len(row) == 3 else expected_bad).append(row)
    for size in (4096, 65536):
        _header, _encoder, batches = parse(data, size)
        values = [v for b in batches for v in (b.values or [])]
        assert len(values) == len(expected_good)
        bad = rejects_of(batches)
        assert [next(csv.reader([r.raw.decode()])) for r in bad if b"\n" not in r.raw] == [
            row for row in expected_bad if "\n" not in row[0]
        ]
        assert len(bad) == len(expected_bad)
        for r in bad:
            assert data[r.offset : r.end_offset].rstrip(b"\n") == r.raw


CORPUS = Path(__file__).parents[1] / "data" / "hostile"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
# The documented outcome under --errors-tolerance all of every case that is bad input without
# it (README "Bad rows"): a row-level error becomes a dead letter and the copy goes on; an error
# that loses the parser's place, or the header's, still stops it (exit 3) as without it. The
# compressed cases fail in the decoder, before the parser: exit 3, as without it.
ROW_LEVEL = {
    "ragged_more_fields.csv": (22, 322, FIELD_COUNT),
    "ragged_fewer_fields.csv": (22, 322, FIELD_COUNT),
    "invalid_utf8_row.csv": (22, 322, ENCODING),
    "invalid_utf8_in_quoted_multiline.csv": (3, 13, ENCODING),
    # the truncated character ends the row one field short: that is found first
    "truncated_utf8_at_end.csv": (22, 322, FIELD_COUNT),
}
# Fatal under all with another message: read past its bad bytes, the garbage holds a lone CR,
# which loses the parser's place.
OTHER_FATAL = {"garbage_after_good_rows.csv": ("carriage return", 22, 322)}


@pytest.mark.parametrize(
    "name",
    [n for n, case in MANIFEST.items() if case["outcome"] == "bad" and not case.get("compressed")],
)
def test_the_hostile_corpus_under_errors_tolerance_all(name: str) -> None:
    case = MANIFEST[name]
    data = (CORPUS / name).read_bytes()
    if name not in ROW_LEVEL:
        message, line, offset = OTHER_FATAL.get(
            name, (case["message"], case["line"], case["offset"])
        )
        with pytest.raises(BadInputError) as caught:
            parse(data, 4096)
        assert message in str(caught.value)
        assert (caught.value.line, caught.value.byte_offset) == (line, offset)
        return
    _header, _encoder, batches = parse(data, 4096)
    (reject,) = rejects_of(batches)
    assert (reject.line, reject.offset, reject.reason) == ROW_LEVEL[name]
    assert data[reject.offset :].startswith(reject.raw)
    assert reject.line not in good_lines(batches)


@pytest.mark.parametrize("fast", [True, False])
def test_a_record_too_large_is_a_reject_with_its_row_bytes(fast_loop: str, fast: bool) -> None:
    long = b"y" * 200
    data = b"a,b\n1,2\n3," + long + b'\nbad\n"4\n",' + long + b"\n5,6\n" + b"7,8\n" * 300
    for size in (9, 4096):
        header = parse_header(iter(chunked(data, size)), source="s3://b/k")
        encoder = RecordEncoder(header.names, "s3://b/k", 120)
        batches = parse_rows(
            iter(chunked(data[header.data_offset :], size)),
            source="s3://b/k",
            start_offset=header.data_offset,
            start_line=header.data_line,
            expected_fields=2,
            batch_rows=4,
            encoder=encoder if fast else None,
            tolerate=True,
        )
        ready = list(ready_batches(batches, encoder))
        values = [v for r in ready for v in r.values]
        assert len(values) == 302
        rejects = [r for b in ready for r in b.rejects]
        assert [(r.line, r.reason) for r in rejects] == [
            (3, "record-too-large"),
            (4, "field-count"),
            (5, "record-too-large"),
        ]
        assert [r.raw for r in rejects] == [b"3," + long, b"bad", b'"4\n",' + long]
        for r in rejects:
            assert data[r.offset : r.end_offset] == r.raw + b"\n"
        assert rejects[2].next_line == 7
        # Each Reject's index places it among its batch's values: merged, the lines run in order.
        order: list[int] = []
        for batch in ready:
            value_lines = [orjson.loads(v)["_source_line"] for v in batch.values]
            for i in range(len(value_lines) + 1):
                order += [r.line for r in batch.rejects if r.index == i]
                order += value_lines[i : i + 1]
        assert order == sorted(order)
        assert order[:6] == [2, 3, 4, 5, 7, 8]


def test_rejects_cross_the_pipe_as_json_with_their_bytes() -> None:
    from csv_to_kafka._parse_process import _rejects_from_json, _rejects_to_json

    sent = (
        Reject(0, 3, 8, 4, 10, FIELD_COUNT, "row has 1 fields", b"3"),
        Reject(2, 7, 90, 9, 120, ENCODING, "not valid", b'"q\n\xff",\r3'),
    )
    assert _rejects_from_json(_rejects_to_json(sent)) == sent


@pytest.mark.parametrize("limit", range(6))
@pytest.mark.parametrize("total", [0, 2])
def test_max_bad_rows_cuts_the_batch_just_before_the_jobs_n_plus_first_bad_row(
    fast_loop: str, limit: int, total: int
) -> None:
    """One batch of 4 rows: the values and dead letters before the (N+1)th bad row of the job
    (the count starting at ``total``) are yielded, up to it, then its error is raised."""
    data = b'a,b\n1,2\nx\n3,4\ny\nz\n5,6\n"w\nw"\n7,8\n'
    bad_lines = [3, 5, 6, 8]
    _header, encoder, batches = parse(data, 1000)
    got = []
    over = max(limit - total, 0)  # the bad rows of this object that pass
    gen = ready_batches(batches, encoder, limit=BadRowLimit(limit, total))
    if over >= len(bad_lines):
        got = list(gen)
    else:
        with pytest.raises(BadInputError) as err:
            for ready in gen:
                got.append(ready)
        cut = bad_lines[over]
        assert err.value.line == cut
        assert f"more than {limit} bad rows" in str(err.value)
        assert err.value.byte_offset == data.index({3: b"x\n", 5: b"y\n", 6: b"z\n", 8: b'"w'}[cut])
        assert got == [] or got[-1].next_line == cut
        if got:
            assert got[-1].next_offset == err.value.byte_offset
    rejects = [r.line for ready in got for r in ready.rejects]
    assert rejects == bad_lines[:over]
    good = [orjson.loads(v)["_source_line"] for ready in got for v in ready.values]
    last = bad_lines[over] if over < len(bad_lines) else 99
    assert good == [line for line in (2, 4, 7, 10) if line < last]


def test_the_limit_counts_over_the_objects_of_a_job() -> None:
    limit = BadRowLimit(3, 0)
    data = b"a,b\n1,2\nx\n3,4\ny\n"
    _header, encoder, batches = parse(data, 1000)  # the first object: its 2 bad rows pass
    first = [r for ready in ready_batches(batches, encoder, limit=limit) for r in ready.rejects]
    assert len(first) == 2
    _header, encoder, batches = parse(data, 1000)  # the second: the third passes, not the 4th
    got = []
    with pytest.raises(BadInputError) as err:
        for ready in ready_batches(batches, encoder, limit=limit):
            got.append(ready)
    assert err.value.line == 5
    assert [r.line for ready in got for r in ready.rejects] == [3]
