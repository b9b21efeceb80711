"""Step 1 of the benchmark: a realistic CSV, generated once per (rows, seed), kept in a local
cache and put in the local stack's S3.

The file: 13 columns (ids, names, email, decimals, a timestamp, free text), about 150 bytes a
row, LF line ends, UTF-8 with non-ASCII names (Zoë, Łukasz, Ольга, 美咲 ...). About 5% of the rows
carry a quoted field with a comma, a doubled quote or a newline (often all three). It extends
``local/demo.py``'s generator, whose rows are about 107 bytes with one kind of special row.

The generator is deterministic and draws the same random numbers for row *i* whatever the total,
so the file of N rows is a byte-for-byte prefix of the file of M > N rows with the same seed: the
original-design baseline runs on such a prefix ("a slice of the same file").
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["CsvFile", "cached_csv", "default_cache_dir", "make_csv", "upload"]

# Bump when the rows change: cached files and S3 objects of another version are not reused.
GENERATOR_VERSION = 1
HEADER = [
    "id",
    "order_id",
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "country",
    "amount",
    "currency",
    "quantity",
    "created_at",
    "status",
    "comment",
]
# (name as written, ASCII form for the email address)
_FIRST_NAMES = [
    ("Ada", "ada"),
    ("Grace", "grace"),
    ("Linus", "linus"),
    ("Zoë", "zoe"),
    ("José", "jose"),
    ("Chloé", "chloe"),
    ("Søren", "soren"),
    ("Łukasz", "lukasz"),
    ("Björn", "bjorn"),
    ("Ольга", "olga"),
    ("美咲", "misaki"),
    ("Αλέξης", "alexis"),
    ("Priya", "priya"),
    ("Olu", "olu"),
    ("Ming", "ming"),
    ("Sven", "sven"),
    ("Maria", "maria"),
    ("Nguyễn", "nguyen"),
    ("François", "francois"),
    ("Amélie", "amelie"),
]
_LAST_NAMES = [
    ("Lovelace", "lovelace"),
    ("Hopper", "hopper"),
    ("Müller", "muller"),
    ("Dvořák", "dvorak"),
    ("García", "garcia"),
    ("Kowalski", "kowalski"),
    ("Øster", "oster"),
    ("Smith", "smith"),
    ("Иванова", "ivanova"),
    ("Tanaka", "tanaka"),
    ("O'Brien", "obrien"),
    ("Nakamura", "nakamura"),
    ("Okafor", "okafor"),
    ("Sharma", "sharma"),
    ("Johansson", "johansson"),
    ("Papadopoulos", "papadopoulos"),
]
_DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.io"]
_COUNTRIES = ["DE", "FR", "ES", "PL", "SE", "NO", "GB", "US", "JP", "IN", "NG", "GR", "VN", "BR"]
_CURRENCIES = ["EUR", "USD", "GBP", "SEK", "PLN", "JPY"]
_STATUSES = ["PAID", "OPEN", "SHIPPED", "REFUNDED", "CANCELLED"]
_WORDS = (  # noqa: SIM905 (a paragraph reads better than a list of words)
    "order shipped delivered on time customer asked for invoice package left at door gift "
    "wrap requested express delivery address updated payment confirmed backorder item swapped "
    "colour size returned partially warehouse berlin lyon kraków tōkyō"
).split()
# Special free text: quoted in the CSV because of a comma, a quote or a newline.
_SPECIAL = [
    'customer said "fine", then\nleft a note #{i}',
    "two lines:\nfirst, then second #{i}",
    'size "L", colour "blue" #{i}',
    "returned, refunded, closed #{i}",
    'a "quoted" remark\nwith, everything #{i}',
]
SPECIAL_SHARE = 0.05
_FLUSH_ROWS = 20_000


@dataclass(frozen=True)
class CsvFile:
    """A generated CSV on local disk and what is known about it."""

    path: str
    rows: int
    seed: int
    bytes: int
    lines: int  # newline characters: the header, the rows, and newlines inside quoted fields
    special_rows: int
    generator_version: int = GENERATOR_VERSION

    @property
    def bytes_per_row(self) -> float:
        return self.bytes / self.rows if self.rows else 0.0

    def s3_key(self) -> str:
        return f"bench/rows-{self.rows}-seed-{self.seed}-v{self.generator_version}.csv"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bytes_per_row"] = round(self.bytes_per_row, 1)
        return data


def make_csv(path: str | os.PathLike[str], rows: int, seed: int = 1) -> CsvFile:
    """Write ``rows`` data rows (plus the header) to ``path``, streaming; return its facts."""
    rng = random.Random(seed)  # noqa: S311 (test data, reproducible by seed)
    rand, randrange, getrandbits = rng.random, rng.randrange, rng.getrandbits
    n_first, n_last, n_words = len(_FIRST_NAMES), len(_LAST_NAMES), len(_WORDS)
    special_rows = 0
    size = 0
    lines = 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    with open(path, "w", newline="", encoding="utf-8") as out:

        def flush() -> None:
            nonlocal size, lines
            text = buffer.getvalue()
            encoded = text.encode("utf-8")
            size += len(encoded)
            lines += text.count("\n")
            out.write(text)
            buffer.seek(0)
            buffer.truncate()

        writer.writerow(HEADER)
        for i in range(1, rows + 1):
            first, first_ascii = _FIRST_NAMES[randrange(n_first)]
            last, last_ascii = _LAST_NAMES[randrange(n_last)]
            # Seconds in 2026, so that timestamps vary in every field.
            t = randrange(365 * 86_400)
            day, rest = divmod(t, 86_400)
            month, mday = divmod(day, 31)
            created = (
                f"2026-{month % 12 + 1:02d}-{mday % 28 + 1:02d}T"
                f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}.{randrange(1000):03d}Z"
            )
            if rand() < SPECIAL_SHARE:
                special_rows += 1
                comment = _SPECIAL[randrange(len(_SPECIAL))].format(i=i)
            else:
                words = [_WORDS[randrange(n_words)] for _ in range(2 + randrange(4))]
                comment = " ".join(words)
            writer.writerow(
                (
                    i,
                    f"{getrandbits(64):016x}",
                    100_000 + randrange(900_000),
                    first,
                    last,
                    f"{first_ascii}.{last_ascii}{randrange(1000)}@{_DOMAINS[i % len(_DOMAINS)]}",
                    _COUNTRIES[randrange(len(_COUNTRIES))],
                    f"{rand() * 5_000:.2f}",
                    _CURRENCIES[randrange(len(_CURRENCIES))],
                    1 + randrange(20),
                    created,
                    _STATUSES[randrange(len(_STATUSES))],
                    comment,
                )
            )
            if i % _FLUSH_ROWS == 0:
                flush()
        flush()
    return CsvFile(str(path), rows, seed, size, lines, special_rows)


def default_cache_dir() -> Path:
    """``$CSV_TO_KAFKA_CACHE/bench``, as ``local/stack`` spells its download cache."""
    base = os.environ.get("CSV_TO_KAFKA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "csv-to-kafka"
    )
    return Path(base) / "bench"


def cached_csv(cache_dir: Path, rows: int, seed: int, log: Any = print) -> CsvFile:
    """The CSV of ``rows`` rows and ``seed`` from the cache, generated first if it is missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = f"rows-{rows}-seed-{seed}-v{GENERATOR_VERSION}"
    path = cache_dir / f"{stem}.csv"
    meta = cache_dir / f"{stem}.json"
    if path.exists() and meta.exists():
        facts = json.loads(meta.read_text())
        facts.pop("bytes_per_row", None)
        found = CsvFile(**{**facts, "path": str(path)})
        if found.bytes == path.stat().st_size:
            log(f"csv: {rows:,} rows from the cache ({path}, {found.bytes / 1e6:,.1f} MB)")
            return found
    log(f"csv: generating {rows:,} rows (seed {seed}) into {path} ...")
    # A name of this process's own: two runs sharing the cache must not write one file.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    made = make_csv(tmp, rows, seed)
    tmp.replace(path)
    made = CsvFile(**{**asdict(made), "path": str(path)})
    meta_tmp = meta.with_name(f"{meta.name}.{os.getpid()}.tmp")
    meta_tmp.write_text(json.dumps(made.to_json(), indent=2))
    meta_tmp.replace(meta)
    log(
        f"csv: {made.bytes / 1e6:,.1f} MB, {made.bytes_per_row:.0f} bytes/row, "
        f"{made.special_rows / max(rows, 1):.1%} rows with quoted commas/quotes/newlines"
    )
    return made


