"""--schema wired into the copy (issue 15, part 3): parse_rows + ready_batches with a typed
encoder, the C loop against the Python path on random files, and a misfit placed and named."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from csv_to_kafka import source
from csv_to_kafka._parse_process import (
    ReadyBatch,
    _error_from_json,
    _error_to_json,
    ready_batches,
)
from csv_to_kafka.errors import ConfigError, TypeMisfitError
from csv_to_kafka.record import RecordEncoder
from csv_to_kafka.schema import parse_schema, read_schema
from csv_to_kafka.source import parse_rows, split_header

from .test_speedups_typed import FIELDS, KINDS, NULLS, reference

SOURCE = "s3://bucket/typed.csv"


def schema_of(columns: dict[str, Any], **top: Any) -> str:
    return json.dumps({"type": "object", "properties": columns, **top})


def copy(
    data: bytes,
    schema: str,
    nulls: tuple[str, ...] = (),
    batch_rows: int = 1000,
    *,
    tolerate: bool = False,
    chunk: int = 0,
) -> Iterator[ReadyBatch]:
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    header, chunks = split_header(iter(pieces), source=SOURCE)
    types = parse_schema(schema).bind(header.names, nulls)
    encoder = RecordEncoder(header.names, SOURCE, 1_000_000, types=types)
    batches = parse_rows(
        chunks,
        source=SOURCE,
        start_offset=header.data_offset,
        start_line=header.data_line,
        expected_fields=len(header.names),
        batch_rows=batch_rows,
        encoder=encoder,
        tolerate=tolerate,
    )
    return ready_batches(batches, encoder)


TYPED = schema_of(
    {
        "id": {"type": "integer"},
        "amount": {"type": ["number", "null"]},
        "ok": {"type": "boolean"},
    }
)


def test_typed_values_in_the_records() -> None:
    data = b'id,amount,ok,name\n1,12.50,yes,x\n+007,,0,"q,"\n3,NA,F,\n'
    values = [v for ready in copy(data, TYPED, ("NA",)) for v in ready.values]
    assert values[0].startswith(b'{"id":1,"amount":12.50,"ok":true,"name":"x"')
    assert [orjson.loads(v) for v in values][1:] == [
        {"id": 7, "amount": None, "ok": False, "name": "q,", "_source_line": 3,
         "_source_file": SOURCE},
        {"id": 3, "amount": None, "ok": False, "name": "", "_source_line": 4,
         "_source_file": SOURCE},
    ]  # fmt: skip


@pytest.mark.parametrize("quoted", [False, True])
def test_a_misfit_stops_before_its_row_naming_the_column(quoted: bool) -> None:
    bad = b'"x"' if quoted else b"x"
    data = b"id,amount,ok,name\n1,1,t,a\n2,2,f,b\n" + bad + b",3,t,c\n4,4,t,d\n"
    got: list[bytes] = []
    with pytest.raises(TypeMisfitError) as err:
        for ready in copy(data, TYPED):
            got += ready.values
            assert ready.next_line == 4
            assert ready.next_offset == data.index(bad + b",3")
    assert len(got) == 2
    assert err.value.column == "id"
    assert err.value.kind == "type"
    assert err.value.line == 4
    assert err.value.byte_offset == data.index(bad + b",3")
    assert err.value.exit_code == 3
    assert "column 'id': 'x' is not an integer" in str(err.value)
    again = _error_from_json(_error_to_json(err.value))
    assert isinstance(again, TypeMisfitError)
    assert again.column == "id"
    assert str(again) == str(err.value)


def random_file(rng: random.Random, width: int, rows: int) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([f"c{i}" for i in range(width)])
    for _ in range(rows):
        writer.writerow([rng.choice(FIELDS) for _ in range(width)])
    return out.getvalue().encode()


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("fast", [True, False])
def test_the_copy_equals_the_slow_reference_on_random_files(
    seed: int, fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random kinds and fields, with (fast) and without the C loop: the values equal the
    reference's, row for row, up to the first misfit, which is raised at its line."""
    if not fast:
        monkeypatch.setattr(source, "_encode_block", None)
    rng = random.Random(seed)
    width = rng.randint(1, 5)
    columns = {
        f"c{i}": {"type": [kind, "null"] if rng.random() < 0.5 else kind}
        for i, kind in enumerate(rng.choice(KINDS) for _ in range(width))
    }
    data = random_file(rng, width, rng.randint(1, 60))
    nulls = NULLS if rng.random() < 0.7 else ()
    header, _chunks = split_header(iter([data]), source=SOURCE)
    types = parse_schema(schema_of(columns)).bind(header.names, nulls)
    reader = csv.reader(io.StringIO(data.decode(), newline="\n"))
    next(reader)
    rows, lines, line = [], [], 2
    for row in reader:
        rows.append(row)
        lines.append(line)
        line = reader.line_num + 1
    want = reference(rows, lines, types)
    got: list[bytes] = []
    misfit = None
    try:
        for ready in copy(data, schema_of(columns), nulls, batch_rows=rng.choice([1, 7, 1000])):
            got += ready.values
    except TypeMisfitError as err:
        misfit = err
    assert got == want
    assert (misfit is None) == (len(want) == len(rows))
    if misfit is not None:
        assert misfit.line == lines[len(want)]


