def encode_block(
    block: bytes,
    pos: int,
    end: int,
    line: int,
    max_rows: int,
    delimiter: bytes,
    quote: bytes,
    pieces: tuple[bytes, ...],
    tail: bytes,
    kinds: bytes = ...,
    nulls: tuple[bytes, ...] = ...,
    /,
) -> tuple[list[bytes], list[int], int, int, int]: ...
def value_keys(
    values: list[bytes],
    names: tuple[bytes, ...],
    separator: bytes,
    partitions: int,
    typed: bool,
    /,
) -> tuple[list[bytes | None], list[int]]: ...
def murmur2(data: bytes, /) -> int: ...
