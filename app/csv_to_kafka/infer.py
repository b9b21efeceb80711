"""``csv-to-kafka infer-schema``: a JSON Schema of the row object, from the object's first rows.

It reads the header and up to ``sample_rows`` data rows with the parser ``run`` uses (the same
dialect, the same decoding of a compressed object) and gives ``schema.infer_schema``'s verdict:
each column the narrowest of integer, number, boolean and string that fits every sampled field,
nullable where a sampled field is empty: a starting point to edit, in the form schema.py reads
(``run --schema`` types the values with it). Reading stops after the sample, so a large
object costs one partial GET.
"""

from __future__ import annotations

from typing import Any

from ._parse_process import ParseJob, source_object
from .config import Config
from .schema import DEFAULT_SAMPLE_ROWS, infer_schema
from .sink import max_message_bytes
from .source import S3Object

__all__ = ["infer"]


def infer(
    config: Config, sample_rows: int = DEFAULT_SAMPLE_ROWS, *, s3: S3Object | None = None
) -> tuple[dict[str, Any], int]:
    """The inferred schema of ``config.source`` and how many rows it rests on (``sample_rows``
    0: every row). A bad row among them is raised as ``run`` would report it (exit 3)."""
    s3 = s3 if s3 is not None else source_object(config)
    info = s3.head()
    header, batches = ParseJob.whole_object(config, info, max_message_bytes(config)).fields(s3)
    sample: list[list[str]] = []
    try:
        for batch in batches:
            sample.extend(batch.rows)
            if sample_rows and len(sample) >= sample_rows:
                del sample[sample_rows:]
                break
    finally:
        batches.close()  # type: ignore[attr-defined]  # a generator: ends the GET
    return infer_schema(header.names, sample), len(sample)
