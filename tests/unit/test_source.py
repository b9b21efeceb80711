"""The CSV reader: rows as Python's csv module reads them, with their lines and byte offsets."""

from __future__ import annotations

import csv
import io
import random

import orjson
import pytest

from csv_to_kafka import source
from csv_to_kafka.errors import BadInputError, ConfigError
from csv_to_kafka.record import RecordEncoder
from csv_to_kafka.source import parse_header, parse_rows, split_header


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def read_all(data: bytes, size: int = 7, start: int | None = None, **kw):
    header = parse_header(iter(chunked(data, size)), source="s3://b/k", **kw)
    offset = header.data_offset if start is None else start
    rows, lines, ends = [], [], []
    for batch in parse_rows(
        iter(chunked(data[offset:], size)),
        source="s3://b/k",
        start_offset=offset,
        start_line=header.data_line,
        expected_fields=len(header.names),
        batch_rows=3,
        **kw,
    ):
        rows += batch.rows
        lines += batch.lines
        starts = [batch.row_offset(i) for i in range(len(batch.rows))]
        ends += [*starts[1:], batch.end_offset]
    return header, rows, lines, ends


def random_csv(rng: random.Random, rows: int, crlf: bool) -> bytes:
    alphabet = ["a", "b", ",", '"', "\n", " ", "é", "✓", "\r\n", "x"]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["c1", "c2", "c3"])
    for _ in range(rows):
        writer.writerow(
            ["".join(rng.choice(alphabet) for _ in range(rng.randrange(6))) for _ in range(3)]
        )
    return out.getvalue().encode()


@pytest.mark.parametrize("seed", range(20))
def test_rows_and_offsets_match_the_csv_module(seed: int) -> None:
    rng = random.Random(seed)
    data = random_csv(rng, 60, crlf=seed % 2 == 0)
    want = list(csv.reader(io.StringIO(data.decode(), newline="")))[1:]

    header, rows, lines, ends = read_all(data, size=rng.randrange(1, 40))

    assert header.names == ["c1", "c2", "c3"]
    assert rows == want
    # Each row's bytes, cut at the offsets, parse back to that row alone.
    starts = [header.data_offset, *ends[:-1]]
    for row, start, end in zip(rows, starts, ends, strict=True):
        assert list(csv.reader(io.StringIO(data[start:end].decode(), newline=""))) == [row]
    assert ends[-1] == len(data)
    # Line numbers: the line where each row starts.
    data.decode().split("\n")
    for line, start in zip(lines, starts, strict=True):
        assert data[:start].count(b"\n") + 1 == line


@pytest.mark.parametrize("seed", range(5))
def test_resuming_at_any_row_boundary_reads_the_rest(seed: int) -> None:
    rng = random.Random(seed)
    data = random_csv(rng, 40, crlf=False)
    _header, rows, lines, ends = read_all(data)
    cut = rng.randrange(len(ends))
    offset = ends[cut]
    rest = []
    for batch in parse_rows(
        iter(chunked(data[offset:], 5)),
        source="s",
        start_offset=offset,
        start_line=data[:offset].count(b"\n") + 1,
        expected_fields=3,
    ):
        starts = [batch.row_offset(i) for i in range(len(batch.rows))]
        rest += list(zip(batch.rows, batch.lines, [*starts[1:], batch.end_offset], strict=True))
    assert rest == list(zip(rows, lines, ends, strict=True))[cut + 1 :]


def test_bom_blank_lines_and_a_last_row_without_newline() -> None:
    data = b"\xef\xbb\xbfa,b\n\n1,2\n\n\n3,\xc3\xa9"
    header, rows, lines, ends = read_all(data)
    assert header.names == ["a", "b"]
    assert header.data_offset == 3 + 4
    assert rows == [["1", "2"], ["3", "é"]]
    assert lines == [3, 6]
    # A row's bytes run to where the next row starts: blank lines in between go with it.
    assert ends == [len(b"\xef\xbb\xbfa,b\n\n1,2\n\n\n"), len(data)]


def test_whitespace_and_empty_fields_are_kept() -> None:
    _h, rows, _l, _e = read_all(b'a,b,c\n  x , ,""\n')
    assert rows == [["  x ", " ", ""]]


@pytest.mark.parametrize(
    ("data", "line", "offset", "message"),
    [
        (b"a,b\n1,2\n3\n", 3, 8, "row has 1 fields but the header has 2"),
        (b"a,b\n1,2\n3,\xff\n", 3, 10, "not valid utf-8"),
        (b'a,b\n1,2\n3,"4\n5,6\n', 3, 8, "never closed"),
        (b'a,b\n1,2\n"3"x,4\n', 3, 8, "not valid CSV"),
        (b"a,b\n1,2\n3,4\r5,6\n", 3, 8, "carriage return"),
    ],
)
def test_bad_rows_name_line_and_offset_after_the_good_ones(data, line, offset, message) -> None:
    header = parse_header(iter([data]), source="s3://b/k")
    got = []
    with pytest.raises(BadInputError) as caught:
        for batch in parse_rows(
            iter(chunked(data[header.data_offset :], 3)),
            source="s3://b/k",
            start_offset=header.data_offset,
            start_line=2,
            expected_fields=2,
        ):
            got += batch.rows
    assert got == [["1", "2"]]
    assert caught.value.line == line
    assert caught.value.byte_offset == offset
    assert message in str(caught.value)
    assert f"s3://b/k, line {line}, byte offset {offset}" in str(caught.value)


