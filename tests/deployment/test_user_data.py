"""option3-ec2-spot/user-data.sh, run for real: a stub IMDSv2 server on loopback, the image's
csv-to-kafka instead of `docker run` (and once its own `docker run` of the built image), a stub
instead of `shutdown`, the local stack as AWS/MSK."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest

from .conftest import ROOT, VENV_BIN, BuiltImage, ImageVenv
from .helpers import (
    Imds,
    checkpoint,
    committed_lines,
    create_checkpoint_table,
    data_lines,
    imds_stub,
    make_csv,
    wait_for_rows,
)

USER_DATA = ROOT / "option3-ec2-spot" / "user-data.sh"
TABLE = "csv-to-kafka-deployment-checkpoints"


@pytest.fixture(scope="module")
def bucket(stack: dict[str, str]) -> str:
    name = f"spot-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    create_checkpoint_table(TABLE)
    return name


def shutdown_stub(tmp_path: Path) -> tuple[str, Path]:
    """A command that records that it ran (and with what) instead of powering off."""
    record = tmp_path / "shutdown.log"
    stub = tmp_path / "shutdown"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {record}\n')
    stub.chmod(0o755)
    return f"{stub} -h now", record


def spot_env(
    stack: dict[str, str],
    image_venv: ImageVenv | None,
    imds: Imds,
    shutdown: str,
    **settings: str,
) -> dict[str, str]:
    """The settings Terraform writes in front of user-data.sh, plus the test's substitutes."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "AWS_REGION": stack["AWS_REGION"],
        "AWS_ENDPOINT_URL": stack["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CSV_TO_KAFKA_BOOTSTRAP_SERVERS": stack["KAFKA_BOOTSTRAP_SERVERS"],
        "CSV_TO_KAFKA_CHECKPOINT_TABLE": TABLE,
        "CSV_TO_KAFKA_CREATE_TABLE": "false",
        "CSV_TO_KAFKA_CREATE_TOPIC": "true",
        "CSV_TO_KAFKA_AUTH": "none",
        "CSV_TO_KAFKA_PROGRESS": "json",
        "CSV_TO_KAFKA_METRICS_INTERVAL": "5",
        "CSV_TO_KAFKA_RETRY_SECONDS": "30",
        "SPOT_JOB_PROCESSOR": str(image_venv.bin / "csv-to-kafka") if image_venv else "",
        "SPOT_JOB_SHUTDOWN": shutdown,
        "SPOT_JOB_IMDS": imds.url,
        "SPOT_JOB_POLL_SECONDS": "0.2",
        **settings,
    }


def start(env: dict[str, str], script: Path = USER_DATA) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["bash", str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str]:
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise
    return proc.returncode, err


def test_a_job_runs_to_the_end_and_the_instance_powers_off(
    stack: dict[str, str], bucket: str, image_venv: ImageVenv, tmp_path: Path
) -> None:
    rows, topic, job = 5000, f"spot-{uuid.uuid4()}", f"spot-{uuid.uuid4()}"
    boto3.client("s3").put_object(Bucket=bucket, Key="done.csv", Body=make_csv(rows))
    shutdown, record = shutdown_stub(tmp_path)
    with imds_stub() as imds:
        env = spot_env(
            stack,
            image_venv,
            imds,
            shutdown,
            CSV_TO_KAFKA_SOURCE=f"s3://{bucket}/done.csv",
            CSV_TO_KAFKA_TOPIC=topic,
            CSV_TO_KAFKA_JOB_ID=job,
        )
        code, log = finish(start(env))
    assert code == 0, log[-3000:]
    assert record.read_text() == "-h now\n", "the shutdown command ran once, at the end"
    assert committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic) == data_lines(rows)
    assert checkpoint(TABLE, job)["status"] == "COMPLETED"
    # IMDSv2: every metadata read carried a session token obtained with a PUT.
    assert ("PUT", "/latest/api/token", True) in imds.requests
    gets = [r for r in imds.requests if r[0] == "GET"]
    assert gets
    assert all(authorized for _, _, authorized in gets)
    assert "powering off" in log


