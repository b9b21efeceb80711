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