def test_a_line_longer_than_the_limit_is_refused_without_reading_it_whole() -> None:
    def endless():
        yield b"a\n"
        while True:
            yield b"x" * 65536

    header = parse_header(iter([b"a\n"]), source="s")
    with pytest.raises(BadInputError, match="larger than 100000 bytes"):
        for _ in parse_rows(
            endless(),
            source="s",
            start_offset=0,
            start_line=1,
            expected_fields=1,
            max_row_bytes=100_000,
        ):
            pass
    assert header.names == ["a"]


def test_an_unclosed_quote_cannot_grow_without_bound() -> None:
    def endless():
        yield b'"'
        while True:
            yield b"line\n" * 10_000

    with pytest.raises(BadInputError, match="larger than"):
        for _ in parse_rows(
            endless(),
            source="s",
            start_offset=2,
            start_line=2,
            expected_fields=1,
            max_row_bytes=200_000,
        ):
            pass


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"a,a\n", "twice"), (b"a,,b\n", "empty name")],
)
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(BadInputError, match=message) as caught:
        parse_header(iter([data]), source="s")
    assert caught.value.line == 1


def test_encodings_that_cannot_be_cut_at_newlines_are_refused() -> None:
    with pytest.raises(ConfigError, match="ASCII-compatible"):
        parse_header(iter([b"a\n"]), source="s", encoding="utf-16")
    with pytest.raises(ConfigError, match="unknown"):
        parse_header(iter([b"a\n"]), source="s", encoding="no-such-codec")


def test_header_with_a_quoted_newline() -> None:
    header, _rows, lines, _e = read_all(b'"a\nb",c\n1,2\n')
    assert header.names == ["a\nb", "c"]
    assert header.data_line == 3
    assert lines == [3]


# -- the fast path: parse_rows with an encoder ------------------------------------------------


@pytest.fixture(params=["c", "python"])
def fast_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The fast path's loop: in C (``_speedups``, when it is built) or in Python."""
    if request.param == "python":
        monkeypatch.setattr(source, "_encode_block", None)
    elif source._encode_block is None:
        pytest.skip("csv_to_kafka._speedups is not built (no C compiler at install time)")
    return str(request.param)


def read_values(data: bytes, size: int, encoder_delimiter: str = ",", *, fast: bool = True, **kw):
    """(values, lines, row starts, batch ends, the error if any), parsed with an encoder (the
    fast path where it applies) or, with ``fast=False``, by the general parser alone and each
    row encoded by ``encode_rows``."""
    header = parse_header(iter(chunked(data, size)), source="s3://b/%k", **kw)
    encoder = RecordEncoder(header.names, "s3://b/%k", 1_000_000, encoder_delimiter)
    values, lines, starts, ends = [], [], [], []
    error = None
    try:
        for batch in parse_rows(
            iter(chunked(data[header.data_offset :], size)),
            source="s3://b/%k",
            start_offset=header.data_offset,
            start_line=header.data_line,
            expected_fields=len(header.names),
            batch_rows=4,
            encoder=encoder if fast else None,
            **kw,
        ):
            if fast:
                assert batch.values is not None
                assert len(batch.values) == len(batch.lines)
            values += batch.values if fast else encoder.encode_rows(batch.rows, batch.lines)
            lines += batch.lines
            starts += [batch.row_offset(i) for i in range(len(batch.lines))]
            ends.append(batch.end_offset)
    except BadInputError as err:
        error = (err.line, err.byte_offset, err.reason)
    return values, lines, starts, ends, error


def mixed_csv(
    rng: random.Random,
    rows: int,
    special: float,
    bad: float,
    delimiter: str = ",",
    quotechar: str = '"',
) -> bytes:
    """Mostly plain rows, some quoted, some with bytes JSON escapes, the odd bad one."""
    plain = ["a", "b c", "é", "美", "1.5", "", "x%sy", "%d", "'"]
    specials = ['"', '""', "\n", ",", ";", "\\", "\t", "\r\n", "\x00"]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n", delimiter=delimiter, quotechar=quotechar)
    writer.writerow(["k1", "k%2", 'k"3'])
    for _ in range(rows):
        odds = rng.random()
        if odds < bad:
            bad_row = rng.choice(
                ["1,2\n", "\n", '1,"2\n', "1,2,3,4\n", 'x"y,1,2\n', '"a"b,1,2\n', '1,2,"3" \n']
            )
            out.write(bad_row.replace(",", delimiter).replace('"', quotechar))
            continue
        pool = plain + specials if odds < bad + special else plain
        writer.writerow(
            ["".join(rng.choice(pool) for _ in range(rng.randrange(4))) for _ in range(3)]
        )
    return out.getvalue().encode()