def test_an_interruption_notice_stops_the_job_cleanly_and_a_rerun_resumes(
    stack: dict[str, str], bucket: str, image_venv: ImageVenv, tmp_path: Path
) -> None:
    # Small transactions make the run last long enough to be interrupted mid-way.
    rows, topic, job = 40_000, f"spot-{uuid.uuid4()}", f"spot-{uuid.uuid4()}"
    boto3.client("s3").put_object(Bucket=bucket, Key="spot.csv", Body=make_csv(rows))
    shutdown, record = shutdown_stub(tmp_path)
    settings = {
        "CSV_TO_KAFKA_SOURCE": f"s3://{bucket}/spot.csv",
        "CSV_TO_KAFKA_TOPIC": topic,
        "CSV_TO_KAFKA_JOB_ID": job,
        "CSV_TO_KAFKA_CHECKPOINT_EVERY": "100",
    }
    with imds_stub() as imds:
        proc = start(spot_env(stack, image_venv, imds, shutdown, **settings))
        try:
            wait_for_rows(TABLE, job, 500)
        except AssertionError:
            os.killpg(proc.pid, 9)
            raise
        before = time.monotonic()
        imds.interrupt()  # spot/instance-action: 404 -> a notice
        code, log = finish(proc)
        stopped_in = time.monotonic() - before
    assert code == 143, log[-3000:]
    assert "Spot interruption notice" in log
    assert "sending SIGTERM" in log
    assert stopped_in < 60, "well within the two minutes' notice"
    assert record.read_text() == "-h now\n"
    first = committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic)
    assert 0 < len(first) < rows, "interrupted part-way"
    assert first == data_lines(rows)[: len(first)], "a clean prefix: in order, no duplicate"
    stopped = checkpoint(TABLE, job)
    assert int(stopped["total_sent"]) == len(first)
    assert stopped["status"] == "INTERRUPTED"

    # A new instance for the same job id (launch-spot.sh again) resumes where the commit left off.
    again = tmp_path / "again"
    again.mkdir()
    shutdown2, record2 = shutdown_stub(again)
    with imds_stub() as imds:
        code, log = finish(start(spot_env(stack, image_venv, imds, shutdown2, **settings)))
    assert code == 0, log[-3000:]
    assert record2.read_text() == "-h now\n"
    assert committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic) == data_lines(rows)


# The instance's docker for the user data's `docker run` branch: `run` is the real client against
# local/engine's engine, with the image make image built; `login` and `pull` have no registry to
# talk to. What EC2 gives the container through IMDS (the instance role's credentials) and
# AWS' endpoints stand in as moto's endpoint and fake keys, added to the run.
INSTANCE_DOCKER = r"""#!/usr/bin/env bash
set -euo pipefail
printf 'docker %s\n' "$*" >>"$FAKE_LOG"
case "$1" in
login) cat >/dev/null ;;
pull) "$REAL_DOCKER" image inspect "${@: -1}" >/dev/null ;;
run) shift; exec "$REAL_DOCKER" run --env AWS_ENDPOINT_URL --env AWS_ACCESS_KEY_ID \
    --env AWS_SECRET_ACCESS_KEY "$@" ;;
*) echo "docker stand-in: unexpected $*" >&2; exit 1 ;;
esac
"""


