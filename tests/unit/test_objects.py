"""objects.py: sources as given, a prefix listed, a manifest read, the pinned list stored in
chunks and read back (10,000 objects), resume's checks of a prefix (moto in-process)."""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import logging
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
import zstandard
from moto import mock_aws

from csv_to_kafka._parse_process import ParseJob
from csv_to_kafka._retry import RetryPolicy
from csv_to_kafka.cli import Progress, build_config, build_parser
from csv_to_kafka.config import Config, parse_source_uri
from csv_to_kafka.errors import (
    BadInputError,
    ConfigError,
    EmptyObjectError,
    InfrastructureError,
    ObjectChangedError,
)
from csv_to_kafka.objects import (
    JobObjects,
    PinnedObjects,
    check_still_listed,
    config_objects,
    list_objects,
    read_manifest,
)
from csv_to_kafka.source import ObjectInfo, S3Object

FAST = RetryPolicy(total_seconds=5, initial_backoff=0.01, max_backoff=0.05)
BUCKET = "exports"
TABLE = "checkpoints"


@pytest.fixture
def aws(aws_env: None) -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield s3, ddb


def _config(*argv: str, environ: dict[str, str] | None = None) -> Config:
    args: argparse.Namespace = build_parser().parse_args(["check", *argv])
    return build_config(args, environ or {})