def upload(
    s3: S3Client, csv_file: CsvFile, bucket: str, log: Any = print, key: str | None = None
) -> str:
    """Put the file in S3 (multipart for large files) unless an object of its size is there."""
    import boto3.s3.transfer  # noqa: PLC0415 (boto3 is imported by the caller's client anyway)
    import botocore.exceptions  # noqa: PLC0415

    key = key or csv_file.s3_key()
    try:
        s3.create_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as err:
        if err.response.get("Error", {}).get("Code") not in {
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        }:
            raise
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if int(head["ContentLength"]) == csv_file.bytes:
            log(f"s3: s3://{bucket}/{key} is already there")
            return f"s3://{bucket}/{key}"
    except botocore.exceptions.ClientError:
        pass
    log(f"s3: uploading {csv_file.bytes / 1e6:,.1f} MB to s3://{bucket}/{key} ...")
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=64 * 1024 * 1024,
        multipart_chunksize=64 * 1024 * 1024,
        max_concurrency=2,
    )
    s3.upload_file(csv_file.path, bucket, key, Config=config)
    return f"s3://{bucket}/{key}"


# -- compressed copies of a file (issue 13) ---------------------------------------------------

COMPRESSED_KINDS = ("gzip", "gzip-members", "zstd")
MEMBER_BYTES = 8 * 1024 * 1024  # decoded bytes per gzip member of the "gzip-members" copy


