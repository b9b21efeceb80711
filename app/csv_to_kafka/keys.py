"""Message keys and their partitions: what ``--key-column`` makes of a record.

A record's key is the UTF-8 text of its key columns' fields joined by ``--key-separator``
(default ``|``); an empty field is an empty part, and a row whose key fields are all empty has
the empty key (a key like any other, not a missing one: Java's partitioner hashes an empty array
too). Its partition is ``partitioning.partition_for(key, partitions)``, the Java client's
choice, computed here and given to the client explicitly, so both clients agree with Java.

The keys are computed where the values are made (the parser process), from the values
themselves: a value is a JSON object whose fields are the row's fields, so the key reads the
same whichever path (the C loop or the Python encoder) made the value. With ``--schema``, a
typed key column's part is its JSON text as the record holds it: ``12.50`` stays ``12.50``,
``+007`` is ``7`` (the record's canonical integer), ``yes`` is ``true``, and null an empty part.

``Keyer.key`` is the reference. ``Keyer.keys``, the copy's path, reads a batch's values in C
(``_speedups.value_keys``: the JSON scan, the join and Kafka's murmur2, without a Python object
per field); a value the C scan is not sure of (anything but the flat objects the encoder writes)
is left to ``key``, as is every value when the extension is not built.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, overload

import orjson

from .errors import BadInputError
from .partitioning import partition_for

try:
    from . import _speedups
except ImportError:  # pragma: no cover (built without a C compiler: keys are made in Python)
    _speedups = None  # type: ignore[assignment]  # (the fallback)
_value_keys = None if _speedups is None else _speedups.value_keys

__all__ = ["Keyer"]


class Keyer:
    """Keys and partitions of record values, for one header."""

    def __init__(
        self,
        header: Sequence[str],
        columns: Sequence[str],
        separator: str,
        partitions: int,
        *,
        source: str,
        typed: bool = False,
    ) -> None:
        missing = [name for name in columns if name not in header]
        if missing:
            raise BadInputError(
                f"key column {missing[0]!r} is not in the header (its columns: "
                f"{', '.join(map(repr, header))}); check --key-column",
                source=source,
                line=1,
                byte_offset=0,
            )
        if partitions < 1:
            raise ValueError(f"a topic has at least one partition, got {partitions}")
        self.columns = tuple(columns)
        self.separator = separator
        self.partitions = partitions
        self.typed = typed
        self._loads = _typed_loads if typed else orjson.loads
        # For the C scan: each key column's name as the encoder writes it, the separator's bytes.
        self._names = tuple(orjson.dumps(name) for name in self.columns)
        self._separator = separator.encode()

    def key(self, value: bytes) -> bytes:
        """The key of one record value."""
        fields = self._loads(value)
        return self.separator.join(_text(fields[name]) for name in self.columns).encode()

    @overload
    def keys(
        self, values: Sequence[bytes], *, strict: Literal[True] = True
    ) -> tuple[list[bytes], list[int]]: ...

    @overload
    def keys(
        self, values: Sequence[bytes], *, strict: Literal[False]
    ) -> tuple[list[bytes | None], list[int]]: ...

    def keys(
        self, values: Sequence[bytes], *, strict: bool = True
    ) -> tuple[list[bytes], list[int]] | tuple[list[bytes | None], list[int]]:
        """The keys of ``values`` and their partitions. A value that is not a record (not a
        JSON object, or one without a key column) raises as ``key`` does; with ``strict``
        False (verify, reading what a topic holds), its key is None and its partition -1."""
        n = self.partitions
        if _value_keys is None or not self.columns:
            if not strict:
                return self._tolerant([None] * len(values), [-1] * len(values), values)
            keys = [self.key(value) for value in values]
            return keys, [partition_for(key, n) for key in keys]
        found, partitions = _value_keys(
            values if isinstance(values, list) else list(values),
            self._names,
            self._separator,
            n,
            self.typed,
        )
        if None in found:  # values the C scan left to the reference
            if not strict:
                return self._tolerant(found, partitions, values)
            for index, key in enumerate(found):
                if key is None:
                    want = found[index] = self.key(values[index])
                    partitions[index] = partition_for(want, n)
        return found, partitions

    def _tolerant(
        self, found: list[bytes | None], partitions: list[int], values: Sequence[bytes]
    ) -> tuple[list[bytes | None], list[int]]:
        """The reference's keys where ``found`` has None, None where it raises."""
        for index, key in enumerate(found):
            if key is None:
                try:
                    want = self.key(values[index])
                except (ValueError, KeyError, TypeError):  # JSONDecodeError is a ValueError
                    continue
                found[index] = want
                partitions[index] = partition_for(want, self.partitions)
        return found, partitions


def _typed_loads(value: bytes) -> Any:
    """A typed value with each number as its own text (no float or big-int round trip)."""
    return json.loads(value, parse_float=str, parse_int=str)


def _text(field: object) -> str:
    """A field's text: the string itself (untyped values carry strings)."""
    if isinstance(field, str):
        return field
    if field is None:
        return ""
    return orjson.dumps(field).decode()
