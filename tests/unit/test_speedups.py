"""The C loop (``csv_to_kafka._speedups.encode_block``): the csv module's rows, as RecordEncoder
encodes them, and a stop before every row it is not sure of."""

from __future__ import annotations

import csv
import io
import shutil

import pytest

from csv_to_kafka import source
from csv_to_kafka.record import RecordEncoder

speedups = pytest.importorskip("csv_to_kafka._speedups")


def test_the_c_loop_is_built_where_there_is_a_compiler() -> None:
    # The extension is optional (no compiler: the Python loop), so a failed build is silent;
    # where a compiler is present, this says it failed.
    if shutil.which("cc") or shutil.which("gcc"):
        assert source._encode_block is speedups.encode_block


def encode(
    block: bytes, names: list[str], *, line: int = 1, max_rows: int = 1000, delimiter: str = ","
):
    encoder = RecordEncoder(names, "s3://b/%k", 1_000_000, delimiter)
    return speedups.encode_block(
        block,
        0,
        len(block),
        line,
        max_rows,
        delimiter.encode(),
        b'"',
        encoder.pieces,
        encoder.tail,
    )


def expected(block: bytes, names: list[str], first_line: int, delimiter: str = ","):
    """RecordEncoder's values for the csv module's rows of ``block``, and their lines."""
    encoder = RecordEncoder(names, "s3://b/%k", 1_000_000, delimiter)
    reader = csv.reader(io.StringIO(block.decode(), newline="\n"), delimiter=delimiter, strict=True)
    rows, lines, line = [], [], first_line
    for row in reader:
        rows.append(row)
        lines.append(line + 1)
        line = first_line + reader.line_num
    return encoder.encode_rows(rows, lines), lines, line


@pytest.mark.parametrize(
    ("block", "delimiter"),
    [
        (b"1,plain\n2,\xc3\xa9 \xe7\xbe\x8e\n3,\n", ","),
        (b'1,"a,b"\n2,"say ""hi"""\n3,""\n', ","),
        (b'1,"two\nlines"\n2,"three\n\nlines"\n3,x\n', ","),
        (b'"1","x"\n"",""\n', ","),
        (b'1\t"a\tb"\n2\tc\n', "\t"),
        (b'1;a,b\n2;"c;d"\n', ";"),
    ],
)
def test_values_and_lines_are_record_encoders(block: bytes, delimiter: str) -> None:
    values, lines, pos, line, longest = encode(block, ["k", "v%s"], line=7, delimiter=delimiter)
    want_values, want_lines, want_line = expected(block, ["k", "v%s"], 7, delimiter)
    assert values == want_values
    assert lines == want_lines
    assert (pos, line) == (len(block), want_line)
    assert longest == max(map(len, want_values))


@pytest.mark.parametrize(
    "unsure",
    [
        b"\n",  # a blank line (skipped by the csv module)
        b"1\n",  # too few fields
        b"1,2,3\n",  # too many
        b'1,"a"b\n',  # text after a closing quote (an error in strict mode)
        b'1,a"b"\n',  # a quote inside an unquoted field (the csv module keeps it)
        b'1,"not closed\n',  # the row goes on past the block
        b'1,"a\\b"\n',  # a byte the caller keeps out of a fast block
    ],
)
def test_it_stops_before_a_row_it_is_not_sure_of(unsure: bytes) -> None:
    good = b"1,a\n2,b\n"
    values, lines, pos, line, _longest = encode(good + unsure + b"9,z\n", ["k", "v"], line=1)
    assert lines == [2, 3]
    assert len(values) == 2
    assert (pos, line) == (len(good), 3)


def test_it_stops_after_max_rows() -> None:
    block = b"1,a\n2,b\n3,c\n"
    values, lines, pos, line, _longest = encode(block, ["k", "v"], max_rows=2)
    assert len(values) == 2
    assert lines == [2, 3]
    assert (pos, line) == (8, 3)
    assert encode(block, ["k", "v"], max_rows=0)[:3] == ([], [], 0)


def test_bad_arguments_are_refused() -> None:
    encoder = RecordEncoder(["k"], "s", 100)
    with pytest.raises(ValueError, match="newline"):
        speedups.encode_block(b"1", 0, 1, 1, 10, b",", b'"', encoder.pieces, encoder.tail)
    with pytest.raises(TypeError):
        speedups.encode_block("1\n", 0, 2, 1, 10, b",", b'"', encoder.pieces, encoder.tail)
    with pytest.raises(TypeError):
        speedups.encode_block(b"1\n", 0, 2, 1, 10, b",,", b'"', encoder.pieces, encoder.tail)