@dataclass(frozen=True)
class CompressedFile:
    """A compressed copy of a generated CSV: ``gzip -6``, the same cut into gzip members of
    ``MEMBER_BYTES`` (as pigz --independent, bgzip or a parallel export makes), or ``zstd -3``
    (with checksums, as the zstd CLI writes)."""

    path: str
    kind: str
    bytes: int
    csv: CsvFile

    def s3_key(self) -> str:
        # Named .csv on purpose: the product finds the codec in the first bytes.
        return self.csv.s3_key().replace(".csv", f"-{self.kind}.csv")


def compressed_copy(
    cache_dir: Path, csv_file: CsvFile, kind: str, log: Any = print
) -> CompressedFile:
    """``csv_file`` compressed as ``kind`` (``COMPRESSED_KINDS``), from the cache if there."""
    import gzip  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    import zstandard  # noqa: PLC0415

    path = Path(cache_dir) / (Path(csv_file.path).stem + f"-{kind}.bin")
    if not path.exists():
        log(f"csv: compressing {Path(csv_file.path).name} as {kind} ...")
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(csv_file.path, "rb") as src, open(tmp, "wb") as out:
            if kind == "gzip":
                with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
                    shutil.copyfileobj(src, gz, 1024 * 1024)
            elif kind == "gzip-members":
                while piece := src.read(MEMBER_BYTES):
                    out.write(gzip.compress(piece, 6, mtime=0))
            elif kind == "zstd":
                compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
                compressor.copy_stream(src, out)
            else:
                raise ValueError(f"unknown kind {kind!r}")
        tmp.replace(path)
    size = path.stat().st_size
    log(f"csv: {kind} copy {size / 1e6:,.1f} MB ({csv_file.bytes / size:.1f}:1)")
    return CompressedFile(str(path), kind, size, csv_file)


def upload_compressed(s3: S3Client, copy: CompressedFile, bucket: str, log: Any = print) -> str:
    """Put a compressed copy in S3 under its own key (a ``.csv`` name), as ``upload`` does."""
    stand_in = CsvFile(copy.path, copy.csv.rows, copy.csv.seed, copy.bytes, copy.csv.lines, 0)
    key = copy.s3_key()
    return upload(s3, stand_in, bucket, log=log, key=key)


# -- a prefix of many objects (issue 13) --------------------------------------------------------


def upload_prefix(
    s3: S3Client,
    cache_dir: Path,
    *,
    bucket: str,
    objects: int,
    rows_per_object: int,
    seed: int,
    log: Any = print,
) -> tuple[str, CsvFile]:
    """``objects`` CSV objects of ``rows_per_object`` rows each (the generator's mix, seeds
    ``seed``, ``seed + 1``, ...) under one prefix, and the facts of the whole as one CsvFile."""
    prefix = f"bench/prefix-{objects}x{rows_per_object}-seed-{seed}-v{GENERATOR_VERSION}/"
    folder = cache_dir / prefix.strip("/").replace("/", "-")
    folder.mkdir(parents=True, exist_ok=True)
    listed = {
        item["Key"]: int(item["Size"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    }
    total_bytes = total_lines = special = 0
    for n in range(objects):
        path = folder / f"part-{n:05d}.csv"
        facts_path = path.with_suffix(".json")
        if facts_path.exists():
            facts = CsvFile(**json.loads(facts_path.read_text()))
        else:
            facts = make_csv(path, rows_per_object, seed=seed + n)
            facts_path.write_text(json.dumps(asdict(facts)))
        key = f"{prefix}part-{n:05d}.csv"
        if listed.get(key) != facts.bytes:
            s3.upload_file(str(path), bucket, key)
        total_bytes += facts.bytes
        total_lines += facts.lines
        special += facts.special_rows
    log(f"s3: {objects} objects, {total_bytes / 1e6:,.1f} MB under s3://{bucket}/{prefix}")
    whole = CsvFile(
        path=str(folder),
        rows=objects * rows_per_object,
        seed=seed,
        bytes=total_bytes,
        lines=total_lines,
        special_rows=special,
    )
    return f"s3://{bucket}/{prefix}", whole
