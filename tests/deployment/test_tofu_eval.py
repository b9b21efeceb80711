"""Our Terraform expressions, evaluated by the real OpenTofu binary (`tofu console`).

`tofu validate` and `plan` need the AWS provider, which cannot be downloaded here; `tofu console`
does not, for a configuration with no resources. So each test copies a directory's variables.tf
(its validation rules included) and some of its `locals` blocks, verbatim, into a scratch
directory, replaces the few references to resources and modules by fixed values, and evaluates:
the variables against terraform.tfvars.example, the dashboard body, the MSK ARNs and the
container's environment, and option 3's user data, compared byte for byte with launch-spot.sh's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from .conftest import MODULES, ROOT, STACKS, tool, write_outputs

EXAMPLE_CLUSTER = (
    "arn:aws:kafka:us-east-1:123456789012:cluster/mycluster/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b-2"
)


# modules/monitoring's alarm_arns names the parts' alarms thus (tofu console has no resources).
PARTS_ALARM_ARNS = (
    '[for part in range(var.parts) : aws_cloudwatch_metric_alarm.no_progress["part-${part}"].arn]'
)


def locals_blocks(text: str) -> str:
    """Every top-level `locals { ... }` block of a file, verbatim."""
    blocks = []
    for match in re.finditer(r"^locals \{\n", text, flags=re.MULTILINE):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        blocks.append(text[match.start() : i])
    return "\n\n".join(blocks)


class Console:
    """A scratch configuration and `tofu console` over it."""

    def __init__(self, directory: Path, var_file: Path | None = None, **variables: str) -> None:
        self.directory = directory
        self.args = [tool("tofu"), "console", "-no-color"]
        if var_file is not None:
            self.args.append(f"-var-file={var_file}")
        for name, value in variables.items():
            self.args.append(f"-var={name}={value}")

    def run(self, expression: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args,
            input=expression + "\n",
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"},
        )

    def json(self, expression: str) -> Any:
        result = self.run(f"jsonencode({expression})")
        assert result.returncode == 0, result.stderr
        assert "Error" not in result.stderr, result.stderr
        return json.loads(json.loads(result.stdout.strip()))


def scratch(tmp_path: Path, variables: Path, *texts: str) -> Path:
    (tmp_path / "variables.tf").write_text(variables.read_text())
    (tmp_path / "locals.tf").write_text("\n\n".join(texts))
    return tmp_path


# --- variables: the example passes every validation rule, bad values do not --------------------


@pytest.mark.parametrize("stack_name", list(STACKS))
def test_the_tfvars_example_passes_the_variables_validation(
    stack_name: str, tmp_path: Path
) -> None:
    terraform = STACKS[stack_name] / "terraform"
    console = Console(
        scratch(tmp_path, terraform / "variables.tf"), terraform / "terraform.tfvars.example"
    )
    assert console.json("var.job_id") == "orders-2024"
    assert console.json("var.msk_cluster_arn") == EXAMPLE_CLUSTER


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("msk_cluster_arn", "arn:aws:kafka:us-east-1:123456789012:topic/mycluster/uuid/orders"),
        ("kafka_auth", "plaintext"),
        ("subnet_ids", '["vpc-0123456789abcdef0"]'),
        ("job_id", "has space"),
        ("kafka_bootstrap_servers", "broker-without-port"),
        ("task_cpu", "3000"),
        ("name", "a-name-longer-than-twenty"),
    ],
)
def test_bad_values_are_refused(name: str, value: str, tmp_path: Path) -> None:
    terraform = STACKS["option1-ecs-fargate"] / "terraform"
    console = Console(
        scratch(tmp_path, terraform / "variables.tf"),
        terraform / "terraform.tfvars.example",
        **{name: value},
    )
    result = console.run(f"var.{name}")
    assert "Invalid value for variable" in result.stderr, result.stderr


# --- options 1 and 2: the status commands they output, run against moto -------------------------


@pytest.mark.parametrize("stack_name", ["option1-ecs-fargate", "option2-aws-batch"])
def test_the_status_commands_show_the_job_and_its_parts(
    stack_name: str, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    from csv_to_kafka._retry import RetryPolicy
    from csv_to_kafka.checkpoint import Checkpoint, CheckpointStore, Status
    from csv_to_kafka.plan import Part, Plan, part_job_id

    terraform = STACKS[stack_name] / "terraform"
    table = f"csv-to-kafka-status-{uuid.uuid4().hex[:8]}"
    text = locals_blocks((terraform / "outputs.tf").read_text()).replace(
        "module.core.table_name", f'"{table}"'
    )
    bucket = f"status-{uuid.uuid4().hex[:12]}"
    key = "exports/it's big.csv"  # a space and a quote: the plan URL is quoted for the shell
    job = f"orders-{uuid.uuid4().hex[:6]}"
    console = Console(
        scratch(tmp_path, terraform / "variables.tf", text),
        terraform / "terraform.tfvars.example",
        s3_bucket=bucket,
        s3_key=key,
        job_id=job,
    )
    status = console.json("local.status_command")
    parts_status = console.json("local.parts_status_command")
    assert status == (
        f"AWS_REGION=us-east-1 csv-to-kafka status --job-id {job} --checkpoint-table {table}"
    )
    assert parts_status.startswith(status + " --plan ")

    # The job in 2 parts as deploy.sh --parts leaves it: the plan at SOURCE.plan.json, part 0
    # done, part 1 not started yet.
    source = f"s3://{bucket}/{key}"
    plan = Plan(
        source, '"e"', None, 200, ["id"], [Part(0, 3, 100, 2, 10), Part(1, 100, 200, 12, 10)]
    )
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=f"{key}.plan.json", Body=plan.to_json().encode())
    store = CheckpointStore(table, retry=RetryPolicy(total_seconds=10), create_table=True)
    store.save(
        Checkpoint(
            part_job_id(job, 0), Status.COMPLETED, source, "orders", '"e"', None,
            11, 10, 100, 9, 97, 0.0, 0.0, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z",
        )
    )  # fmt: skip

    def run(command: str) -> str:
        result = subprocess.run(
            ["bash", "-c", command], env=aws_env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        return result.stdout

    assert run(status).splitlines()[:2] == [
        f"job {job}: 1 of 1 parts done, 10 rows, 100.0% done (parts found by job id; pass "
        "--plan to list all)",
        "  part 0: COMPLETED, 10 rows, 100.0%",
    ]
    assert run(parts_status).splitlines() == [
        f"job {job}: 1 of 2 parts done, 10 rows, 49.2% done",  # 97 of 97 + 100 bytes
        "  part 0: COMPLETED, 10 rows, 100.0%",
        "  part 1: NOT STARTED, 0 rows, 0.0%",
    ]


# --- modules/core: ARNs and the container's environment ----------------------------------------


def core_console(tmp_path: Path, **variables: str) -> Console:
    text = locals_blocks((MODULES / "core" / "main.tf").read_text()) + "\n\n"
    text += locals_blocks((MODULES / "core" / "iam.tf").read_text())
    text = (
        text.replace("data.aws_caller_identity.current.account_id", '"123456789012"')
        .replace("data.aws_partition.current.partition", '"aws"')
        .replace("data.aws_vpc.this.cidr_block", '"10.0.0.0/16"')
    )
    base = {
        "aws_region": "us-east-1",
        "s3_bucket": "my-data-bucket",
        "s3_keys": '["exports/orders-2024.csv"]',
        "msk_cluster_arn": EXAMPLE_CLUSTER,
        "kafka_topics": '["orders"]',
        "job_ids": '["orders-2024", "2024-*"]',
        "vpc_id": "vpc-0123456789abcdef0",
        "kafka_bootstrap_servers": "b-1.example:9098,b-2.example:9098",
    }
    return Console(
        scratch(tmp_path, MODULES / "core" / "variables.tf", text), **{**base, **variables}
    )


def test_msk_resource_arns(tmp_path: Path) -> None:
    console = core_console(tmp_path)
    prefix = "arn:aws:kafka:us-east-1:123456789012"
    cluster = "mycluster/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b-2"
    assert console.json("local.topic_arns") == [f"{prefix}:topic/{cluster}/orders"]
    assert console.json("local.transactional_id_arns") == [
        f"{prefix}:transactional-id/{cluster}/csv-to-kafka-orders-2024",
        f"{prefix}:transactional-id/{cluster}/csv-to-kafka-orders-2024.part-*",
        f"{prefix}:transactional-id/{cluster}/csv-to-kafka-2024-*",
        f"{prefix}:transactional-id/{cluster}/csv-to-kafka-2024-*.part-*",
    ]
    assert (
        console.json("local.reader_group_arn") == f"{prefix}:group/{cluster}/csv-to-kafka-reader-*"
    )
    assert console.json("local.source_object_arns") == [
        "arn:aws:s3:::my-data-bucket/exports/orders-2024.csv"
    ]
    assert console.json("local.plan_object_arns") == [
        "arn:aws:s3:::my-data-bucket/exports/orders-2024.csv.plan.json"
    ]
    assert console.json("local.kafka_cidr_blocks") == ["10.0.0.0/16"]


def test_the_container_environment_for_iam(tmp_path: Path) -> None:
    console = core_console(tmp_path)
    assert console.json("local.environment") == {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CSV_TO_KAFKA_AUTH": "iam",
        "CSV_TO_KAFKA_BOOTSTRAP_SERVERS": "b-1.example:9098,b-2.example:9098",
        "CSV_TO_KAFKA_CHECKPOINT_TABLE": "csv-to-kafka-checkpoints",
        "CSV_TO_KAFKA_CREATE_TABLE": "false",
        "CSV_TO_KAFKA_CREATE_TOPIC": "false",
        "CSV_TO_KAFKA_METRICS_NAMESPACE": "CsvToKafka",
        "CSV_TO_KAFKA_PROGRESS": "json",
    }
    assert console.json("local.secrets") == []


def test_the_container_environment_for_scram(tmp_path: Path) -> None:
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_csv-AbCdEf"
    console = core_console(
        tmp_path,
        kafka_auth="scram-sha-512",
        sasl_username="copier",
        sasl_secret_arn=secret,
        extra_environment='{CSV_TO_KAFKA_CHECKPOINT_EVERY = "20000"}',
    )
    environment = console.json("local.environment")
    assert environment["CSV_TO_KAFKA_AUTH"] == "scram-sha-512"
    assert environment["CSV_TO_KAFKA_SASL_USERNAME"] == "copier"
    assert environment["CSV_TO_KAFKA_CHECKPOINT_EVERY"] == "20000"
    assert "CSV_TO_KAFKA_SASL_PASSWORD" not in environment
    assert console.json("local.secrets") == [
        {"name": "CSV_TO_KAFKA_SASL_PASSWORD", "valueFrom": f"{secret}:password::"}
    ]


def test_the_password_cannot_be_set_in_plain_text(tmp_path: Path) -> None:
    console = core_console(tmp_path, extra_environment='{CSV_TO_KAFKA_SASL_PASSWORD = "x"}')
    assert "Invalid value for variable" in console.run("local.environment").stderr


# --- modules/monitoring: the dashboard body -----------------------------------------------------


def monitoring_console(tmp_path: Path, **variables: str) -> Console:
    """modules/monitoring's locals over its variables (the alarms' ARNs stand-ins)."""
    text = locals_blocks((MODULES / "monitoring" / "main.tf").read_text())
    text = text.replace("aws_cloudwatch_metric_alarm.errors.arn", '"arn:aws:cloudwatch:errors"')
    text = text.replace(
        'aws_cloudwatch_metric_alarm.no_progress["job"].arn', '"arn:aws:cloudwatch:stalled"'
    )
    text = text.replace("aws_cloudwatch_metric_alarm.bad_rows[*].arn", '["arn:aws:cloudwatch:bad"]')
    text = text.replace(PARTS_ALARM_ARNS, "[]")
    return Console(
        scratch(tmp_path, MODULES / "monitoring" / "variables.tf", text),
        name="csv-to-kafka-orders-2024",
        aws_region="us-east-1",
        job_id="orders-2024",
        hourly_cost_usd="0.0987",
        log_group_name="/csv-to-kafka/csv-to-kafka",
        **variables,
    )


@pytest.fixture
def dashboard(tmp_path: Path) -> list[dict[str, Any]]:
    console = monitoring_console(tmp_path)
    body = console.json("{ widgets = concat(local.widgets, var.extra_widgets) }")
    return list(body["widgets"])


def test_a_job_in_parts_has_a_no_progress_alarm_per_part_job_id(tmp_path: Path) -> None:
    """The no-progress alarm watches the job's id, and with parts = 3 also J.part-0 to J.part-2
    (where each part sends its RecordsSent and ProgressPercent), each named for its part."""
    watches = monitoring_console(tmp_path, parts="3").json("local.progress_watches")
    assert sorted(watches) == ["job", "part-0", "part-1", "part-2"]
    assert watches["job"]["job_id"] == "orders-2024"
    assert watches["job"]["alarm_name"] == "csv-to-kafka-orders-2024-no-progress"
    for part in range(3):
        watch = watches[f"part-{part}"]
        assert watch["job_id"] == f"orders-2024.part-{part}"
        assert watch["alarm_name"] == f"csv-to-kafka-orders-2024-part-{part}-no-progress"
        assert f"part {part} (job id orders-2024.part-{part})" in watch["description"]
    alone = monitoring_console(tmp_path).json("local.progress_watches")
    assert list(alone) == ["job"]


def test_the_dashboard_body_is_well_formed(dashboard: list[dict[str, Any]]) -> None:
    documented = set(
        re.findall(
            r"^\| `([A-Za-z]+)` \| `", (ROOT / "docs" / "metrics.md").read_text(), re.MULTILINE
        )
    )
    graphs = [w for w in dashboard if w["type"] != "text"]
    assert len(graphs) >= 7
    seen: set[str] = set()
    for widget in dashboard:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget)
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] != "metric":
            continue
        ids: set[str] = set()
        expressions = []
        for row in widget["properties"]["metrics"]:
            options = row[-1] if isinstance(row[-1], dict) else {}
            if "expression" in options:
                expressions.append(options["expression"])
            else:
                namespace, name, dimension, job = row[:4]
                assert (namespace, dimension, job) == ("CsvToKafka", "JobId", "orders-2024")
                assert name in documented, name
                seen.add(name)
            if "id" in options:
                ids.add(options["id"])
        for expression in expressions:
            for ref in re.findall(r"\b([me][0-9])\b", expression):
                assert ref in ids, f"{widget['properties']['title']}: {expression} uses {ref}"
    assert seen == documented, f"not on the dashboard: {documented - seen}"
    cost = next(
        w for w in dashboard if w["properties"].get("title") == "Estimated cost so far (USD)"
    )
    assert [m[-1].get("expression") for m in cost["properties"]["metrics"]][1:] == [
        "IF(m1 > 0, PERIOD(m1), 0)",
        "RUNNING_SUM(e1) / 3600",
        "e2 * 0.0987",
    ]
    alarms = next(w for w in dashboard if w["type"] == "alarm")
    assert alarms["properties"]["alarms"] == [
        "arn:aws:cloudwatch:errors",
        "arn:aws:cloudwatch:stalled",
        "arn:aws:cloudwatch:bad",
    ]
    logs = next(w for w in dashboard if w["type"] == "log")
    assert logs["properties"]["query"].startswith("SOURCE '/csv-to-kafka/csv-to-kafka' |")


# --- option 3: Terraform's user data is launch-spot.sh's ---------------------------------------


def test_the_launch_templates_user_data_is_launch_spots(tmp_path: Path) -> None:
    terraform = STACKS["option3-ec2-spot"] / "terraform"
    environment = {
        "AWS_REGION": "us-east-1",
        "CSV_TO_KAFKA_AUTH": "iam",
        "CSV_TO_KAFKA_CHECKPOINT_TABLE": "csv-to-kafka-checkpoints",
        "CSV_TO_KAFKA_PROGRESS": "json",
    }
    repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/csv-to-kafka"
    text = locals_blocks((terraform / "main.tf").read_text())
    text = (
        text.replace("module.core.environment", json.dumps(environment).replace('":', '" ='))
        .replace("module.core.ecr_repository_url", json.dumps(repository))
        .replace("module.core.log_group_name", '"/csv-to-kafka/csv-to-kafka"')
        .replace(
            'file("${path.module}/../user-data.sh")',
            f'file("{STACKS["option3-ec2-spot"] / "user-data.sh"}")',
        )
    )
    console = Console(
        scratch(tmp_path, terraform / "variables.tf", text), terraform / "terraform.tfvars.example"
    )
    from_terraform = console.json("local.user_data")
    job_environment = console.json("local.environment")

    outputs = write_outputs(
        tmp_path / "outputs.json",
        {
            "image": f"{repository}:latest-build",
            "log_group_name": "/csv-to-kafka/csv-to-kafka",
            "retry_attempts": 3,
            "environment": job_environment,
            "sasl_secret_arn": None,
        },
    )
    result = subprocess.run(
        [
            str(STACKS["option3-ec2-spot"] / "launch-spot.sh"),
            "--skip-build",
            "--skip-apply",
            "--outputs",
            str(outputs),
            "--print-user-data",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"]},
    )
    assert result.returncode == 0, result.stderr
    from_script = result.stdout

    def settings(user_data: str) -> list[str]:
        return [
            line for line in user_data.splitlines() if not line.startswith("# Settings written by")
        ]

    assert settings(from_terraform) == settings(from_script)
    assert (
        "export CSV_TO_KAFKA_SOURCE='s3://my-data-bucket/exports/orders-2024.csv'" in from_terraform
    )


# --- the stacks: a prefix, several sources, and what the container and IAM get ----------------


def stack_console(tmp_path: Path, stack_name: str, **variables: str) -> Console:
    """A stack's locals, module.core and data sources replaced by fixed values."""
    terraform = STACKS[stack_name] / "terraform"
    text = locals_blocks((terraform / "main.tf").read_text())
    text = text.replace("module.core.environment", '{ CSV_TO_KAFKA_AUTH = "iam" }')
    text = text.replace("module.core.secrets", "[]")
    text = re.sub(r"module\.core\.\w+", '"stub"', text)
    text = text.replace("data.aws_partition.current.partition", '"aws"')
    text = text.replace('file("${path.module}/../user-data.sh")', '"# user-data.sh"')
    return Console(
        scratch(tmp_path, terraform / "variables.tf", text),
        terraform / "terraform.tfvars.example",
        **variables,
    )


