"""Typed values from a JSON Schema (draft 2020-12) of the row object; a schema inferred from data.

A schema names columns and their JSON types; a column it lists with ``integer``, ``number``,
``boolean`` or ``string`` (optionally with ``"null"`` in a type list) becomes a typed JSON value,
and a column it does not list stays a string, as without a schema::

    {"$schema": "https://json-schema.org/draft/2020-12/schema",
     "type": "object",
     "properties": {"id": {"type": "integer"},
                    "amount": {"type": ["number", "null"]},
                    "active": {"type": "boolean"}},
     "required": ["id", "amount"],
     "additionalProperties": false}

The rules (each field is its text as the parser reads it, never trimmed):

- ``integer``: an optional sign and decimal digits, written as canonical digits (``+007`` -> ``7``,
  ``-0`` -> ``0``).
- ``number``: a decimal number, with an optional fraction and exponent, written with the field's
  own digits: no float round trip, so ``12.50`` stays ``12.50`` and ``0.1`` never becomes
  ``0.1000000000000000055``. Only what JSON cannot hold is mended: a leading ``+`` goes, leading
  zeros of the integer part go (``007.5`` -> ``7.5``), a bare fraction gets its zero (``.5`` ->
  ``0.5``) and a bare point loses it (``5.`` -> ``5``). ``NaN``, ``Infinity``, ``1,000`` and hex
  are not numbers.
- ``boolean``: ``true``/``false``, ``t``/``f``, ``yes``/``no``, ``y``/``n``, ``1``/``0``, any case.
- ``string``: the field as it is.
- ``null``: in a nullable column (``"null"`` in its type list), an empty field and any of the job's
  null tokens (``--null-value``) are ``null``. In a column that is not nullable they are a value
  like any other: not an integer, a number or a boolean, and the empty string for a string.

A field that does not fit its column's type is a bad row naming the column (``FieldTypeError``,
which the encoder turns into the row's error with its position). Against the header: a column
in ``required`` must be in the header, and with ``additionalProperties: false`` every header
column must be in ``properties``; a listed column that is neither required nor in the header is
allowed (it can never appear). Any other keyword is refused, so that a schema never promises a
check (``minimum``, ``pattern``, ``format``, ...) that the copy does not make.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import ConfigError

__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "KINDS",
    "ColumnType",
    "FieldTypeError",
    "RowTypes",
    "Schema",
    "SchemaSample",
    "infer_schema",
    "parse_schema",
    "read_schema",
]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
STRING, INTEGER, NUMBER, BOOLEAN = "string", "integer", "number", "boolean"
KINDS = (STRING, INTEGER, NUMBER, BOOLEAN)
NULL = "null"

# Keywords that only annotate: accepted anywhere, never acted on.
_ANNOTATIONS = frozenset(
    {"$comment", "title", "description", "examples", "default", "deprecated", "readOnly"}
)
_TOP_KEYWORDS = (
    frozenset({"$schema", "$id", "type", "properties", "required", "additionalProperties"})
    | _ANNOTATIONS
)
_COLUMN_KEYWORDS = frozenset({"type"}) | _ANNOTATIONS

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([eE][+-]?[0-9]+)?")


class FieldTypeError(ValueError):
    """A field that does not fit its column's type."""

    def __init__(self, column: str, kind: str, text: str) -> None:
        self.column = column
        self.kind = kind
        self.text = text
        shown = text if len(text) <= 40 else text[:37] + "..."
        what = "an empty field" if text == "" else repr(shown)
        super().__init__(f"column {column!r}: {what} is not {_article(kind)} {kind}")


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


@dataclass(frozen=True)
class ColumnType:
    kind: str
    nullable: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"type": [self.kind, NULL] if self.nullable else self.kind}


@dataclass(frozen=True)
class Schema:
    """The parts of a row schema that the copy acts on."""

    columns: Mapping[str, ColumnType]
    required: tuple[str, ...] = ()
    additional: bool = True
    origin: str = "the schema"

    def bind(self, header: Sequence[str], null_values: Iterable[str] = ()) -> RowTypes:
        """The typing of rows under ``header``; ConfigError if the schema does not fit it."""
        names = set(header)
        missing = [name for name in self.required if name not in names]
        if missing:
            raise ConfigError(
                f"{self.origin}: required column {missing[0]!r} is not in the header "
                f"({', '.join(header)})"
            )
        if not self.additional:
            extra = [name for name in header if name not in self.columns]
            if extra:
                raise ConfigError(
                    f"{self.origin}: the header has column {extra[0]!r}, which the schema does "
                    "not list, and additionalProperties is false"
                )
        types = [self.columns.get(name, ColumnType(STRING)) for name in header]
        return RowTypes(tuple(header), tuple(types), frozenset(null_values))


