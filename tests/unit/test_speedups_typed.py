"""The C loop's typed rows against schema.py's rules, the slow reference: random files, random
column kinds; every value equal byte for byte, and a stop before the first row that does not fit."""

from __future__ import annotations

import csv
import io
import json
import random

import orjson
import pytest

from csv_to_kafka.record import typed_pieces
from csv_to_kafka.schema import ColumnType, FieldTypeError, RowTypes

speedups = pytest.importorskip("csv_to_kafka._speedups")

SOURCE = "s3://bucket/typed.csv"
# The fast path's caller keeps backslashes out of its blocks (source._fast_block), so a "\\N"
# token is read the slow way; these are tokens the C loop meets.
NULLS = ("NULL", "N/A")
KINDS = ("string", "integer", "number", "boolean")
FIELDS = [
    # integers
    "0",
    "7",
    "-12",
    "+7",
    "007",
    "-0",
    "-000",
    "123456789012345678901234567890",
    # numbers
    "12.50",
    "0.1",
    ".5",
    "5.",
    "-.25",
    "+2.5",
    "1e5",
    "-1.0E-07",
    "3.",
    "00.0",
    "1E+05",
    # booleans
    "true",
    "FALSE",
    "t",
    "F",
    "Yes",
    "no",
    "Y",
    "n",
    "1",
    "0",
    # nulls and empties
    "",
    "NULL",
    "N/A",
    "n/a",
    "null",
    # not numbers, not booleans
    "NaN",
    "Infinity",
    "1,000",
    "0x1F",
    "1_000",
    " 1",
    "1 ",
    "e5",
    ".",
    "+",
    "-",
    "1e",
    "on",
    # strings that need quoting or escaping
    "plain",
    'say "hi"',
    "two\nlines",
    "tab\there",
    "a,b",
    "é日本€",
    '"',
    '""',
]


def reference(rows: list[list[str]], lines: list[int], types: RowTypes) -> list[bytes]:
    """The slow path: each field through schema.py, up to the first row that does not fit."""
    names = [orjson.dumps(name) for name in types.header]
    values = []
    for row, line in zip(rows, lines, strict=True):
        try:
            fields = types.values(row)
        except FieldTypeError:
            break
        body = b",".join(name + b":" + value for name, value in zip(names, fields, strict=True))
        tail = b',"_source_line":%d,"_source_file":' % line + orjson.dumps(SOURCE) + b"}"
        values.append(b"{" + body + tail)
    return values


def encode(block: bytes, types: RowTypes) -> tuple[list[bytes], list[int]]:
    pieces, tail = typed_pieces(types.header, SOURCE)
    nulls = tuple(token.encode() for token in sorted(types.null_values))
    values, lines, _pos, _line, _longest = speedups.encode_block(
        block, 0, len(block), 1, 10_000, b",", b'"', pieces, tail, types.kinds, nulls
    )
    return values, lines


def parsed(block: bytes) -> tuple[list[list[str]], list[int]]:
    reader = csv.reader(io.StringIO(block.decode(), newline="\n"), strict=True)
    rows, lines, line = [], [], 1
    for row in reader:
        rows.append(row)
        lines.append(line + 1)
        line = 1 + reader.line_num
    return rows, lines


@pytest.mark.parametrize("seed", range(60))
def test_typed_values_equal_the_slow_reference(seed: int) -> None:
    rng = random.Random(seed)
    width = rng.randint(1, 6)
    types = RowTypes(
        tuple(f"c{i}" for i in range(width)),
        tuple(ColumnType(rng.choice(KINDS), rng.random() < 0.5) for _ in range(width)),
        frozenset(NULLS) if rng.random() < 0.7 else frozenset(),
    )
    out = io.StringIO(newline="")
    writer = csv.writer(
        out, lineterminator="\n", quoting=rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
    )
    for _ in range(rng.randint(1, 40)):
        writer.writerow([rng.choice(FIELDS) for _ in range(width)])
    block = out.getvalue().encode()
    if b"\t" in block:
        block = block.replace(b"\t", b" ")  # the fast path's caller keeps tabs out of ","-files
    rows, lines = parsed(block)
    want = reference(rows, lines, types)
    values, got_lines = encode(block, types)
    # The C loop may stop earlier than the first bad row (a row it is not sure of is read the
    # slow way), never later, and what it writes is the reference's.
    assert values == want[: len(values)]
    assert got_lines == lines[: len(values)]
    for value in values:
        json.loads(value)


def test_the_fast_path_covers_the_common_typed_rows() -> None:
    """Plain typed rows, quoted or not, must not fall back: a stop here would cost the speed."""
    types = RowTypes(
        ("id", "amount", "active", "note", "name"),
        (
            ColumnType("integer"),
            ColumnType("number", True),
            ColumnType("boolean"),
            ColumnType("string", True),
            ColumnType("string"),
        ),
        frozenset({"NULL"}),
    )
    block = b'1,12.50,true,,x\n+02,NULL,N,"a ""q""",y\n3,.5,0,NULL,"two\nlines"\n4,"7",yes,z,""\n'
    values, lines = encode(block, types)
    assert lines == [2, 3, 4, 6]
    assert [json.loads(v) for v in values] == [
        {
            "id": 1,
            "amount": 12.5,
            "active": True,
            "note": None,
            "name": "x",
            "_source_line": 2,
            "_source_file": SOURCE,
        },
        {
            "id": 2,
            "amount": None,
            "active": False,
            "note": 'a "q"',
            "name": "y",
            "_source_line": 3,
            "_source_file": SOURCE,
        },
        {
            "id": 3,
            "amount": 0.5,
            "active": False,
            "note": None,
            "name": "two\nlines",
            "_source_line": 4,
            "_source_file": SOURCE,
        },
        {
            "id": 4,
            "amount": 7,
            "active": True,
            "note": "z",
            "name": "",
            "_source_line": 6,
            "_source_file": SOURCE,
        },
    ]
    assert b'"amount":12.50,' in values[0]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (b"x,1.5,true,a,b\n", "not an integer"),
        (b"1,abc,true,a,b\n", "not a number"),
        (b"1,1.5,maybe,a,b\n", "not a boolean"),
        (b",1.5,true,a,b\n", "empty integer, not nullable"),
        (b'"1""",1.5,true,a,b\n', "a doubled quote in a typed field"),
    ],
)
def test_it_stops_before_a_row_that_does_not_fit(row: bytes, reason: str) -> None:
    types = RowTypes(
        ("id", "amount", "active", "note", "name"),
        (
            ColumnType("integer"),
            ColumnType("number"),
            ColumnType("boolean"),
            ColumnType("string", True),
            ColumnType("string"),
        ),
        frozenset(),
    )
    good = b"1,1.5,true,a,b\n"
    _values, lines = encode(good + row + good, types)
    assert lines == [2], reason


def test_bad_typed_arguments_are_refused() -> None:
    pieces, tail = typed_pieces(["a"], SOURCE)
    args = (b"1\n", 0, 2, 1, 10, b",", b'"', pieces, tail)
    with pytest.raises(TypeError, match="kinds must be bytes"):
        speedups.encode_block(*args, b"ii", ())
    with pytest.raises(ValueError, match="a kind is one of"):
        speedups.encode_block(*args, b"x", ())
    with pytest.raises(TypeError, match="nulls must be bytes"):
        speedups.encode_block(*args, b"i", ("NULL",))
    with pytest.raises(TypeError, match="9 or 11 arguments"):
        speedups.encode_block(*args, b"i")
