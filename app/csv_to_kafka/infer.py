"""``csv-to-kafka infer-schema``: a JSON Schema of the row object, from the first rows of the
job's objects.

It reads the header and up to ``sample_rows`` data rows with the parser ``run`` uses (the same
dialect, the same decoding of a compressed object) and gives ``schema.infer_schema``'s verdict:
each column the narrowest of integer, number, boolean and string that fits every sampled field,
nullable where a sampled field is empty: a starting point to edit, in the form schema.py reads
(``run --schema`` types the values with it). Reading stops after the sample, so a large
object costs one partial GET.

Over many objects (a prefix, ``--source`` repeated, ``--source-manifest``: the objects ``run``
would list, in its order) it samples up to ``sample_rows`` rows of each object, a few objects
read side by side, and widens each column's type over all of them (a column of integers in one
object and of decimals in another is a number). Every object must have the first one's header,
as ``run`` requires (exit 3 naming the object and both headers); an object empty once decoded is
skipped, as ``run`` skips it. Only the columns' types are kept, never the rows: memory does not
grow with the number of objects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ._parse_process import ParseJob, source_object
from ._retry import RetryPolicy
from .config import Config
from .errors import BadInputError, EmptyObjectError
from .objects import bucket_and_key, job_objects
from .schema import DEFAULT_SAMPLE_ROWS, SchemaSample
from .sink import max_message_bytes
from .source import ObjectInfo, S3Object

__all__ = ["Inferred", "infer"]

logger = logging.getLogger(__name__)

# Objects sampled at once over many objects: each is a GET's first chunks, so the time of
# thousands of small objects is their requests' latency, which threads overlap.
_SAMPLE_THREADS = 8


@dataclass(frozen=True)
class Inferred:
    """The inferred schema and what it rests on."""

    schema: dict[str, Any]
    rows: int  # data rows sampled, over every object
    objects: int  # objects sampled (1 for a single object)
    empty: int = 0  # objects empty once decoded, skipped (many objects only)


def infer(
    config: Config, sample_rows: int = DEFAULT_SAMPLE_ROWS, *, s3: S3Object | None = None
) -> Inferred:
    """The inferred schema of ``config``'s sources (``sample_rows`` rows of each object; 0:
    every row). A bad row among them is raised as ``run`` would report it (exit 3)."""
    s3 = s3 if s3 is not None else source_object(config)
    if not config.multi_object:
        alone = _sample(config, s3, s3.head(), sample_rows)
        return Inferred(alone.schema(), alone.rows, 1)
    retry = RetryPolicy(total_seconds=config.retry_seconds)
    infos = job_objects(config, s3.client, retry, "infer-schema")
    total: SchemaSample | None = None
    first = ""
    empty = 0
    for index, (info, sample) in enumerate(_samples(config, s3, infos, sample_rows)):
        if sample is None:
            empty += 1
            logger.info(
                "object %d of %d, %s, is empty once decoded (%d stored bytes): no rows, skipped",
                index + 1,
                len(infos),
                info.uri,
                info.size,
            )
            continue
        if total is None:
            total, first = sample, info.uri
            continue
        if sample.header != total.header:
            raise BadInputError(
                f"the header row of object {index + 1} of the job is "
                f"{','.join(sample.header)!r}, but the job's first object {first} has "
                f"{','.join(total.header)!r}: every object of a job must have the same header",
                source=info.uri,
                line=1,
                byte_offset=0,
            )
        total.merge(sample)
    if total is None:
        raise BadInputError(
            f"all {len(infos)} objects are empty once decoded: no header row to infer from",
            source=str(config.source),
        )
    return Inferred(total.schema(), total.rows, len(infos) - empty, empty)


def _samples(
    config: Config, s3: S3Object, infos: tuple[ObjectInfo, ...], sample_rows: int
) -> Iterator[tuple[ObjectInfo, SchemaSample | None]]:
    """Each object's sample in the job's order (None: empty once decoded), a few read at once."""

    def one(info: ObjectInfo) -> SchemaSample | None:
        try:
            return _sample(config, s3.sibling(*bucket_and_key(info.uri)), info, sample_rows)
        except EmptyObjectError:
            return None

    with ThreadPoolExecutor(max_workers=_SAMPLE_THREADS, thread_name_prefix="sample") as pool:
        # Submitted a window at a time, so that a bad object stops the reading soon after it.
        window = 4 * _SAMPLE_THREADS
        pending = [pool.submit(one, info) for info in infos[:window]]
        for index, info in enumerate(infos):
            future = pending[index]
            if index + window < len(infos):
                pending.append(pool.submit(one, infos[index + window]))
            try:
                yield info, future.result()
            except BaseException:
                for later in pending[index + 1 :]:
                    later.cancel()
                raise


def _sample(config: Config, s3: S3Object, info: ObjectInfo, sample_rows: int) -> SchemaSample:
    """The types of the first ``sample_rows`` rows of ``info`` (0: every row)."""
    header, batches = ParseJob.whole_object(config, info, max_message_bytes(config)).fields(s3)
    sample = SchemaSample(header.names)
    try:
        for batch in batches:
            rows = batch.rows
            if sample_rows and sample.rows + len(rows) > sample_rows:
                rows = rows[: sample_rows - sample.rows]
            sample.add(rows)
            if sample_rows and sample.rows >= sample_rows:
                break
    finally:
        batches.close()  # type: ignore[attr-defined]  # a generator: ends the GET
    return sample