class RowTypes:
    """Each column's JSON value for a field: ``value(index, text)`` gives its JSON bytes."""

    def __init__(
        self, header: tuple[str, ...], types: tuple[ColumnType, ...], null_values: frozenset[str]
    ) -> None:
        self.header = header
        self.types = types
        self.null_values = null_values
        self._convert: list[Callable[[str], bytes]] = [
            _converter(name, column, null_values)
            for name, column in zip(header, types, strict=True)
        ]

    @property
    def typed(self) -> bool:
        """Whether any column is more than a plain string."""
        return any(t.kind != STRING or t.nullable for t in self.types)

    @property
    def kinds(self) -> bytes:
        """A letter per column for ``_speedups.encode_block``: s(tring), i(nteger), n(umber),
        b(oolean); upper case if nullable."""
        return bytes(ord(t.kind[0].upper() if t.nullable else t.kind[0]) for t in self.types)

    def value(self, index: int, text: str) -> bytes:
        """The JSON of field ``index``; FieldTypeError if it does not fit its type."""
        return self._convert[index](text)

    def values(self, row: Sequence[str]) -> list[bytes]:
        return [convert(text) for convert, text in zip(self._convert, row, strict=True)]


def _string_json(text: str) -> bytes:
    return orjson.dumps(text)  # as RecordEncoder writes a string field


def _converter(
    name: str, column: ColumnType, null_values: frozenset[str]
) -> Callable[[str], bytes]:
    kind = column.kind
    nulls = (null_values | {""}) if column.nullable else frozenset()

    def fail(text: str) -> bytes:
        raise FieldTypeError(name, kind, text)

    if kind == STRING:
        typed = _string_json
    elif kind == INTEGER:

        def typed(text: str) -> bytes:
            if not _INTEGER.fullmatch(text):
                return fail(text)
            digits = text.lstrip("+-").lstrip("0") or "0"  # no int(): digits of any length
            return (("-" if text[0] == "-" and digits != "0" else "") + digits).encode()

    elif kind == NUMBER:

        def typed(text: str) -> bytes:
            number = _json_number(text)
            return number if number is not None else fail(text)

    else:

        def typed(text: str) -> bytes:
            lowered = text.lower() if text.isascii() else text  # ASCII spellings only
            if lowered in _TRUE:
                return b"true"
            if lowered in _FALSE:
                return b"false"
            return fail(text)

    if not nulls:
        return typed

    def nullable(text: str) -> bytes:
        return b"null" if text in nulls else typed(text)

    return nullable


def _json_number(text: str) -> bytes | None:
    """``text`` as a JSON number with its own digits, or None if it is not a decimal number."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    sign, whole, fraction, exponent = match.groups()
    if not whole and not fraction:  # "", "+", ".", "e5"
        return None
    whole = whole.lstrip("0") or "0"
    number = ("-" if sign == "-" else "") + whole
    if fraction:
        number += "." + fraction
    return (number + (exponent or "")).encode()


# -- reading a schema ------------------------------------------------------------------------------


def read_schema(location: str) -> Schema:
    """The schema at ``location``: a file, or ``s3://BUCKET/KEY`` read with the standard AWS
    configuration; ConfigError (exit 2) naming the location if it cannot be read or parsed."""
    origin = f"--schema {location}"
    return parse_schema(_schema_text(location), origin)


def schema_digest(location: str) -> str:
    """The SHA-256 (hex) of the schema at ``location`` as JSON with sorted keys and no spaces:
    the same for the same document wherever it is stored and however it is laid out (a job's
    checkpoint keeps it: a resumed run must type its values with the same schema)."""
    read_schema(location)  # the same errors as a run's (exit 2, naming the problem)
    document = json.loads(_schema_text(location))
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _schema_text(location: str) -> str:
    origin = f"--schema {location}"
    if location.startswith("s3://"):
        import botocore.exceptions  # noqa: PLC0415 (only for a schema in S3)

        from .source import _s3_client  # noqa: PLC0415

        bucket, _, key = location[len("s3://") :].partition("/")
        try:
            body = _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as err:
            raise ConfigError(f"{origin}: cannot read it: {err}") from err
    else:
        try:
            with open(location, "rb") as file:
                body = file.read()
        except OSError as err:
            raise ConfigError(f"{origin}: cannot read it: {err.strerror}") from err
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{origin} is not UTF-8 text") from err


def parse_schema(text: str, origin: str = "the schema") -> Schema:
    """The ``Schema`` in a JSON Schema document; ConfigError naming the problem otherwise."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{origin} is not JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from err
    if not isinstance(document, dict):
        raise ConfigError(
            f"{origin} must be a JSON object (a JSON Schema), not {_json_kind(document)}"
        )
    dialect = document.get("$schema", DRAFT)
    if not isinstance(dialect, str) or dialect.rstrip("#") != DRAFT:
        raise ConfigError(f"{origin}: $schema must be {DRAFT} (draft 2020-12), got {dialect!r}")
    _refuse_unknown(document, _TOP_KEYWORDS, origin, "the schema")
    if document.get("type", "object") != "object":
        raise ConfigError(f'{origin}: the row is an object: "type" must be "object"')
    properties = document.get("properties", {})
    if not isinstance(properties, dict):
        raise ConfigError(f'{origin}: "properties" must be an object of column schemas')
    columns = {name: _column(name, spec, origin) for name, spec in properties.items()}
    required = document.get("required", [])
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
        raise ConfigError(f'{origin}: "required" must be a list of column names')
    if len(set(required)) != len(required):
        raise ConfigError(f'{origin}: "required" names a column twice')
    additional = document.get("additionalProperties", True)
    if not isinstance(additional, bool):
        raise ConfigError(
            f'{origin}: "additionalProperties" must be true or false (a schema for the other '
            "columns is not supported: they are strings)"
        )
    return Schema(columns, tuple(required), additional, origin)