@pytest.mark.parametrize("stack_name", list(STACKS))
def test_a_stack_over_a_prefix_and_more_prefixes(stack_name: str, tmp_path: Path) -> None:
    console = stack_console(
        tmp_path,
        stack_name,
        s3_key="exports/orders/2024-12-05/",
        s3_prefixes='["exports/orders/2024-12-06/", "late/"]',
    )
    assert console.json("local.environment")["CSV_TO_KAFKA_SOURCE"] == (
        "s3://my-data-bucket/exports/orders/2024-12-05/\n"
        "s3://my-data-bucket/exports/orders/2024-12-06/\n"
        "s3://my-data-bucket/late/"
    )
    assert console.json("local.source_prefixes") == [
        "exports/orders/2024-12-05/",
        "exports/orders/2024-12-06/",
        "late/",
    ]
    assert console.json("local.source_object_keys") == [
        "exports/orders/2024-12-05/*",
        "exports/orders/2024-12-06/*",
        "late/*",
    ]


@pytest.mark.parametrize("stack_name", list(STACKS))
def test_a_stack_over_one_object_is_as_before(stack_name: str, tmp_path: Path) -> None:
    console = stack_console(tmp_path, stack_name)
    environment = console.json("local.environment")
    assert environment["CSV_TO_KAFKA_SOURCE"] == "s3://my-data-bucket/exports/orders-2024.csv"
    assert environment["CSV_TO_KAFKA_AUTH"] == "iam"
    assert console.json("local.source_prefixes") == []
    assert console.json("local.source_object_keys") == ["exports/orders-2024.csv"]


@pytest.mark.parametrize("stack_name", list(STACKS))
def test_extra_environment_overrides_the_source(stack_name: str, tmp_path: Path) -> None:
    source = "s3://my-data-bucket/exports/orders-2025.csv"
    console = stack_console(
        tmp_path,
        stack_name,
        extra_environment=f'{{ CSV_TO_KAFKA_SOURCE = "{source}" }}',
    )
    assert console.json("local.environment")["CSV_TO_KAFKA_SOURCE"] == source


def test_s3_prefixes_must_end_with_a_slash(tmp_path: Path) -> None:
    result = stack_console(tmp_path, "option1-ecs-fargate", s3_prefixes='["exports"]').run(
        "var.s3_prefixes"
    )
    assert "Invalid value for variable" in result.stderr, result.stderr


def test_core_grants_get_object_under_a_prefix(tmp_path: Path) -> None:
    console = core_console(
        tmp_path, s3_keys='["exports/orders/*"]', s3_prefixes='["exports/orders/"]'
    )
    assert console.json("local.source_object_arns") == [
        "arn:aws:s3:::my-data-bucket/exports/orders/*"
    ]
