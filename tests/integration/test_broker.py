"""Which broker the session runs against: the one ``CSV_TO_KAFKA_BROKER`` chose.

Run with the other integration tests, and again by ``make test`` with
``CSV_TO_KAFKA_BROKER=container``: then the broker must be the container of the Kafka image, so
that the copy, crash and verify tests of that run went through it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import BROKER_ENV, CONTAINER_ID_ENV


def test_the_broker_is_the_one_chosen(stack: dict[str, str]) -> None:
    bootstrap = stack["KAFKA_BOOTSTRAP_SERVERS"]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"broker-{uuid.uuid4()}"
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    assert topic in admin.list_topics(timeout=10).topics
    if os.environ.get(BROKER_ENV, "local") != "container":
        pytest.skip(f"{BROKER_ENV} is not 'container': the local stack or a given broker")
    container = os.environ[CONTAINER_ID_ENV]
    inspected = json.loads(
        subprocess.run(
            ["docker", "inspect", container], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    assert inspected["State"]["Running"]
    assert inspected["HostConfig"]["NetworkMode"] == "host"
    env = dict(entry.split("=", 1) for entry in inspected["Config"]["Env"])
    assert bootstrap == f"127.0.0.1:{env['KAFKA_PORT']}"
    # The topic is in the container's log dir, not the local stack's.
    listed = subprocess.run(
        ["docker", "exec", container, "ls", "/var/lib/kafka/data"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert f"{topic}-0" in listed