def _column(name: str, spec: Any, origin: str) -> ColumnType:
    where = f"column {name!r}"
    if not isinstance(spec, dict):
        raise ConfigError(
            f'{origin}: {where} must be described by an object, e.g. {{"type": "integer"}}'
        )
    _refuse_unknown(spec, _COLUMN_KEYWORDS, origin, where)
    if "type" not in spec:
        raise ConfigError(f'{origin}: {where} has no "type"')
    declared = spec["type"]
    names = declared if isinstance(declared, list) else [declared]
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ConfigError(f'{origin}: {where}: "type" must be a type name or a list of them')
    nullable = NULL in names
    kinds = [n for n in names if n != NULL]
    if len(kinds) != 1 or kinds[0] not in KINDS:
        raise ConfigError(
            f"{origin}: {where}: type {declared!r} is not supported: use one of "
            f'{", ".join(KINDS)}, optionally with "null" in a list (e.g. ["integer", "null"])'
        )
    return ColumnType(kinds[0], nullable)


def _refuse_unknown(
    spec: Mapping[str, Any], allowed: frozenset[str], origin: str, where: str
) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(
            f"{origin}: {where}: keyword {unknown[0]!r} is not supported (csv-to-kafka types "
            f"columns; it checks nothing beyond a value's type). Supported: "
            f"{', '.join(sorted(allowed - _ANNOTATIONS))}"
        )


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# -- inferring a schema ----------------------------------------------------------------------------

# How many data rows ``infer-schema`` reads unless told otherwise.
DEFAULT_SAMPLE_ROWS = 10_000
# The order in which a column's type is tried: the narrowest that fits every non-empty field.
# Booleans are inferred from true/false only: a column of 0s and 1s is more likely an integer.
_INFERRED = (INTEGER, NUMBER, BOOLEAN)
_INFER_BOOLEAN = frozenset({"true", "false"})


def infer_schema(header: Sequence[str], rows: Iterable[Sequence[str]]) -> dict[str, Any]:
    """A JSON Schema for rows under ``header``: each column the narrowest of integer, number,
    boolean (true/false) and string that fits every field; nullable where an empty field occurs.
    Every column is required (a CSV row has all its fields) and no other column is allowed."""
    sample = SchemaSample(header)
    sample.add(rows)
    return sample.schema()


class SchemaSample:
    """What ``infer_schema`` has learnt of the columns from the rows fed so far, without keeping
    the rows: fed object by object (``add``) or merged from samples taken apart (``merge``, a
    job's objects read side by side), the types only widen."""

    def __init__(self, header: Sequence[str]) -> None:
        self.header = tuple(header)
        self.rows = 0
        self._candidates = [set(_INFERRED) for _ in self.header]
        self._empty = [False] * len(self.header)
        self._seen = [False] * len(self.header)

    def add(self, rows: Iterable[Sequence[str]]) -> None:
        """Narrow the columns' types by ``rows`` (each with the header's field count)."""
        fits = {
            INTEGER: lambda text: _INTEGER.fullmatch(text) is not None,
            NUMBER: lambda text: _json_number(text) is not None,
            BOOLEAN: lambda text: text.lower() in _INFER_BOOLEAN,
        }
        candidates, empty, seen = self._candidates, self._empty, self._seen
        for row in rows:
            self.rows += 1
            for index, text in enumerate(row):
                if text == "":
                    empty[index] = True
                    continue
                seen[index] = True
                kinds = candidates[index]
                if kinds:
                    kinds.difference_update([kind for kind in kinds if not fits[kind](text)])

    def merge(self, other: SchemaSample) -> None:
        """Take in ``other``'s rows (a sample under the same header): a column fits a type only
        if it fits it in both, and is nullable if either saw an empty field."""
        if other.header != self.header:
            raise ValueError("samples of different headers cannot be merged")
        self.rows += other.rows
        for index in range(len(self.header)):
            self._candidates[index] &= other._candidates[index]
            self._empty[index] |= other._empty[index]
            self._seen[index] |= other._seen[index]

    def schema(self) -> dict[str, Any]:
        """The schema of the rows so far (a column with no value seen is a string)."""
        properties = {}
        for name, kinds, has_empty, has_value in zip(
            self.header, self._candidates, self._empty, self._seen, strict=True
        ):
            kind = next((k for k in _INFERRED if k in kinds), STRING) if has_value else STRING
            properties[name] = ColumnType(kind, nullable=has_empty).to_json()
        return {
            "$schema": DRAFT,
            "type": "object",
            "properties": properties,
            "required": list(self.header),
            "additionalProperties": False,
        }
