"""The decoder stage: detection by first bytes, every member/frame/stream read, bounded pieces,
and truncated or corrupt input as bad input at the compressed offset of the part that broke."""

from __future__ import annotations

import bz2
import gzip
import random
from collections.abc import Callable, Iterator

import pytest
import zstandard

from csv_to_kafka.decompress import Restarts, detect, open_decoded, skip_bytes
from csv_to_kafka.errors import BadInputError, ConfigError

TEXT = b"".join(
    b"%d,%s,%d\n" % (i, random.Random(i).randbytes(8).hex().encode(), i * 7) for i in range(60_000)
)
PARTS = [TEXT[:100_000], TEXT[100_000:700_000], TEXT[700_000:]]
Z = zstandard.ZstdCompressor(level=3, write_checksum=True)  # as the zstd CLI writes

STORED: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("gzip", lambda b: gzip.compress(b, 6, mtime=0)),
    "zstd": ("zstd", Z.compress),
    "bzip2": ("bzip2", bz2.compress),
}


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def decode(data: bytes, size: int = 512 * 1024, mode: str = "auto") -> tuple[str, bytes]:
    codec, out = open_decoded(chunked(data, size), mode, source="s3://b/k.csv")
    return codec, b"".join(out)


@pytest.mark.parametrize(
    ("first", "codec"),
    [
        (b"\x1f\x8b\x08", "gzip"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b"BZh9", "bzip2"),
        (b"id,name\n", "none"),
        (b"\x1f", "none"),
        (b"", "none"),
    ],
)
def test_detect_by_first_bytes(first: bytes, codec: str) -> None:
    assert detect(first) == codec


@pytest.mark.parametrize("name", list(STORED))
@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("size", [3, 1000, 512 * 1024])
def test_every_part_is_read_to_the_end(name: str, multi: bool, size: int) -> None:
    codec, compress = STORED[name]
    stored = b"".join(map(compress, PARTS)) if multi else compress(TEXT)
    assert decode(stored, size) == (codec, TEXT)
    assert decode(stored, size, mode=codec) == (codec, TEXT)


def test_a_plain_object_comes_back_as_its_own_chunks() -> None:
    chunks = [TEXT[:10], TEXT[10:100_000]]
    codec, out = open_decoded(iter(chunks), "auto", source="s3://b/k")
    got = list(out)
    assert codec == "none"
    assert got[0] is chunks[0]
    assert got[1] is chunks[1]


def test_an_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--input-compression"):
        open_decoded(iter([b"x"]), "lz4", source="s3://b/k")


def test_empty_inputs() -> None:
    assert decode(b"") == ("none", b"")
    assert decode(gzip.compress(b"")) == ("gzip", b"")
    assert decode(Z.compress(b"")) == ("zstd", b"")


@pytest.mark.parametrize("name", list(STORED))
def test_a_truncated_object_names_the_part_that_broke(name: str) -> None:
    _codec, compress = STORED[name]
    first = compress(PARTS[0])
    stored = first + compress(PARTS[1] + PARTS[2])
    cut = len(stored) - 100
    got: list[bytes] = []
    _codec, out = open_decoded(chunked(stored[:cut], 4096), "auto", source="s3://b/k.csv")
    with pytest.raises(BadInputError) as caught:
        got.extend(out)
    err = caught.value
    assert err.byte_offset == len(first)
    assert err.source == "s3://b/k.csv"
    assert f"ends at compressed byte {cut}" in str(err)
    assert "truncated" in str(err)
    assert TEXT.startswith(b"".join(got))
    assert len(b"".join(got)) > len(PARTS[0])  # the first part and more were decoded first


@pytest.mark.parametrize("name", list(STORED))
def test_corrupt_data_names_the_part_that_broke(name: str) -> None:
    _codec, compress = STORED[name]
    first = compress(PARTS[0])
    second = bytearray(compress(PARTS[1]))
    for i in range(len(second) // 2, len(second) // 2 + 64):
        second[i] ^= 0xA5
    with pytest.raises(BadInputError, match="corrupt") as caught:
        decode(first + bytes(second) + compress(PARTS[2]), 4096)
    assert caught.value.byte_offset == len(first)


def test_a_bomb_comes_out_in_bounded_pieces() -> None:
    size = 256 * 1024 * 1024
    for stored in (gzip.compress(b"\n" * size), Z.compress(b"\n" * size)):
        _codec, out = open_decoded(chunked(stored, 512 * 1024), "auto", source="s3://b/k")
        total = largest = 0
        for piece in out:
            total += len(piece)
            largest = max(largest, len(piece))
        assert total == size
        assert largest <= 32 * 1024 * 1024


def test_skip_bytes() -> None:
    assert b"".join(skip_bytes(iter([b"abc", b"def", b"gh"]), 4)) == b"efgh"
    assert b"".join(skip_bytes(iter([b"abc", b"def"]), 0)) == b"abcdef"
    assert b"".join(skip_bytes(iter([b"abc"]), 3)) == b""


@pytest.mark.parametrize("name", list(STORED))
def test_restarts_name_each_part_and_decoding_can_start_there(name: str) -> None:
    _codec, compress = STORED[name]
    stored_parts = [compress(part) for part in PARTS]
    stored = b"".join(stored_parts)
    restarts = Restarts()
    codec, out = open_decoded(chunked(stored, 4096), "auto", source="s3://b/k", restarts=restarts)
    decoded = b""
    for piece in out:
        decoded += piece
        # The part that holds every decoded byte so far is known once the byte is decoded.
        _member, text = restarts.at(len(decoded) - 1)
        assert TEXT.startswith(decoded)
        assert text <= len(decoded) - 1
    second = len(stored_parts[0])
    assert _restart_of(stored, codec, len(PARTS[0]) + 5) == (second, len(PARTS[0]))
    # Decoding from the second part's compressed offset gives the text from its decoded offset.
    again = Restarts(second, len(PARTS[0]))
    _codec, tail = open_decoded(chunked(stored[second:], 1000), codec, source="s", restarts=again)
    assert b"".join(tail) == TEXT[len(PARTS[0]) :]
    assert again.at(len(PARTS[0]) + len(PARTS[1])) == (
        second + len(stored_parts[1]),
        len(PARTS[0]) + len(PARTS[1]),
    )


def _restart_of(stored: bytes, codec: str, decoded: int) -> tuple[int, int]:
    restarts = Restarts()
    _codec, out = open_decoded(chunked(stored, 4096), codec, source="s", restarts=restarts)
    for _piece in out:
        pass
    return restarts.at(decoded)


def test_a_plain_object_has_no_restarts() -> None:
    restarts = Restarts()
    _codec, out = open_decoded(iter([TEXT]), "auto", source="s", restarts=restarts)
    assert b"".join(out) == TEXT
    assert restarts.at(len(TEXT)) == (0, 0)


@pytest.mark.parametrize("name", list(STORED))
def test_stored_at_follows_the_decoder_through_the_stored_bytes(name: str) -> None:
    _codec, compress = STORED[name]
    stored = b"".join(compress(part) for part in PARTS)
    restarts = Restarts()
    _codec, out = open_decoded(chunked(stored, 4096), "auto", source="s", restarts=restarts)
    made, last = 0, 0
    for piece in out:
        made += len(piece)
        now = restarts.stored_at(made)
        assert last <= now <= len(stored)
        last = now
    assert restarts.compressed
    assert last == len(stored)
    plain = Restarts()
    _codec, out = open_decoded(iter([TEXT]), "auto", source="s", restarts=plain)
    assert not plain.compressed
    assert plain.stored_at(1234) == 1234
