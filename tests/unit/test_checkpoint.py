"""The DynamoDB checkpoint, against moto's in-process DynamoDB (no network, no processes)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from csv_to_kafka._retry import RetryPolicy
from csv_to_kafka.checkpoint import Checkpoint, CheckpointStore, Status, utc_now_iso
from csv_to_kafka.errors import ConfigError, InfrastructureError

TABLE = "csv-to-kafka-checkpoints"
FAST = RetryPolicy(total_seconds=5, initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def dynamodb(aws_env: None) -> Iterator[object]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def table(dynamodb) -> str:
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return TABLE


@pytest.fixture
def store(table: str) -> CheckpointStore:
    # The default client: endpoint and region from the (faked) standard AWS configuration.
    return CheckpointStore(table, retry=FAST)


def make(**changes: object) -> Checkpoint:
    cp = Checkpoint(
        job_id="orders-2024",
        status=Status.RUNNING,
        source="s3://bucket/data/orders.csv",
        topic="orders",
        etag='"9b2cf535f27731c974343645a3985328"',
        version_id="3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
        last_line=1001,
        total_sent=1000,
        byte_offset=65_536,
        kafka_offset=999,
        total_bytes=1_048_576,
        rows_per_second=2500.5,
        bytes_per_second=163_840.25,
        started_at="2024-05-01T10:00:00.000Z",
        updated_at="2024-05-01T10:00:04.000Z",
        error=None,
    )
    return dataclasses.replace(cp, **changes)  # type: ignore[arg-type]


def client_error(code: str, status: int = 400) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": f"simulated {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutItem",
    )


# -- round trip ---------------------------------------------------------------------------


def test_load_of_an_unknown_job_is_none(store: CheckpointStore) -> None:
    assert store.load("never-ran") is None


def test_every_field_survives_a_round_trip(store: CheckpointStore) -> None:
    cp = make(status=Status.FAILED, error="Kafka broker b-1:9092 unreachable at line 1001")
    assert store.save(cp) is True
    assert store.load(cp.job_id) == cp


def test_optional_fields_round_trip_as_none(store: CheckpointStore, dynamodb) -> None:
    cp = make(version_id=None, error=None)
    assert store.save(cp) is True
    item = dynamodb.get_item(TableName=TABLE, Key={"job_id": {"S": cp.job_id}})["Item"]
    assert "version_id" not in item
    assert "error" not in item
    assert item["total_sent"] == {"N": "1000"}
    assert item["status"] == {"S": "RUNNING"}
    assert store.load(cp.job_id) == cp


def test_an_item_with_only_the_essentials_loads_with_defaults(
    store: CheckpointStore, dynamodb
) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "job_id": {"S": "old"},
            "status": {"S": "RUNNING"},
            "source": {"S": "s3://b/k.csv"},
            "topic": {"S": "t"},
        },
    )
    cp = store.load("old")
    assert cp is not None
    assert (cp.total_sent, cp.last_line, cp.byte_offset, cp.kafka_offset) == (0, 0, 0, -1)
    assert (cp.version_id, cp.error, cp.etag) == (None, None, "")
    assert cp.rows_per_second == 0.0


def test_an_item_that_is_not_a_checkpoint_is_a_config_error(
    store: CheckpointStore, dynamodb
) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "job_id": {"S": "odd"},
            "status": {"S": "SLEEPING"},
            "source": {"S": "x"},
            "topic": {"S": "t"},
        },
    )
    with pytest.raises(ConfigError, match=f"{TABLE}.*'odd'"):
        store.load("odd")


def test_non_finite_rates_are_stored_as_zero(store: CheckpointStore) -> None:
    assert store.save(make(rows_per_second=float("inf"), bytes_per_second=float("nan")))
    loaded = store.load("orders-2024")
    assert loaded is not None
    assert (loaded.rows_per_second, loaded.bytes_per_second) == (0.0, 0.0)


def test_a_long_error_is_truncated(store: CheckpointStore) -> None:
    assert store.save(make(status=Status.FAILED, error="x" * 100_000))
    loaded = store.load("orders-2024")
    assert loaded is not None
    assert loaded.error == "x" * 2000


def test_delete_removes_the_checkpoint(store: CheckpointStore) -> None:
    store.save(make())
    store.delete("orders-2024")
    assert store.load("orders-2024") is None
    store.delete("orders-2024")  # absent is fine


# -- never backwards --------------------------------------------------------------------


def test_progress_moves_forward(store: CheckpointStore) -> None:
    assert store.save(make(total_sent=1000))
    assert store.save(make(total_sent=2000, last_line=2001, kafka_offset=1999))
    loaded = store.load("orders-2024")
    assert loaded is not None
    assert loaded.total_sent == 2000


def test_a_lower_total_sent_is_refused_and_the_stored_one_kept(
    store: CheckpointStore, caplog: pytest.LogCaptureFixture
) -> None:
    newer = make(total_sent=2000, last_line=2001)
    assert store.save(newer)
    with caplog.at_level(logging.INFO, logger="csv_to_kafka.checkpoint"):
        assert store.save(make(total_sent=1000, updated_at="2024-05-01T11:00:00.000Z")) is False
    assert store.load("orders-2024") == newer
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert "newer checkpoint" in message
    assert "2000" in message  # the stored position, read back with ALL_OLD


@pytest.mark.parametrize("status", [Status.INTERRUPTED, Status.FAILED, Status.COMPLETED])
def test_a_status_change_at_the_same_position_is_allowed(
    store: CheckpointStore, status: Status
) -> None:
    assert store.save(make())
    changed = make(status=status, error=None if status is Status.COMPLETED else "stopped")
    assert store.save(changed) is True
    assert store.load("orders-2024") == changed


def test_a_resumed_job_may_write_running_over_interrupted(store: CheckpointStore) -> None:
    assert store.save(make(status=Status.INTERRUPTED, error="SIGTERM"))
    assert store.save(make(status=Status.RUNNING)) is True
    loaded = store.load("orders-2024")
    assert loaded is not None
    assert loaded.status is Status.RUNNING


def test_the_same_checkpoint_twice_is_allowed(store: CheckpointStore) -> None:
    # A PutItem retried after a timeout may have succeeded the first time.
    assert store.save(make())
    assert store.save(make()) is True
    assert store.save(make(status=Status.COMPLETED))
    assert store.save(make(status=Status.COMPLETED)) is True


@pytest.mark.parametrize("status", [Status.RUNNING, Status.INTERRUPTED, Status.FAILED])
def test_completed_is_not_overwritten_at_the_same_position(
    store: CheckpointStore, status: Status
) -> None:
    done = make(status=Status.COMPLETED, updated_at="2024-05-01T12:00:00.000Z")
    assert store.save(done)
    assert store.save(make(status=status)) is False  # a zombie instance
    assert store.load("orders-2024") == done


# -- the table --------------------------------------------------------------------------


def test_a_missing_table_is_a_config_error_naming_it(dynamodb) -> None:
    store = CheckpointStore("no-such-table", retry=FAST)
    with pytest.raises(ConfigError, match="no-such-table") as info:
        store.save(make())
    assert "--create-table" in str(info.value)
    assert isinstance(info.value.__cause__, botocore.exceptions.ClientError)
    with pytest.raises(ConfigError, match="no-such-table"):
        store.load("orders-2024")


def test_create_table_creates_it_on_demand(dynamodb, caplog: pytest.LogCaptureFixture) -> None:
    store = CheckpointStore("fresh-table", retry=FAST, create_table=True)
    with caplog.at_level(logging.INFO, logger="csv_to_kafka.checkpoint"):
        assert store.load("orders-2024") is None
    described = dynamodb.describe_table(TableName="fresh-table")["Table"]
    assert described["TableStatus"] == "ACTIVE"
    assert described["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert "creating DynamoDB table fresh-table" in caplog.text
    assert store.save(make())
    assert store.load("orders-2024") == make()


def test_create_table_on_save_stores_the_checkpoint(dynamodb) -> None:
    store = CheckpointStore("fresh-table", retry=FAST, create_table=True)
    assert store.save(make()) is True
    assert CheckpointStore("fresh-table", retry=FAST).load("orders-2024") == make()


def test_no_region_is_a_config_error(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigError, match="AWS_REGION"):
        CheckpointStore(TABLE, retry=FAST)


# -- errors and retries (injected at the boto level) ------------------------------------


@pytest.fixture
def stubbed(aws_env: None) -> Iterator[tuple[object, Stubber]]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def test_throttling_is_retried_until_it_passes(stubbed) -> None:
    client, stubber = stubbed
    stubber.add_client_error("put_item", "ThrottlingException", http_status_code=400)
    stubber.add_client_error("put_item", "ProvisionedThroughputExceededException", 400)
    stubber.add_response("put_item", {})
    retried: list[BaseException] = []
    store = CheckpointStore(TABLE, retry=FAST, client=client, on_retry=retried.append)
    assert store.save(make()) is True
    stubber.assert_no_pending_responses()
    assert len(retried) == 2


def test_a_server_error_on_load_is_retried(stubbed) -> None:
    client, stubber = stubbed
    stubber.add_client_error("get_item", "InternalServerError", http_status_code=500)
    stubber.add_response("get_item", {})
    assert CheckpointStore(TABLE, retry=FAST, client=client).load("orders-2024") is None
    stubber.assert_no_pending_responses()


def test_throttling_beyond_the_budget_is_an_infrastructure_error(stubbed) -> None:
    client, stubber = stubbed
    for _ in range(200):
        stubber.add_client_error("put_item", "ThrottlingException", http_status_code=400)
    policy = RetryPolicy(total_seconds=0.1, initial_backoff=0.01, max_backoff=0.02)
    with pytest.raises(InfrastructureError, match=TABLE) as info:
        CheckpointStore(TABLE, retry=policy, client=client).save(make())
    assert isinstance(info.value.__cause__, botocore.exceptions.ClientError)


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("AccessDeniedException", ConfigError),
        ("UnrecognizedClientException", ConfigError),
        ("ValidationException", ConfigError),
        ("ItemCollectionSizeLimitExceededException", InfrastructureError),
    ],
)
def test_a_non_transient_error_surfaces_at_once_as_our_error(
    stubbed, code: str, error_type: type[Exception]
) -> None:
    client, stubber = stubbed
    stubber.add_client_error("put_item", code, http_status_code=400)
    retried: list[BaseException] = []
    store = CheckpointStore(TABLE, retry=FAST, client=client, on_retry=retried.append)
    with pytest.raises(error_type, match=TABLE) as info:
        store.save(make())
    assert type(info.value) is error_type
    assert isinstance(info.value.__cause__, botocore.exceptions.ClientError)
    assert code in str(info.value)
    assert retried == []


def test_an_unreachable_endpoint_is_retried_then_an_infrastructure_error(aws_env: None) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    calls = 0

    def refuse(**_: object) -> None:
        nonlocal calls
        calls += 1
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://dynamodb")

    client.get_item = refuse  # type: ignore[method-assign]
    policy = RetryPolicy(total_seconds=0.1, initial_backoff=0.01, max_backoff=0.02)
    with pytest.raises(InfrastructureError, match=TABLE):
        CheckpointStore(TABLE, retry=policy, client=client).load("orders-2024")
    assert calls > 1


def test_missing_credentials_are_a_config_error(aws_env: None) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")

    def no_credentials(**_: object) -> None:
        raise botocore.exceptions.NoCredentialsError()

    client.get_item = no_credentials  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match="credentials"):
        CheckpointStore(TABLE, retry=FAST, client=client).load("orders-2024")


def test_access_denied_creating_the_table_is_a_config_error(stubbed) -> None:
    client, stubber = stubbed
    stubber.add_client_error("get_item", "ResourceNotFoundException", http_status_code=400)
    stubber.add_client_error("create_table", "AccessDeniedException", http_status_code=400)
    store = CheckpointStore(TABLE, retry=FAST, client=client, create_table=True)
    with pytest.raises(ConfigError, match="CreateTable"):
        store.load("orders-2024")


def test_a_table_created_by_another_instance_is_waited_for(stubbed) -> None:
    client, stubber = stubbed
    stubber.add_client_error("get_item", "ResourceNotFoundException", http_status_code=400)
    stubber.add_client_error("create_table", "ResourceInUseException", http_status_code=400)
    stubber.add_response("describe_table", {"Table": {"TableName": TABLE, "TableStatus": "ACTIVE"}})
    stubber.add_response("get_item", {})
    store = CheckpointStore(TABLE, retry=FAST, client=client, create_table=True)
    assert store.load("orders-2024") is None
    stubber.assert_no_pending_responses()


def test_a_table_still_missing_after_creation_is_an_infrastructure_error(stubbed) -> None:
    client, stubber = stubbed
    stubber.add_client_error("put_item", "ResourceNotFoundException", http_status_code=400)
    stubber.add_response("create_table", {})
    stubber.add_response("describe_table", {"Table": {"TableName": TABLE, "TableStatus": "ACTIVE"}})
    stubber.add_client_error("put_item", "ResourceNotFoundException", http_status_code=400)
    store = CheckpointStore(TABLE, retry=FAST, client=client, create_table=True)
    with pytest.raises(InfrastructureError, match=TABLE):
        store.save(make())


def test_a_botocore_error_is_an_infrastructure_error(aws_env: None) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")

    def invalid(**_: object) -> None:
        raise botocore.exceptions.ParamValidationError(report="simulated")

    client.put_item = invalid  # type: ignore[method-assign]
    with pytest.raises(InfrastructureError, match=TABLE) as info:
        CheckpointStore(TABLE, retry=FAST, client=client).save(make())
    assert isinstance(info.value.__cause__, botocore.exceptions.ParamValidationError)


# -- progress -----------------------------------------------------------------------------


def test_percent_done_and_eta() -> None:
    cp = make(byte_offset=250, total_bytes=1000, bytes_per_second=50.0)
    assert cp.percent_done == pytest.approx(25.0)
    assert cp.eta_seconds == pytest.approx(15.0)


def test_completed_is_100_percent_with_no_time_left() -> None:
    cp = make(status=Status.COMPLETED, byte_offset=999, total_bytes=1000, bytes_per_second=0.0)
    assert cp.percent_done == 100.0
    assert cp.eta_seconds == 0.0


def test_an_empty_object_is_100_percent() -> None:
    assert make(byte_offset=0, total_bytes=0).percent_done == 100.0


def test_all_bytes_committed_but_not_yet_completed_has_no_time_left() -> None:
    cp = make(byte_offset=1000, total_bytes=1000, bytes_per_second=0.0)
    assert (cp.percent_done, cp.eta_seconds) == (100.0, 0.0)


@pytest.mark.parametrize("rate", [0.0, float("nan")])
def test_eta_is_unknown_without_a_rate(rate: float) -> None:
    assert make(byte_offset=0, total_bytes=1000, bytes_per_second=rate).eta_seconds is None


@pytest.mark.parametrize("status", [Status.INTERRUPTED, Status.FAILED])
def test_eta_is_unknown_when_the_job_is_not_running(status: Status) -> None:
    assert make(status=status).eta_seconds is None


def test_json_dict_has_every_field_plus_progress() -> None:
    cp = make(byte_offset=500, total_bytes=1000, bytes_per_second=100.0)
    data = json.loads(json.dumps(cp.to_json_dict()))
    fields = {f.name for f in dataclasses.fields(Checkpoint)}
    assert set(data) == fields | {"percent_done", "eta_seconds"}
    assert data["status"] == "RUNNING"
    assert data["percent_done"] == 50.0
    assert data["eta_seconds"] == 5.0
    assert data["version_id"] == cp.version_id


def test_utc_now_iso_is_utc_with_z() -> None:
    stamp = utc_now_iso()
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - parsed) < timedelta(seconds=5)