def test_the_instance_runs_the_built_image_and_an_interruption_stops_it_cleanly(
    stack: dict[str, str], bucket: str, image: BuiltImage, tmp_path: Path
) -> None:
    """user-data.sh's own branch, `docker run --network host --env NAME ... IMAGE run`, with the
    image of make image: the settings reach the container by name, and the Spot notice's
    SIGTERM reaches csv-to-kafka through the docker client (exit 143, a clean prefix)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(INSTANCE_DOCKER)
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    for name in ("docker", "systemctl"):
        (bin_dir / name).chmod(0o755)
    rows, topic, job = 200_000, f"spot-{uuid.uuid4()}", f"spot-{uuid.uuid4()}"
    boto3.client("s3").put_object(Bucket=bucket, Key="docker.csv", Body=make_csv(rows))
    shutdown, record = shutdown_stub(tmp_path)
    settings = {
        "CSV_TO_KAFKA_SOURCE": f"s3://{bucket}/docker.csv",
        "CSV_TO_KAFKA_TOPIC": topic,
        "CSV_TO_KAFKA_JOB_ID": job,
        "CSV_TO_KAFKA_CHECKPOINT_EVERY": "1000",
    }
    with imds_stub() as imds:
        env = spot_env(stack, None, imds, shutdown, **settings)
        del env["SPOT_JOB_PROCESSOR"]
        env.update(
            PATH=f"{bin_dir}{os.pathsep}{VENV_BIN}{os.pathsep}{env['PATH']}",
            SPOT_JOB_IMAGE=image.tag,
            REAL_DOCKER=shutil.which("docker") or "docker",
            DOCKER_HOST=os.environ.get("DOCKER_HOST", ""),
            FAKE_LOG=str(tmp_path / "calls"),
        )
        proc = start(env)
        try:
            wait_for_rows(TABLE, job, 5000, timeout=60)
        except AssertionError as err:
            os.killpg(proc.pid, 9)
            raise AssertionError(f"{err}:\n{proc.communicate()[1][-3000:]}") from err
        imds.interrupt()
        code, log = finish(proc)
    assert code == 143, log[-3000:]
    assert "sending SIGTERM" in log
    assert record.read_text() == "-h now\n"
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("docker login --username AWS --password-stdin")
    assert calls[1] == f"docker pull --quiet {image.tag}"
    assert calls[2].startswith("docker run --rm --name ")
    assert "--network host --env AWS_REGION --env AWS_DEFAULT_REGION" in calls[2]
    assert "--env CSV_TO_KAFKA_JOB_ID" in calls[2]
    assert job not in calls[2], "values never appear on a command line"
    first = committed_lines(stack["KAFKA_BOOTSTRAP_SERVERS"], topic)
    assert 0 < len(first) < rows, "interrupted part-way"
    assert first == data_lines(rows)[: len(first)], "a clean prefix: in order, no duplicate"
    stopped = checkpoint(TABLE, job)
    assert stopped["status"] == "INTERRUPTED"
    assert int(stopped["total_sent"]) == len(first)


def test_exit_4_is_retried_on_the_instance_and_bad_input_is_not(
    stack: dict[str, str], bucket: str, image_venv: ImageVenv, tmp_path: Path
) -> None:
    """A processor stand-in that exits 4, then 3: user-data.sh runs it again after 4 only."""
    calls = tmp_path / "calls"
    processor = tmp_path / "processor"
    processor.write_text(
        "#!/bin/bash\n"
        f'echo "$@" >> {calls}\n'
        f"if (( $(wc -l < {calls}) == 1 )); then exit 4; else exit 3; fi\n"
    )
    processor.chmod(0o755)
    shutdown, record = shutdown_stub(tmp_path)
    with imds_stub() as imds:
        env = spot_env(
            stack,
            image_venv,
            imds,
            shutdown,
            SPOT_JOB_PROCESSOR=str(processor),
            SPOT_JOB_ATTEMPTS="3",
        )
        code, log = finish(start(env))
    assert code == 3, log
    assert calls.read_text() == "run\nrun\n", "ran twice: after exit 4, not after exit 3"
    assert "exit 4 is retryable" in log
    assert record.read_text() == "-h now\n"


def test_a_failure_before_the_job_still_powers_off(tmp_path: Path, image_venv: ImageVenv) -> None:
    """No image and no processor: the script fails at once, and still shuts the instance down."""
    shutdown, record = shutdown_stub(tmp_path)
    with imds_stub() as imds:
        env = {
            "PATH": os.environ["PATH"],
            "AWS_REGION": "us-east-1",
            "SPOT_JOB_SHUTDOWN": shutdown,
            "SPOT_JOB_IMDS": imds.url,
        }
        code, log = finish(start(env), timeout=30)
    assert code != 0
    assert "SPOT_JOB_IMAGE must be set" in log
    assert record.read_text() == "-h now\n"