@pytest.mark.parametrize(("delimiter", "quotechar"), [(",", '"'), ("\t", '"'), (";", "'")])
@pytest.mark.parametrize("seed", range(40))
def test_the_fast_path_gives_the_general_parsers_values_offsets_and_errors(
    seed: int, delimiter: str, quotechar: str, fast_loop: str
) -> None:
    rng = random.Random(seed)
    mix = rng.choice([(0.3, 0.02), (0.05, 0.002), (0, 0)])
    data = mixed_csv(rng, rng.choice([30, 200]), *mix, delimiter=delimiter, quotechar=quotechar)
    if seed % 4 == 0:
        data = data.replace(b"\xc3\xa9", b"\xc3", 1)  # bad UTF-8 somewhere, or nowhere
    size = rng.choice([7, 64, 300, 5000])
    kw = {"delimiter": delimiter, "quotechar": quotechar}

    fast = read_values(data, size, delimiter, **kw)
    general = read_values(data, size, delimiter, fast=False, **kw)

    assert fast[0] == general[0]  # values, byte for byte
    assert fast[1:3] == general[1:3]  # lines and row starts
    assert fast[4] == general[4]  # the error: line, byte offset, reason
    assert fast[3][-1:] == general[3][-1:]  # where the last batch ends


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_plain_blocks_take_the_fast_path_whatever_the_delimiter(
    delimiter: str, fast_loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = []
    fast_block = source._fast_block

    def spy(*args, **kwargs):
        done = fast_block(*args, **kwargs)
        taken.append(done is not None)
        return done

    monkeypatch.setattr(source, "_fast_block", spy)
    rows = [f"{n}{delimiter}x y{delimiter}é" for n in range(200)]
    data = delimiter.join(["a", "b", "c"]).encode() + b"\n" + "\n".join(rows).encode() + b"\n"
    values, *_rest, error = read_values(data, 1000, delimiter, delimiter=delimiter)
    assert error is None
    assert [orjson.loads(v)["c"] for v in values] == ["é"] * 200
    assert taken  # (the last block is the general parser's)
    assert all(taken)


def test_the_fast_path_values_are_json_of_the_row(fast_loop: str) -> None:
    data = 'a,b\n1,Zoë\n2,"q,""\n"\n3,%s\n'.encode()
    values, lines, starts, ends, error = read_values(data + b"4,\n" * 10, 4096)
    assert error is None
    assert [orjson.loads(v) for v in values[:3]] == [
        {"a": "1", "b": "Zoë", "_source_line": 2, "_source_file": "s3://b/%k"},
        {"a": "2", "b": 'q,"\n', "_source_line": 3, "_source_file": "s3://b/%k"},
        {"a": "3", "b": "%s", "_source_line": 5, "_source_file": "s3://b/%k"},
    ]
    assert lines[:4] == [2, 3, 5, 6]
    assert starts[:4] == [4, 11, 21, 26]
    assert ends[-1] == len(data) + 30


def test_the_fast_path_with_another_delimiter(fast_loop: str) -> None:
    data = b"a;b\n1;x,y\n2;z\n"
    values, _l, _s, _e, error = read_values(data, 4096, encoder_delimiter=";", delimiter=";")
    assert error is None
    assert [orjson.loads(v)["b"] for v in values] == ["x,y", "z"]


def test_the_fast_path_still_finds_a_record_too_large(fast_loop: str) -> None:
    from csv_to_kafka._parse_process import ready_batches

    rows = [b"1,short", b"2," + b"x" * 150, b"3,never sent"]
    data = b"a,b\n" + b"\n".join(rows) + b"\n"
    encoder = RecordEncoder(["a", "b"], "s", 120)
    batches = parse_rows(
        iter([data[4:]]),
        source="s",
        start_offset=4,
        start_line=2,
        expected_fields=2,
        encoder=encoder,
    )
    got = []
    with pytest.raises(BadInputError, match="larger than 120") as caught:
        for ready in ready_batches(batches, encoder):
            got += ready.values
    assert [orjson.loads(v)["a"] for v in got] == ["1"]
    assert (caught.value.line, caught.value.byte_offset) == (3, 4 + len(rows[0]) + 1)


@pytest.mark.parametrize("size", [1, 5, 4096])
@pytest.mark.parametrize(
    "data", [b"a,b\n1,2\n3,4\n", b"\xef\xbb\xbfa,b\r\n1,2\n", b'"a\nb",c\n1,2\n', b"a,b", b"a,b\n"]
)
def test_split_header_gives_the_header_and_every_byte_after_it(data: bytes, size: int) -> None:
    header, rest = split_header(iter(chunked(data, size)), source="s")
    assert header == parse_header(iter([data]), source="s")
    assert b"".join(rest) == data[header.data_offset :]


def test_split_header_reads_no_further_than_the_header() -> None:
    pulled = []

    def chunks():
        for chunk in chunked(b"a,b\n" + b"1,2\n" * 10, 6):
            pulled.append(chunk)
            yield chunk

    header, rest = split_header(chunks(), source="s")
    assert header.names == ["a", "b"]
    assert len(pulled) == 1
    assert b"".join(rest) == b"1,2\n" * 10
