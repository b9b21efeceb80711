"""The decoder stage: an object's stored bytes -> its CSV text's bytes (issue 13).

``--input-compression`` (``INPUT_COMPRESSIONS``) names how an object is stored. ``auto`` (the
default) looks at the object's first bytes: gzip ``1f 8b``, zstd ``28 b5 2f fd``, bzip2 ``BZh``;
anything else is plain text. The first bytes win over the name: a gzip object named ``.csv``
(uploaded with ``Content-Encoding: gzip``) is read as gzip.

One registry maps a codec to its opener, as smart_open's ``compression.py`` does; each opener
imports its codec lazily and turns an ``Iterator[bytes]`` of stored bytes into one of decoded
bytes. Every codec reads the object to its end: all the members of a multi-member gzip (pigz,
bgzip, ``cat a.gz b.gz``), all the frames of a zstd object, all the streams of a concatenated
bzip2. Output comes in pieces of at most ``_OUT`` bytes (zstd: about that), so a small object
that decodes to gigabytes (a "bomb") never sits in memory whole.

A stream that is cut short, or data the codec rejects, is bad input (``BadInputError``, exit 3)
whose byte offset is the *compressed* offset, in the stored object, of the gzip member, zstd
frame or bzip2 stream that broke; everything decoded before the break is yielded first, so the
rows before it are committed.

A plain object costs nothing here: ``open_decoded`` hands back the S3 chunks themselves.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from .errors import BadInputError, ConfigError

__all__ = [
    "AUTO",
    "INPUT_COMPRESSIONS",
    "MAGIC_BYTES",
    "NO_COMPRESSION",
    "Restarts",
    "detect",
    "open_decoded",
    "skip_bytes",
]

NO_COMPRESSION = "none"
AUTO = "auto"  # from the object's first bytes (smart_open's INFER_FROM_EXTENSION, by content)
GZIP = "gzip"
ZSTD = "zstd"
BZIP2 = "bzip2"
INPUT_COMPRESSIONS = (AUTO, NO_COMPRESSION, GZIP, ZSTD, BZIP2)

# The first bytes of each stored format, most specific first.
_MAGIC: tuple[tuple[str, bytes], ...] = (
    (ZSTD, b"\x28\xb5\x2f\xfd"),
    (GZIP, b"\x1f\x8b"),
    (BZIP2, b"BZh"),
)
MAGIC_BYTES = max(len(magic) for _codec, magic in _MAGIC)
# Decoded bytes per piece, at most: the size of an S3 chunk, which the parser's blocks are cut
# to fit in the CPU's cache (source._READ_SIZE).
_OUT = 512 * 1024
# zstd's decompressobj has no output limit, so its input is fed in slices sized to make about
# _OUT each: from 1 KiB (a zstd block of 3 bytes can stand for 128 KiB: a slice of 1 KiB makes
# at most 32 MiB), doubled while the output stays small, up to 64 KiB.
_ZSTD_MIN_SLICE = 1024
_ZSTD_MAX_SLICE = 64 * 1024


class Restarts:
    """Where decoding can start again: the gzip members, zstd frames and bzip2 streams met so
    far, each as (its compressed offset in the object, the decoded offset where it starts); and
    how far into the stored object the decoder was when it made each piece (for progress).

    The decoder adds them as it meets them (in the read-ahead thread); ``at`` and ``stored_at``
    (the parser's thread) find the one for a decoded offset, and forget those before it, so a
    bgzip object of a million 64 KiB members costs no more memory than a single member.
    ``compressed`` is set once the object turns out to be compressed.
    """

    def __init__(self, stored: int = 0, decoded: int = 0) -> None:
        self.compressed = False
        self._marks: deque[tuple[int, int]] = deque([(stored, decoded)])
        self._pieces: deque[tuple[int, int]] = deque()  # (decoded end, stored bytes consumed)
        self._lock = threading.Lock()

    def add(self, stored: int, decoded: int) -> None:
        with self._lock:
            self._marks.append((stored, decoded))

    def seen(self, stored: int, decoded: int) -> None:
        """The decoder had consumed ``stored`` bytes of the object when its output reached
        ``decoded`` bytes."""
        with self._lock:
            pieces = self._pieces
            # bzip2 counts input it holds back as read, until a stream's end says otherwise
            self._pieces.append((decoded, max(stored, pieces[-1][1]) if pieces else stored))

    def at(self, decoded: int) -> tuple[int, int]:
        """The last start at or before ``decoded``: (compressed offset, decoded offset)."""
        with self._lock:
            marks = self._marks
            while len(marks) > 1 and marks[1][1] <= decoded:
                marks.popleft()
            return marks[0]

    def stored_at(self, decoded: int) -> int:
        """How far into the stored object the decoder had read when it made byte ``decoded``
        (the byte itself for a plain object)."""
        with self._lock:
            pieces = self._pieces
            if not pieces:
                return decoded if not self.compressed else self._marks[0][0]
            while len(pieces) > 1 and pieces[0][0] < decoded:
                pieces.popleft()
            return pieces[0][1]


class _Forgetful(Restarts):
    """For a reader that never asks (check, verify): remembers nothing."""

    def add(self, stored: int, decoded: int) -> None:
        pass

    def seen(self, stored: int, decoded: int) -> None:
        pass


Opener = Callable[[Iterator[bytes], str, Restarts], Iterator[bytes]]


def detect(first: bytes) -> str:
    """The codec whose magic number ``first`` (an object's first bytes) starts with, or none."""
    for codec, magic in _MAGIC:
        if first.startswith(magic):
            return codec
    return NO_COMPRESSION


def open_decoded(
    chunks: Iterable[bytes],
    compression: str,
    *,
    source: str,
    restarts: Restarts | None = None,
) -> tuple[str, Iterator[bytes]]:
    """The codec of an object and its decoded bytes, from ``chunks`` (its stored bytes from the
    first one, or from the start of a member or frame, which ``restarts`` was made with).
    ``compression`` is the option (``auto`` looks at the first bytes). Each member or frame
    met is added to ``restarts``. A plain object's chunks come back as they are: no copy, no
    work per chunk."""
    if compression not in INPUT_COMPRESSIONS:
        raise ConfigError(
            f"--input-compression must be one of {', '.join(INPUT_COMPRESSIONS)}, "
            f"got {compression!r}"
        )
    stream = iter(chunks)
    head: list[bytes] = []
    if compression == AUTO:
        seen = 0
        while seen < MAGIC_BYTES:
            chunk = next(stream, None)
            if chunk is None:
                break
            head.append(chunk)
            seen += len(chunk)
        compression = detect(b"".join(head)[:MAGIC_BYTES])
    raw = itertools.chain(head, stream) if head else stream
    if compression == NO_COMPRESSION:
        return compression, raw
    marks = restarts if restarts is not None else _Forgetful()
    marks.compressed = True
    return compression, _OPENERS[compression](raw, source, marks)


def skip_bytes(chunks: Iterable[bytes], count: int) -> Iterator[bytes]:
    """``chunks`` without their first ``count`` bytes (resuming inside a compressed object:
    the decoded bytes before the resume point are read again and dropped)."""
    stream = iter(chunks)
    for chunk in stream:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:] if count else chunk
        break
    yield from stream


def _broken(codec: str, part: str, start: int, source: str, detail: str) -> BadInputError:
    return BadInputError(
        f"the {codec} {part} that starts at compressed byte {start} is {detail}",
        source=source,
        byte_offset=start,
    )


def _gunzip(chunks: Iterator[bytes], source: str, restarts: Restarts) -> Iterator[bytes]:
    """Every gzip member, one ``zlib.decompressobj`` each: its ``unused_data`` is where the
    next member starts."""
    import zlib  # noqa: PLC0415 (lazily, in its opener: the registry's shape)

    # compressed offset of the bytes fed to the decompressors so far, and decoded bytes made
    pos, made = restarts.at(0)
    member = pos  # compressed byte where the current member starts
    d = zlib.decompressobj(wbits=31)
    open_member = False  # bytes of the current member were fed and it has not ended
    for chunk in chunks:
        data = chunk
        while data:
            try:
                out = d.decompress(data, _OUT)
            except zlib.error as err:
                window = f"corrupt (within compressed bytes {pos}-{pos + len(data)}: {err})"
                raise _broken("gzip", "member", member, source, window) from err
            open_member = True
            made += len(out)
            if d.eof:
                rest = d.unused_data
                pos += len(data) - len(rest)
                if out:
                    restarts.seen(pos, made)
                    yield out
                d = zlib.decompressobj(wbits=31)
                member, open_member, data = pos, False, rest
                restarts.add(pos, made)
                continue
            tail = d.unconsumed_tail
            pos += len(data) - len(tail)
            data = tail
            if out:
                restarts.seen(pos, made)
                yield out
    if open_member:
        while True:  # what the last input left in the decompressor, then the verdict
            try:
                out = d.decompress(b"", _OUT)
            except zlib.error as err:
                raise _broken("gzip", "member", member, source, f"corrupt ({err})") from err
            if not out:
                break
            made += len(out)
            restarts.seen(pos, made)
            yield out
        if not d.eof:
            detail = f"truncated: the object ends at compressed byte {pos}, inside it"
            raise _broken("gzip", "member", member, source, detail)


def _bunzip2(chunks: Iterator[bytes], source: str, restarts: Restarts) -> Iterator[bytes]:
    """Every bzip2 stream, one ``bz2.BZ2Decompressor`` each (``unused_data``, as gzip)."""
    import bz2  # noqa: PLC0415 (lazily, in its opener)

    pos, made = restarts.at(0)
    start = pos
    d = bz2.BZ2Decompressor()
    open_stream = False
    for chunk in chunks:
        data = chunk
        while True:
            try:
                out = d.decompress(data, _OUT)
            except (OSError, ValueError) as err:
                window = f"corrupt (within compressed bytes {start}-{pos + len(data)}: {err})"
                raise _broken("bzip2", "stream", start, source, window) from err
            pos += len(data)  # fed; the decompressor keeps what it has not decoded yet
            open_stream = open_stream or bool(data)
            made += len(out)
            if d.eof:
                rest = d.unused_data
                pos -= len(rest)
                if out:
                    restarts.seen(pos, made)
                    yield out
                d = bz2.BZ2Decompressor()
                start, open_stream, data = pos, False, rest
                restarts.add(pos, made)
                if not data:
                    break
                continue
            data = b""
            if out:
                restarts.seen(pos, made)
                yield out
            if d.needs_input:
                break
    if open_stream:
        detail = f"truncated: the object ends at compressed byte {pos}, inside it"
        raise _broken("bzip2", "stream", start, source, detail)


def _unzstd(chunks: Iterator[bytes], source: str, restarts: Restarts) -> Iterator[bytes]:
    """Every zstd frame, one ``decompressobj`` each (``unused_data``, as gzip), fed in slices
    that keep each output near ``_OUT``; outputs smaller than that are joined, so the parser
    gets blocks of about the size it gets from gzip or a plain object (a batch never spans
    two blocks: small blocks mean more, smaller batches)."""
    import zstandard  # noqa: PLC0415 (lazily, in its opener)

    decompressor = zstandard.ZstdDecompressor()
    pos, made = restarts.at(0)
    frame = pos
    d = decompressor.decompressobj()
    open_frame = False
    size = _ZSTD_MIN_SLICE
    held: list[bytes] = []  # decoded, not yet handed on
    held_bytes = 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            piece = view[:size]
            try:
                out = d.decompress(piece)
            except zstandard.ZstdError as err:
                if held:  # what the frames decoded before the break, first
                    restarts.seen(pos, made)
                    yield b"".join(held)
                window = f"corrupt (within compressed bytes {pos}-{pos + len(piece)}: {err})"
                raise _broken("zstd", "frame", frame, source, window) from err
            open_frame = True
            made += len(out)
            if d.eof:
                used = len(piece) - len(d.unused_data)
                pos += used
                view = view[used:]
                d = decompressor.decompressobj()
                frame, open_frame = pos, False
                restarts.add(pos, made)
            else:
                pos += len(piece)
                view = view[len(piece) :]
            if len(out) < _OUT // 2:
                size = min(size * 2, _ZSTD_MAX_SLICE)
            elif len(out) > 2 * _OUT:
                size = max(size // 2, _ZSTD_MIN_SLICE)
            if out:
                held.append(out)
                held_bytes += len(out)
                if held_bytes >= _OUT * 3 // 4:
                    restarts.seen(pos, made)
                    yield held[0] if len(held) == 1 else b"".join(held)
                    held, held_bytes = [], 0
    if held:
        restarts.seen(pos, made)
        yield b"".join(held)
    if open_frame:
        detail = f"truncated: the object ends at compressed byte {pos}, inside it"
        raise _broken("zstd", "frame", frame, source, detail)


_OPENERS: dict[str, Opener] = {GZIP: _gunzip, ZSTD: _unzstd, BZIP2: _bunzip2}