def test_sources_as_given_through_flags_and_the_environment() -> None:
    config = _config("--source", "s3://b/x.csv", "--source", "s3://b/dir/")
    assert [str(s) for s in config.sources] == ["s3://b/x.csv", "s3://b/dir/"]
    assert config.multi_object
    assert config.source_label == "s3://b/x.csv\ns3://b/dir/"
    env = _config(environ={"CSV_TO_KAFKA_SOURCE": "s3://b/a.csv\r\ns3://b/b.csv\n"})
    assert [str(s) for s in env.sources] == ["s3://b/a.csv", "s3://b/b.csv"]
    one = _config("--source", "s3://b/a.csv")
    assert not one.multi_object
    assert one.source_label == "s3://b/a.csv"
    manifest = _config("--source-manifest", "s3://b/list.txt")
    assert manifest.source_manifest
    assert manifest.multi_object
    assert manifest.source_label == "s3://b/list.txt (manifest)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "s3://b/a", "--source-manifest", "s3://b/m"], "not both"),
        (["--source", "s3://b/a", "--no-header"], "go together"),
        (["--source", "s3://b/a", "--columns", "a,b"], "go together"),
        (["--source", "s3://b/a", "--no-header", "--columns", "a,,b"], "distinct non-empty"),
        (["--source", "s3://b/a", "--no-header", "--columns", "a,a"], "distinct non-empty"),
    ],
)
def test_bad_source_and_column_options(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(*argv)


def test_a_job_id_may_not_name_an_object_list() -> None:
    with pytest.raises(ConfigError, match="#objects"):
        Config(parse_source_uri("s3://b/k"), "t", "b:9092", "x#objects", "table")


def test_a_prefix_lists_data_objects_in_key_order_and_skips_markers(aws: Any) -> None:
    s3, _ddb = aws
    for key, body in [
        ("out/part-b.csv", b"a\n1\n"),
        ("out/part-a.csv", b"a\n2\n"),
        ("out/_SUCCESS", b""),
        ("out/sub/", b""),
        ("other/x.csv", b"a\n3\n"),
    ]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    found = list_objects(
        [parse_source_uri(f"s3://{BUCKET}/out/"), parse_source_uri(f"s3://{BUCKET}/other/x.csv")],
        s3,
        FAST,
    )
    assert [info.uri.rsplit("/", 1)[1] for info in found] == ["part-a.csv", "part-b.csv", "x.csv"]
    assert all(info.size == 4 for info in found)
    with pytest.raises(ConfigError, match="holds no data objects"):
        list_objects([parse_source_uri(f"s3://{BUCKET}/none/")], s3, FAST)


def test_a_prefix_of_many_pages(aws: Any) -> None:
    s3, _ddb = aws
    for n in range(1005):
        s3.put_object(Bucket=BUCKET, Key=f"big/{n:05d}.csv", Body=b"a\n1\n")
    found = list_objects([parse_source_uri(f"s3://{BUCKET}/big/")], s3, FAST)
    assert len(found) == 1005
    assert found[-1].uri.endswith("01004.csv")


def test_a_manifest(aws: Any) -> None:
    s3, _ddb = aws
    s3.put_object(Bucket=BUCKET, Key="a.csv", Body=b"a\n1\n")
    s3.put_object(
        Bucket=BUCKET,
        Key="list.txt",
        Body=f"# the export\ns3://{BUCKET}/a.csv\r\n\ns3://{BUCKET}/a.csv\n".encode(),
    )
    manifest = parse_source_uri(f"s3://{BUCKET}/list.txt")
    config = Config(manifest, "t", "b", "j", "t", source_manifest=True)
    found = config_objects(config, s3, FAST)
    assert [info.uri for info in found] == [f"s3://{BUCKET}/a.csv"] * 2
    listing = f"s3://{BUCKET}/a.csv\ns3://{BUCKET}/no.csv"
    s3.put_object(Bucket=BUCKET, Key="gone.txt", Body=listing.encode())
    gone_uri = parse_source_uri(f"s3://{BUCKET}/gone.txt")
    gone = Config(gone_uri, "t", "b", "j", "t", source_manifest=True)
    with pytest.raises(ConfigError, match=r"no\.csv does not exist"):
        config_objects(gone, s3, FAST)
    s3.put_object(Bucket=BUCKET, Key="bad.txt", Body=b"s3://ok/a\nhttp://x/y\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_manifest(s3, parse_source_uri(f"s3://{BUCKET}/bad.txt"), FAST)
    s3.put_object(Bucket=BUCKET, Key="empty.txt", Body=b"\n# nothing\n")
    with pytest.raises(ConfigError, match="lists no sources"):
        read_manifest(s3, parse_source_uri(f"s3://{BUCKET}/empty.txt"), FAST)
    with pytest.raises(ConfigError, match="cannot be read"):
        read_manifest(s3, parse_source_uri(f"s3://{BUCKET}/missing.txt"), FAST)


def _objects(count: int) -> list[ObjectInfo]:
    return [
        ObjectInfo(
            uri=f"s3://{BUCKET}/export/2024/12/05/part-{n:05d}-{'x' * 40}.csv.gz",
            etag=f'"{n:032x}"',
            version_id=None if n % 2 else f"v{n}",
            size=1_000_000 + n,
        )
        for n in range(count)
    ]


def test_the_pinned_list_of_10000_objects_is_stored_in_chunks_and_read_back(aws: Any) -> None:
    _s3, ddb = aws
    store = PinnedObjects(TABLE, retry=FAST, client=ddb)
    assert store.load("job") is None
    objects = _objects(10_000)
    saved = store.save("job", objects)
    assert saved.objects == tuple(objects)
    loaded = store.load("job")
    assert loaded is not None
    assert loaded.objects == tuple(objects)
    head = ddb.get_item(TableName=TABLE, Key={"job_id": {"S": "job#objects"}})["Item"]
    assert int(head["count"]["N"]) == 10_000
    # A second instance's list does not replace the first: it gets the stored one.
    again = store.save("job", objects[:3])
    assert len(again) == 10_000


def test_a_damaged_pinned_list_is_an_infrastructure_error(aws: Any) -> None:
    _s3, ddb = aws
    store = PinnedObjects(TABLE, retry=FAST, client=ddb)
    store.save("job", _objects(5))
    write = ddb.get_item(TableName=TABLE, Key={"job_id": {"S": "job#objects"}})["Item"]["write"]
    ddb.delete_item(TableName=TABLE, Key={"job_id": {"S": f"job#objects#{write['S']}#0"}})
    with pytest.raises(InfrastructureError, match="lacks its part 0"):
        store.load("job")
    store.save("other", _objects(5))
    head = ddb.get_item(TableName=TABLE, Key={"job_id": {"S": "other#objects"}})["Item"]
    ddb.put_item(
        TableName=TABLE,
        Item={
            "job_id": {"S": f"other#objects#{head['write']['S']}#0"},
            "data": {"B": zlib.compress(b"[]")},
        },
    )
    with pytest.raises(InfrastructureError, match="checksum"):
        store.load("other")


def test_job_objects_positions() -> None:
    objects = JobObjects(tuple(_objects(3)))
    assert len(objects) == 3
    assert objects.start_of(0) == 0
    assert objects.start_of(2) == 2_000_001
    assert objects.total_bytes == 3_000_003


def test_resume_checks_the_prefix_again(aws: Any) -> None:
    s3, _ddb = aws
    for n in range(3):
        s3.put_object(Bucket=BUCKET, Key=f"p/{n}.csv", Body=b"a\n%d\n" % n)
    prefix = parse_source_uri(f"s3://{BUCKET}/p/")
    pinned = JobObjects(list_objects([prefix], s3, FAST))
    assert check_still_listed(pinned, [prefix], s3, FAST, 0) == 0
    s3.put_object(Bucket=BUCKET, Key="p/9.csv", Body=b"a\n9\n")
    assert check_still_listed(pinned, [prefix], s3, FAST, 0) == 1
    s3.put_object(Bucket=BUCKET, Key="p/0.csv", Body=b"a\nchanged\n")
    assert check_still_listed(pinned, [prefix], s3, FAST, 1) == 1  # object 1 is done
    with pytest.raises(ObjectChangedError, match="changed since the job started"):
        check_still_listed(pinned, [prefix], s3, FAST, 0)
    s3.delete_object(Bucket=BUCKET, Key="p/2.csv")
    with pytest.raises(ObjectChangedError, match="was deleted"):
        check_still_listed(pinned, [prefix], s3, FAST, 1)
    # Objects named one by one are checked by their GET's If-Match, not listed again.
    one = parse_source_uri(f"s3://{BUCKET}/p/1.csv")
    assert check_still_listed(pinned, [one], s3, FAST, 0) == 0


def test_progress_shows_the_object(caplog: pytest.LogCaptureFixture) -> None:
    lines = Progress("json", interval=0)
    lines.started("job", 0, 0, 1000)
    lines.object_started(2, 5)
    with caplog.at_level("INFO", logger="csv_to_kafka"):
        lines.advanced(10, 500, committed=True)
    record = caplog.records[-1]
    assert (record.object, record.objects, record.objects_done) == (3, 5, 2)  # type: ignore[attr-defined]
    bar_out = io.StringIO()
    bar = Progress("bar", stream=bar_out, interval=0)
    bar.started("job", 0, 0, 1000)
    bar.object_started(0, 2)
    bar.advanced(10, 500, committed=True)
    assert "object 1/2" in bar_out.getvalue()


def _parse_job(infos: tuple[ObjectInfo, ...], index: int = 0, **changes: Any) -> ParseJob:
    bucket, key = infos[index].uri[len("s3://") :].split("/", 1)
    job = ParseJob(
        bucket=bucket,
        key=key,
        info=infos[index],
        retry=FAST,
        start_offset=0,
        start_line=1,
        delimiter=",",
        quotechar='"',
        encoding="utf-8",
        max_bytes=1 << 20,
        batch_rows=100,
        object_index=index,
        following=infos[index + 1 :],
    )
    return dataclasses.replace(job, **changes)


def _records(job: ParseJob, s3: Any) -> list[tuple[int, bytes]]:
    reader = S3Object(job.bucket, job.key, retry=FAST, client=s3)
    return [
        (ready.object_index, value) for ready in job.ready_batches(reader) for value in ready.values
    ]


def test_objects_empty_once_decoded_are_skipped(aws: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A gzip of nothing, empty zstd frames: no rows, skipped and logged, also as the job's first
    object (a resumed run then takes the header from the next object); alone, exit 3."""
    s3, _ddb = aws
    empty_zstd = zstandard.ZstdCompressor().compress(b"")
    for key, body in [
        ("e/0.csv.gz", gzip.compress(b"")),
        ("e/1.csv", b"a,b\n1,2\n"),
        ("e/2.csv.zst", empty_zstd * 2),
        ("e/3.csv", b"a,b\n3,4\n"),
    ]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    infos = list_objects([parse_source_uri(f"s3://{BUCKET}/e/")], s3, FAST)
    caplog.set_level(logging.INFO)
    got = _records(_parse_job(infos), s3)
    assert [(index, orjson.loads(value)["a"]) for index, value in got] == [(1, "1"), (3, "3")]
    assert "object 1 of 4, s3://exports/e/0.csv.gz, is empty once decoded" in caplog.text
    assert "object 3 of 4, s3://exports/e/2.csv.zst, is empty once decoded" in caplog.text
    # Resumed at object 4: the first object, empty, has no header to compare with.
    resumed = _records(_parse_job(infos, 3, first=infos[0]), s3)
    assert [orjson.loads(value)["a"] for _index, value in resumed] == ["3"]
    # Alone: the object is empty.
    alone = _parse_job(infos[:1])
    with pytest.raises(EmptyObjectError, match="the object is empty"):
        _records(alone, s3)


def test_a_differing_header_after_an_empty_first_object_is_bad_input(aws: Any) -> None:
    s3, _ddb = aws
    for key, body in [
        ("h/0.csv.gz", gzip.compress(b"")),
        ("h/1.csv", b"a,b\n1,2\n"),
        ("h/2.csv", b"x,y\n3,4\n"),
    ]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    infos = list_objects([parse_source_uri(f"s3://{BUCKET}/h/")], s3, FAST)
    with pytest.raises(BadInputError, match="every object of a job must have the same header"):
        _records(_parse_job(infos), s3)
    # The header it should have is named by the object it comes from, not the empty one; so
    # on a run resumed in object 2 (the first object, empty, has none to give).
    for job in (_parse_job(infos), _parse_job(infos, 1, first=infos[0])):
        with pytest.raises(BadInputError) as raised:
            _records(job, s3)
        assert (
            "the header row of object 3 of the job is 'x,y', but object 2 of the job, "
            "s3://exports/h/1.csv, has 'a,b'"
        ) in str(raised.value)
