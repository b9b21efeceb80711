"""The keys and partitions made in C (``_speedups.value_keys``, ``Keyer.keys``) against the Python
reference (``Keyer.key`` and ``partitioning.partition_for``) and the Java client's answers
(tests/data/murmur2_java.json): every key there, every partition count there, and many values
as both encoders write them (quoted keys, quotes, commas, newlines, tabs, backslashes, control
characters, non-ASCII, empty fields, composite keys, typed fields)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest

from csv_to_kafka import keys as keys_module
from csv_to_kafka.keys import Keyer
from csv_to_kafka.partitioning import murmur2, partition_for
from csv_to_kafka.record import RecordEncoder
from csv_to_kafka.schema import ColumnType, RowTypes

speedups = pytest.importorskip("csv_to_kafka._speedups")

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "data" / "murmur2_java.json").read_text(encoding="utf-8")
)["keys"]
COUNTS = sorted({int(n) for entry in REFERENCE for n in entry["partition"]})
SOURCE = "s3://bucket/keys.csv"
FIELDS = [
    "",
    "a",
    "customer-42",
    'say "hi"',
    '"quoted"',
    "a,b",
    "line\nbreak",
    "cr\r\nlf",
    "tab\there",
    "back\\slash",
    "\\",
    '\\"',
    "nul\x00byte",
    "bell\x07",
    "Zoë",
    "日本語",
    "emoji 😀",
    "\u2028\u2029",
    "|",
    "  spaces  ",
    "12.50",
    "true",
    "null",
    "{}",
    "[1]",
]


def reference(keyer: Keyer, values: list[bytes]) -> tuple[list[bytes], list[int]]:
    want = [keyer.key(value) for value in values]
    return want, [partition_for(key, keyer.partitions) for key in want]


def test_c_murmur2_is_the_java_clients_on_every_reference_key() -> None:
    for entry in REFERENCE:
        key = bytes.fromhex(entry["key"])
        assert speedups.murmur2(key) == entry["murmur2"] == murmur2(key), entry["key"]
        for count, partition in entry["partition"].items():
            assert (speedups.murmur2(key) & 0x7FFFFFFF) % int(count) == partition


@pytest.mark.parametrize("count", COUNTS)
def test_value_keys_gives_the_java_partition_of_every_text_key(count: int) -> None:
    texts = []
    for entry in REFERENCE:
        try:
            texts.append((bytes.fromhex(entry["key"]).decode(), entry))
        except UnicodeDecodeError:
            continue  # not a field's text (a key is UTF-8): murmur2 itself is checked above
    assert len(texts) > 10
    values = [orjson.dumps({"k": text, "_source_line": 2}) for text, _entry in texts]
    found, partitions = speedups.value_keys(values, (b'"k"',), b"|", count, False)
    assert found == [text.encode() for text, _entry in texts]
    assert partitions == [entry["partition"][str(count)] for _text, entry in texts]


def _rows(rng: random.Random, width: int, count: int) -> list[list[str]]:
    return [[rng.choice(FIELDS) + rng.choice(["", str(rng.randrange(1000))]) for _ in range(width)]
            for _ in range(count)]  # fmt: skip


@pytest.mark.parametrize("separator", ["|", "", "::", "é", "\n"])
@pytest.mark.parametrize("count", COUNTS)
def test_c_keys_equal_the_reference_on_encoded_rows(separator: str, count: int) -> None:
    rng = random.Random(f"{separator}-{count}")
    header = ["id", "customer", "région", 'we"ird', "amount"]
    encoder = RecordEncoder(header, SOURCE, 1 << 20)
    rows = _rows(rng, len(header), 300)
    values = encoder.encode_rows(rows, list(range(2, 302)))
    for columns in (["customer"], ["région", 'we"ird'], ["amount", "id", "customer"]):
        keyer = Keyer(header, columns, separator, count, source=SOURCE)
        got = keyer.keys(values)
        assert got == reference(keyer, values)
        # every value is the encoder's: the C scan answered for all of them
        assert (
            None
            not in speedups.value_keys(values, keyer._names, separator.encode(), count, False)[0]
        )
        joined = [separator.join(row[header.index(c)] for c in columns).encode() for row in rows]
        assert got[0] == joined


def test_c_keys_equal_the_reference_on_the_c_loops_values() -> None:
    header = ["id", "customer", "note"]
    encoder = RecordEncoder(header, SOURCE, 1 << 20)
    text = (
        'id,customer,note\n1,"a ""quoted"" one",x\n2,"comma, inside",y\n'
        '3,"new\nline",z\n4,,empty\n5,Zoë,ü\n6,"tab\tin",t\n'
    ).encode()
    start = text.index(b"\n") + 1
    values, _lines, end, _line, _longest = speedups.encode_block(
        text, start, len(text), 1, 100, b",", b'"', encoder.pieces, encoder.tail
    )
    assert end == len(text)
    assert len(values) == 6
    keyer = Keyer(header, ["customer"], "|", 6, source=SOURCE)
    found, partitions = keyer.keys(values)
    assert (found, partitions) == reference(keyer, values)
    assert found == [b'a "quoted" one', b"comma, inside", b"new\nline", b"", "Zoë".encode(),
                     b"tab\tin"]  # fmt: skip


def test_typed_keys_equal_the_reference() -> None:
    rng = random.Random(15)
    header = ["n", "x", "b", "s", "i"]
    types = RowTypes(
        tuple(header),
        (
            ColumnType("number", nullable=True),
            ColumnType("integer", nullable=True),
            ColumnType("boolean", nullable=True),
            ColumnType("string", nullable=True),
            ColumnType("integer"),
        ),
        frozenset({"NULL"}),
    )
    encoder = RecordEncoder(header, SOURCE, 1 << 20, types=types)
    numbers = ["", "12.50", "-0.0", "+7", "1e5", "1.5E-3", "007", "NULL", ".5"]
    integers = ["", "0", "-12", "+007", "123456789012345678901234567890", "NULL"]
    booleans = ["", "yes", "N", "true", "F", "NULL"]
    rows = [
        [rng.choice(numbers), rng.choice(integers), rng.choice(booleans), rng.choice(FIELDS),
         str(rng.randrange(-50, 50))]
        for _ in range(400)
    ]  # fmt: skip
    values = encoder.encode_rows(rows, list(range(2, 402)))
    assert len(values) == len(rows)
    for columns in (["n"], ["x", "b"], ["s", "n", "x", "b", "i"]):
        for count in COUNTS:
            keyer = Keyer(header, columns, "|", count, source=SOURCE, typed=True)
            assert keyer.keys(values) == reference(keyer, values)
    keyer = Keyer(header, ["n", "b", "x"], ",", 6, source=SOURCE, typed=True)
    value = b'{"n":12.50,"x":null,"b":true,"s":"a","i":-3,"_source_line":2}'
    assert keyer.keys([value])[0] == [b"12.50,true,"]


@pytest.mark.parametrize(
    "value",
    [
        b'{"k":"caf\\u00e9"}',
        b'{"k":"\\ud83d\\ude00 smile"}',
        b'{"k":"a\\/b\\b\\f\\r"}',
        b'{"k":"\\u0000"}',
        b'{"k":"first","k":"last"}',
        b'{"other":{"k":"nested"},"k":"flat"}',
        b'{"k":"x", "other":1}',
        b'{"k":true}',
        b'{"k":false,"z":null}',
        b'{"k":null}',
        b'{"k":12}',
        b'{"k":-1.5e3}',
        b'{"k":1E400}',
        b'{"k":"\\ud800"}',
        b'{"k":"\\udc00x"}',
        b'{"k":"bad\xffutf8"}',
        b'{"k":"over\xc0\xaflong"}',
        b'{"k":"raw\ncontrol"}',
        b'{"k":"unterminated}',
        b'{"k":"x"} ',
        b'{"k":"x"}trailing',
        b'{"k":01}',
        b'{"k":NaN}',
        b'{"k":[1]}',
        b'{"j":"no key column"}',
        b"{}",
        b"[]",
        b'"just a string"',
        b"",
        b"{",
    ],
)
@pytest.mark.parametrize("typed", [False, True])
def test_c_keys_answer_as_the_reference_or_leave_it_to_it(value: bytes, *, typed: bool) -> None:
    """Hand-written JSON, some of it no record of ours: where C answers, it is the reference's
    answer; where it does not (None), Keyer.keys asks the reference, which may raise."""
    keyer = Keyer(["k"], ["k"], "|", 12, source=SOURCE, typed=typed)
    try:
        want: list[bytes] | None = [keyer.key(value)]
    except (ValueError, KeyError, TypeError):  # the reference refuses it (foreign to verify)
        want = None
    found, partitions = speedups.value_keys([value], (b'"k"',), b"|", 12, typed)
    if found[0] is not None:
        assert found == want
        assert partitions == [partition_for(found[0], 12)]
    else:
        assert partitions == [-1]
    if want is None:
        with pytest.raises((ValueError, KeyError, TypeError)):
            keyer.keys([value])
    else:
        assert keyer.keys([value]) == (want, [partition_for(want[0], 12)])


def test_keys_without_the_extension_are_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    header = ["id", "customer"]
    values = RecordEncoder(header, SOURCE, 1 << 20).encode_rows(
        [["1", "Zoë"], ["2", ""], ["3", 'a "b"']], [2, 3, 4]
    )
    keyer = Keyer(header, ["customer", "id"], "|", 7, source=SOURCE)
    with_c = keyer.keys(values)
    monkeypatch.setattr(keys_module, "_value_keys", None)
    assert keyer.keys(values) == with_c == reference(keyer, values)


def test_value_keys_refuses_bad_arguments() -> None:
    with pytest.raises(TypeError):
        speedups.value_keys((b"{}",), (b'"k"',), b"|", 1, False)  # a tuple, not a list
    with pytest.raises(TypeError):
        speedups.value_keys(["{}"], (b'"k"',), b"|", 1, False)  # str values
    with pytest.raises(ValueError, match="at least one partition"):
        speedups.value_keys([], (b'"k"',), b"|", 0, False)
    with pytest.raises(ValueError, match="key columns"):
        speedups.value_keys([], (), b"|", 1, False)
    with pytest.raises(TypeError):
        speedups.murmur2("text")


@pytest.mark.parametrize("with_c", [True, False])
def test_keys_not_strict_give_none_for_what_is_not_a_record(
    monkeypatch: pytest.MonkeyPatch, *, with_c: bool
) -> None:
    """verify reads what a topic holds: a value that is no record of the job has no key."""
    if not with_c:
        monkeypatch.setattr(keys_module, "_value_keys", None)
    keyer = Keyer(["k"], ["k"], "|", 6, source=SOURCE)
    values = [
        b'{"k":"a"}',
        b"not json",
        b'{"j":"b"}',
        b"[1]",
        b'{"k": "spaced"}',
        b'{"k":"\\ud800"}',
    ]
    found, partitions = keyer.keys(values, strict=False)
    assert found == [b"a", None, None, None, b"spaced", None]
    assert partitions == [partition_for(b"a", 6), -1, -1, -1, partition_for(b"spaced", 6), -1]
    with pytest.raises(ValueError):
        keyer.keys(values)