def test_read_schema_from_a_file(tmp_path: Any) -> None:
    path = tmp_path / "s.json"
    path.write_text(TYPED)
    assert read_schema(str(path)).columns["id"].kind == "integer"
    with pytest.raises(ConfigError, match="cannot read it"):
        read_schema(str(tmp_path / "missing.json"))
    path.write_bytes(b"\xff{")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_schema(str(path))
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="is not JSON"):
        read_schema(str(path))


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (schema_of({"id": {"type": "integer"}}, required=["ident"]), "required column 'ident'"),
        (schema_of({"id": {"type": "integer"}}, additionalProperties=False), "column 'name'"),
        (schema_of({"id": {"type": "date"}}), "date"),
        (schema_of({"id": {"type": "integer", "minimum": 0}}), "minimum"),
    ],
)
def test_schema_mistakes_are_config_errors(schema: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        list(copy(b"id,name\n1,a\n", schema))


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("quoted", [False, True])
def test_a_misfit_under_tolerate_is_a_type_reject_and_the_rows_after_it_follow(
    fast: bool, quoted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setattr(source, "_encode_block", None)
    bad = b'"x"' if quoted else b"x"
    data = b"id,amount,ok,name\n1,1,t,a\n2,2,f,b\n" + bad + b',3,t,"c\nd"\n4,4,t,d\n5,y,t,e\n'
    got = list(copy(data, TYPED, tolerate=True))
    values = [orjson.loads(v) for ready in got for v in ready.values]
    assert [v["id"] for v in values] == [1, 2, 4]
    rejects = [r for ready in got for r in ready.rejects]
    assert [(r.line, r.reason, r.raw) for r in rejects] == [
        (4, source.TYPE, bad + b',3,t,"c\nd"'),
        (7, source.TYPE, b"5,y,t,e"),
    ]
    assert rejects[0].offset == data.index(bad + b",3")
    assert rejects[0].next_line == 6
    assert rejects[0].end_offset == data.index(b"4,4,t")
    assert "column 'id': 'x' is not an integer (--schema)" in rejects[0].message
    assert "column 'amount': 'y' is not a number" in rejects[1].message
    assert got[-1].next_offset == len(data)
    assert got[-1].next_line == 8


@pytest.mark.parametrize("seed", range(40))
def test_under_tolerate_the_c_loop_and_the_python_path_agree_with_the_reference(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random typed files under tolerate, in small chunks: the good values are the reference's
    values of the rows that fit, and every row that does not fit is a TYPE reject at its line,
    with and without the C loop."""
    rng = random.Random(seed)
    width = rng.randint(1, 5)
    columns = {
        f"c{i}": {"type": [kind, "null"] if rng.random() < 0.5 else kind}
        for i, kind in enumerate(rng.choice(KINDS) for _ in range(width))
    }
    data = random_file(rng, width, rng.randint(1, 200))
    nulls = NULLS if rng.random() < 0.7 else ()
    header, _chunks = split_header(iter([data]), source=SOURCE)
    types = parse_schema(schema_of(columns)).bind(header.names, nulls)
    reader = csv.reader(io.StringIO(data.decode(), newline="\n"))
    next(reader)
    want: list[bytes] = []
    want_bad: list[int] = []
    line = 2
    for row in reader:
        fits = reference([row], [line], types)
        want += fits
        if not fits:
            want_bad.append(line)
        line = reader.line_num + 1
    batch_rows = rng.choice([1, 7, 1000])
    chunk = rng.choice([0, 64, 257])
    results = []
    for fast in (True, False):
        with monkeypatch.context() as patch:
            if not fast:
                patch.setattr(source, "_encode_block", None)
            got = list(copy(data, schema_of(columns), nulls, batch_rows, tolerate=True,
                            chunk=chunk))  # fmt: skip
        values = [v for ready in got for v in ready.values]
        rejects = [r for ready in got for r in ready.rejects]
        assert values == want, fast
        assert [r.line for r in rejects] == want_bad, fast
        assert {r.reason for r in rejects} <= {source.TYPE}
        assert all(data[r.offset : r.end_offset] == r.raw + b"\n" for r in rejects)
        results.append([(r.line, r.offset, r.end_offset, r.raw) for r in rejects])
    assert results[0] == results[1]
