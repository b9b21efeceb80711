"""schema.py: each typing rule, each schema mistake, and the inferred schema."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from csv_to_kafka.errors import ConfigError
from csv_to_kafka.schema import FieldTypeError, RowTypes, infer_schema, parse_schema

HEADER = ["id", "amount", "active", "note", "name"]
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "amount": {"type": ["number", "null"]},
        "active": {"type": "boolean", "description": "annotations are accepted"},
        "note": {"type": ["string", "null"]},
    },
    "required": ["id", "amount"],
}


def types(schema: dict[str, Any] | None = None, nulls: tuple[str, ...] = ()) -> RowTypes:
    return parse_schema(json.dumps(schema or SCHEMA)).bind(HEADER, nulls)


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("42", b"42"),
        ("+7", b"7"),
        ("007", b"7"),
        ("-0", b"0"),
        ("-12", b"-12"),
        ("123456789012345678901234567890", b"123456789012345678901234567890"),
    ],
)
def test_integer_writes_canonical_digits(text: str, written: bytes) -> None:
    assert types().value(0, text) == written


@pytest.mark.parametrize("text", ["", "1.0", "1e3", " 1", "1 ", "0x1F", "1_000", "one", "+", "--1"])
def test_integer_refuses_what_is_not_decimal_digits(text: str) -> None:
    with pytest.raises(FieldTypeError, match="column 'id'") as error:
        types().value(0, text)
    assert error.value.kind == "integer"


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("12.50", b"12.50"),
        ("0.1", b"0.1"),
        ("-3", b"-3"),
        ("1e5", b"1e5"),
        ("-1.0E-07", b"-1.0E-07"),
        ("+2.5", b"2.5"),
        ("007.5", b"7.5"),
        (".5", b"0.5"),
        ("5.", b"5"),
        ("-.25", b"-0.25"),
        ("3.141592653589793238462643383279", b"3.141592653589793238462643383279"),
    ],
)
def test_number_keeps_the_fields_digits(text: str, written: bytes) -> None:
    value = types().value(1, text)
    assert value == written
    json.loads(value)  # valid JSON


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-inf", "1,000", "0x10", "1.2.3", "e5", ".", "1e", "$5"]
)
def test_number_refuses_what_json_cannot_hold_as_a_number(text: str) -> None:
    with pytest.raises(FieldTypeError, match="is not a number"):
        types().value(1, text)


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("true", b"true"),
        ("TRUE", b"true"),
        ("t", b"true"),
        ("Yes", b"true"),
        ("y", b"true"),
        ("1", b"true"),
        ("false", b"false"),
        ("F", b"false"),
        ("no", b"false"),
        ("N", b"false"),
        ("0", b"false"),
    ],
)
def test_boolean_spellings(text: str, written: bytes) -> None:
    assert types().value(2, text) == written


@pytest.mark.parametrize("text", ["", "2", "on", "off", "truth", " true"])
def test_boolean_refuses_other_spellings(text: str) -> None:
    with pytest.raises(FieldTypeError, match="is not a boolean"):
        types().value(2, text)


def test_empty_fields_and_null_tokens_are_null_only_in_nullable_columns() -> None:
    row_types = types(nulls=("NULL", "\\N"))
    assert row_types.value(1, "") == b"null"
    assert row_types.value(1, "NULL") == b"null"
    assert row_types.value(1, "\\N") == b"null"
    assert row_types.value(3, "") == b"null"  # ["string", "null"]
    assert row_types.value(3, "NULL") == b"null"
    assert row_types.value(4, "") == b'""'  # not listed: a string, never null
    assert row_types.value(4, "NULL") == b'"NULL"'
    with pytest.raises(FieldTypeError, match="'NULL' is not an integer"):
        row_types.value(0, "NULL")  # not nullable: a token is a value like any other
    with pytest.raises(FieldTypeError):
        types().value(1, "NULL")  # a nullable column, but the job has no null tokens


def test_strings_are_written_as_the_record_encoder_writes_them() -> None:
    for text in ["plain", 'quote " and \\ backslash', "tab\tnew\nline", "é日本€", "\x00\x1f\x7f"]:
        assert types().value(4, text) == orjson.dumps(text)


def test_a_row_without_a_schema_entry_is_all_strings() -> None:
    row_types = parse_schema("{}").bind(["a", "b"])
    assert not row_types.typed
    assert row_types.values(["1", ""]) == [b'"1"', b'""']
    assert types().typed


def test_the_error_names_the_column_and_shows_a_long_field_shortened() -> None:
    with pytest.raises(FieldTypeError) as error:
        types().value(0, "x" * 100)
    assert str(error.value) == f"column 'id': '{'x' * 37}...' is not an integer"
    with pytest.raises(FieldTypeError, match="column 'id': an empty field is not an integer"):
        types().value(0, "")


# -- the schema against the header ---------------------------------------------------------------


def test_a_required_column_missing_from_the_header_is_a_config_error() -> None:
    schema = parse_schema(json.dumps({**SCHEMA, "required": ["id", "amount", "customer"]}))
    with pytest.raises(ConfigError, match="required column 'customer' is not in the header"):
        schema.bind(HEADER)


def test_additional_properties_false_refuses_a_header_column_the_schema_does_not_list() -> None:
    schema = parse_schema(json.dumps({**SCHEMA, "additionalProperties": False}))
    with pytest.raises(ConfigError, match="column 'name', which the schema does not list"):
        schema.bind(HEADER)
    schema.bind(HEADER[:4])  # every column listed: fine


def test_a_listed_column_that_is_not_required_may_be_absent() -> None:
    row_types = parse_schema(json.dumps(SCHEMA)).bind(["id", "amount"])
    assert row_types.values(["1", "2.5"]) == [b"1", b"2.5"]


# -- schema mistakes: configuration errors naming the problem -------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "is not JSON: Expecting property name enclosed in double quotes at line 1"),
        ("[]", "must be a JSON object"),
        (
            '{"$schema": "http://json-schema.org/draft-07/schema#"}',
            "must be https://json-schema.org/draft/2020-12/schema",
        ),
        ('{"type": "array"}', '"type" must be "object"'),
        (
            '{"properties": {"id": {"type": "integr"}}}',
            "column 'id': type 'integr' is not supported",
        ),
        ('{"properties": {"id": {"type": ["integer", "string"]}}}', "is not supported: use one of"),
        ('{"properties": {"id": {"type": "null"}}}', "is not supported"),
        ('{"properties": {"id": {"type": "object"}}}', "is not supported"),
        (
            '{"properties": {"id": {"type": "integer", "minimum": 0}}}',
            "column 'id': keyword 'minimum' is not supported",
        ),
        (
            '{"properties": {"id": {"type": "string", "format": "date"}}}',
            "keyword 'format' is not supported",
        ),
        ('{"properties": {"id": {}}}', "column 'id' has no \"type\""),
        ('{"properties": {"id": "integer"}}', "column 'id' must be described by an object"),
        ('{"properties": []}', '"properties" must be an object'),
        ('{"required": "id"}', '"required" must be a list of column names'),
        ('{"required": ["id", "id"]}', "names a column twice"),
        (
            '{"additionalProperties": {"type": "string"}}',
            '"additionalProperties" must be true or false',
        ),
        ('{"patternProperties": {}}', "the schema: keyword 'patternProperties' is not supported"),
        ('{"$schema": 7}', "$schema must be https://json-schema.org/draft/2020-12/schema"),
    ],
)
def test_schema_mistakes_are_config_errors_naming_the_problem(document: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^schema\.json") as error:
        parse_schema(document, origin="schema.json")
    assert error.value.exit_code == 2
    assert message in str(error.value)


# -- inferring ------------------------------------------------------------------------------------


def test_infer_schema_takes_the_narrowest_type_and_nullable_where_empty() -> None:
    header = ["id", "amount", "flag", "blank", "code", "bits", "mixed"]
    rows = [
        ["1", "1.50", "true", "", "007", "0", "1"],
        ["2", "", "FALSE", "", "x1", "1", "a"],
        ["-3", "2", "true", "", "42", "1", "2.5"],
    ]
    schema = infer_schema(header, rows)
    assert schema["properties"] == {
        "id": {"type": "integer"},
        "amount": {"type": ["number", "null"]},
        "flag": {"type": "boolean"},
        "blank": {"type": ["string", "null"]},
        "code": {"type": "string"},
        "bits": {"type": "integer"},  # 0 and 1 are integers unless the schema says boolean
        "mixed": {"type": "string"},
    }
    assert schema["required"] == header
    assert schema["additionalProperties"] is False
    # What infer_schema prints is a schema the copy accepts, and every sampled row fits it.
    row_types = parse_schema(json.dumps(schema)).bind(header)
    for row in rows:
        row_types.values(row)
