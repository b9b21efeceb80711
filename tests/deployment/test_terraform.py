"""Structural checks of the Terraform, parsed with python-hcl2 (no provider, no AWS account).

Provider schemas cannot be downloaded on the build machines, so `tofu validate` cannot run; these
tests check what it would catch in our own code (undeclared or unused names, outputs that point
nowhere, module calls that do not match the module) plus what the deployment promises: least
privilege, retry rules, the dashboard built from docs/metrics.md.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from typing import Any

import pytest

from .conftest import MODULES, ROOT, STACKS, TerraformDir, unquote

STACK_FILES = {
    "main.tf",
    "variables.tf",
    "outputs.tf",
    "versions.tf",
    "cloudwatch_dashboard.tf",
    "terraform.tfvars.example",
}
MODULE_FILES = {"main.tf", "variables.tf", "outputs.tf", "versions.tf"}
# The inputs the issue names, in every stack; instance_type where there are instances to size.
ISSUE_INPUTS = {
    "aws_region",
    "s3_bucket",
    "s3_key",
    "kafka_bootstrap_servers",
    "kafka_topic",
    "msk_cluster_arn",
    "vpc_id",
    "subnet_ids",
    "job_id",
}
SIZING_INPUTS = {
    "option1-ecs-fargate": {"task_cpu": 2048, "task_memory": 4096},
    "option2-aws-batch": {"task_cpu": 2048, "task_memory": 4096, "instance_type": None},
    "option3-ec2-spot": {"instance_type": None},
}

REF = {
    "var": re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)"),
    "local": re.compile(r"(?<![\w.])local\.([A-Za-z_][\w-]*)"),
    "module": re.compile(r"(?<![\w.])module\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)"),
    "data": re.compile(r"(?<![\w.])data\.([a-z][\w]*)\.([A-Za-z_][\w-]*)"),
    "resource": re.compile(r"(?<![\w.\-/:])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)"),
}


def code(text: str) -> str:
    """The text without comments (a reference in a comment does not count)."""
    return "\n".join(re.sub(r"(^|\s)(#|//).*$", "", line) for line in text.splitlines())


def all_dirs(modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]) -> list[Any]:
    return [*modules.values(), *stacks.values()]


def dir_ids(modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]) -> list[str]:
    return [*(f"modules/{m}" for m in modules), *stacks]


# --- layout ------------------------------------------------------------------------------------


def test_each_stack_has_its_files_and_readme() -> None:
    for name, path in STACKS.items():
        present = {p.name for p in (path / "terraform").iterdir()}
        assert present >= STACK_FILES, f"{name}/terraform lacks {STACK_FILES - present}"
        assert (path / "README.md").is_file(), f"{name} has no README.md"


def test_each_module_has_its_files() -> None:
    for path in MODULES.iterdir():
        present = {p.name for p in path.iterdir()}
        assert present >= MODULE_FILES, f"{path.name} lacks {MODULE_FILES - present}"


def test_the_three_stacks_call_the_shared_modules(stacks: dict[str, TerraformDir]) -> None:
    for name, stack in stacks.items():
        sources = {unquote(body["source"]) for body in stack.named("module").values()}
        assert sources == {"../../modules/core", "../../modules/monitoring"}, name
        # The dashboard and alarms are in cloudwatch_dashboard.tf, the rest in main.tf.
        assert 'module "monitoring"' in stack.text["cloudwatch_dashboard.tf"], name
        assert 'module "core"' in stack.text["main.tf"], name


# --- names: declared, used, resolved -----------------------------------------------------------


def test_every_variable_has_a_description_and_a_type(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    for tf in all_dirs(modules, stacks):
        for name, body in tf.named("variable").items():
            assert unquote(body.get("description", "")).strip(), f"{tf.path}: var.{name}"
            assert body.get("type"), f"{tf.path}: var.{name} has no type"


def test_every_variable_used_is_declared_and_every_declared_one_is_used(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    for tf in all_dirs(modules, stacks):
        declared = set(tf.named("variable"))
        used = set(REF["var"].findall(code(tf.all_text)))
        assert used <= declared, f"{tf.path}: undeclared {used - declared}"
        assert declared <= used, f"{tf.path}: unused {declared - used}"


def test_every_local_used_is_declared(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    for tf in all_dirs(modules, stacks):
        declared = set(tf.locals())
        used = set(REF["local"].findall(code(tf.all_text)))
        assert used <= declared, f"{tf.path}: undeclared locals {used - declared}"


def test_every_resource_and_data_reference_resolves(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    for tf in all_dirs(modules, stacks):
        text = code(tf.all_text)
        resources = set(tf.typed("resource"))
        data = set(tf.typed("data"))
        for rtype, name in REF["data"].findall(text):
            assert f"{rtype}.{name}" in data, f"{tf.path}: data.{rtype}.{name} is not declared"
        without_data = REF["data"].sub("", text)
        for rtype, name in REF["resource"].findall(without_data):
            assert f"{rtype}.{name}" in resources, f"{tf.path}: {rtype}.{name} is not declared"


def test_module_calls_match_the_modules(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    for name, stack in stacks.items():
        calls = stack.named("module")
        for call, body in calls.items():
            module = modules[unquote(body["source"]).rsplit("/", 1)[-1]]
            variables = module.named("variable")
            passed = {k for k in body if k not in {"source", "__is_block__"}}
            assert passed <= set(variables), (
                f"{name}: module.{call} has no input {passed - set(variables)}"
            )
            required = {v for v, spec in variables.items() if "default" not in spec}
            assert required <= passed, f"{name}: module.{call} misses {required - passed}"
        for call, output in REF["module"].findall(code(stack.all_text)):
            assert call in calls, f"{name}: module.{call} is not declared"
            module = modules[unquote(calls[call]["source"]).rsplit("/", 1)[-1]]
            assert output in module.named("output"), f"{name}: module.{call}.{output} is no output"


def test_every_output_has_a_description_and_a_value(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    for tf in all_dirs(modules, stacks):
        outputs = tf.named("output")
        assert outputs, f"{tf.path} has no outputs"
        for name, body in outputs.items():
            assert unquote(body.get("description", "")).strip(), f"{tf.path}: output {name}"
            assert "value" in body, f"{tf.path}: output {name} has no value"


def test_outputs_of_optional_resources_survive_their_absence(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    """An output of a resource with ``count`` (indexed ``[0]``) is wrapped in ``try(..., null)``,
    which gives null when the count is 0; ``try`` around a resource that always exists could never
    fall back, and would hide a mistyped attribute as null, so it is not used there."""
    for tf in all_dirs(modules, stacks):
        for name, body in tf.named("output").items():
            value = str(body["value"])
            optional = "[0]" in value
            wrapped = value.startswith("${try(")
            problem = "indexed resource without try()" if optional else "try() cannot fall back"
            assert optional == wrapped, f"{tf.path}: output {name}: {problem}"


# --- inputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack_name", list(STACKS))
def test_stack_inputs_are_the_issues(stacks: dict[str, TerraformDir], stack_name: str) -> None:
    variables = stacks[stack_name].named("variable")
    assert set(variables) >= ISSUE_INPUTS
    for name, default in SIZING_INPUTS[stack_name].items():
        assert name in variables, f"{stack_name} lacks {name}"
        if default is not None:
            assert variables[name]["default"] == default
    for name in ISSUE_INPUTS:
        assert "default" not in variables[name], f"{stack_name}: {name} must be required"


@pytest.mark.parametrize("stack_name", list(STACKS))
def test_tfvars_example_sets_declared_variables_and_every_required_one(
    stacks: dict[str, TerraformDir], stack_name: str
) -> None:
    text = (STACKS[stack_name] / "terraform" / "terraform.tfvars.example").read_text()
    assigned = set(re.findall(r"^([a-z0-9_]+)\s*=", text, flags=re.MULTILINE))
    commented = set(re.findall(r"^#\s*([a-z0-9_]+)\s*=", text, flags=re.MULTILINE))
    variables = stacks[stack_name].named("variable")
    assert (assigned | commented) <= set(variables), (assigned | commented) - set(variables)
    required = {v for v, spec in variables.items() if "default" not in spec}
    assert required <= assigned, f"required but not in the example: {required - assigned}"


def test_shared_stack_variables_read_the_same_everywhere(stacks: dict[str, TerraformDir]) -> None:
    """A variable that two stacks share has the same type, default and description."""
    seen: dict[str, tuple[str, Any]] = {}
    for name, stack in stacks.items():
        for var, body in stack.named("variable").items():
            key = repr((body.get("type"), body.get("default"), body.get("description")))
            if var in ("task_cpu", "task_memory", "instance_type", "cpu_architecture") or (
                var in ("retry_attempts", "ec2_spot_price_hour")
            ):
                continue  # sized per option on purpose
            if var in seen:
                assert seen[var][1] == key, f"var.{var} differs between {seen[var][0]} and {name}"
            else:
                seen[var] = (name, key)


def test_variables_with_a_closed_set_of_values_are_validated(
    stacks: dict[str, TerraformDir],
) -> None:
    for name, stack in stacks.items():
        variables = stack.named("variable")
        for var in (
            "aws_region",
            "msk_cluster_arn",
            "vpc_id",
            "subnet_ids",
            "job_id",
            "kafka_auth",
        ):
            assert variables[var].get("validation"), f"{name}: var.{var} is not validated"


# --- what the container gets -----------------------------------------------------------------


def cli_environment_names() -> set[str]:
    help_text = subprocess.run(
        [sys.executable, "-m", "csv_to_kafka.cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(re.findall(r"^\s+(CSV_TO_KAFKA_[A-Z_]+)\s", help_text, flags=re.MULTILINE))


def test_the_container_environment_is_the_clis(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    known = cli_environment_names() | {"AWS_REGION", "AWS_DEFAULT_REGION"}
    assert "CSV_TO_KAFKA_SOURCE" in known, "could not read the names from csv-to-kafka run --help"
    core = modules["core"]
    env_names = set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+=", core.text["main.tf"], re.MULTILINE))
    env_names |= {"CSV_TO_KAFKA_SASL_USERNAME", "CSV_TO_KAFKA_SASL_PASSWORD"}
    for stack in stacks.values():
        env_names |= set(re.findall(r"\b(CSV_TO_KAFKA_[A-Z_]+)\s+=", stack.text["main.tf"]))
    env_names -= {"CSV_TO_KAFKA_MANIFEST"}  # the Batch array entrypoint's, not the CLI's
    assert env_names <= known, f"not csv-to-kafka settings: {env_names - known}"
    environment = core.locals()["environment"]
    assert '"false"' in str(environment)
    assert "CSV_TO_KAFKA_CREATE_TABLE" in str(environment)
    assert "CSV_TO_KAFKA_SASL_PASSWORD" in str(core.locals()["secrets"])
    assert ":password::" in str(core.locals()["secrets"]), "only the secret's password key"


def test_no_secret_is_baked_into_the_stacks(stacks: dict[str, TerraformDir]) -> None:
    for name, stack in stacks.items():
        assert "sasl_password" not in stack.all_text.lower().replace(
            "csv_to_kafka_sasl_password", ""
        )
        assert not re.search(r"password\s*=", stack.all_text, re.IGNORECASE), name


# --- least privilege --------------------------------------------------------------------------


def statements(tf: TerraformDir, document: str) -> dict[str, dict[str, Any]]:
    """sid -> statement of an aws_iam_policy_document, dynamic statements included."""
    body = tf.typed("data")[f"aws_iam_policy_document.{document}"]
    out: dict[str, dict[str, Any]] = {}
    for statement in body.get("statement", []):
        out[unquote(statement.get("sid", '"(no sid)"'))] = statement
    for dynamic in body.get("dynamic", []):
        for content in dynamic['"statement"']["content"]:
            out[unquote(content["sid"])] = content
    return out


def actions(statement: dict[str, Any]) -> set[str]:
    return set(re.findall(r'"?([a-z0-9-]+:[A-Za-z*]+)"?', str(statement["actions"])))


def test_the_processor_policy_is_least_privilege(modules: dict[str, TerraformDir]) -> None:
    policy = statements(modules["core"], "processor")
    granted = {sid: actions(st) for sid, st in policy.items()}
    assert granted["ReadTheSourceObjects"] == {"s3:GetObject", "s3:GetObjectVersion"}
    assert "local.source_object_arns" in str(policy["ReadTheSourceObjects"]["resources"])
    assert granted["WriteAndReadThePlans"] == {"s3:GetObject", "s3:PutObject"}
    assert "local.plan_object_arns" in str(policy["WriteAndReadThePlans"]["resources"])
    assert granted["ReadAndWriteCheckpoints"] == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert "aws_dynamodb_table.this.arn" in str(policy["ReadAndWriteCheckpoints"]["resources"])
    assert granted["SendMetricsToTheJobNamespace"] == {"cloudwatch:PutMetricData"}
    assert "cloudwatch:namespace" in str(policy["SendMetricsToTheJobNamespace"]["condition"])
    assert granted["ConnectToTheCluster"] == {"kafka-cluster:Connect"}
    assert granted["WriteAndReadBackTheTopics"] == {
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:WriteData",
        "kafka-cluster:ReadData",
        "kafka-cluster:CreateTopic",  # only with kafka_create_topic (a conditional concat)
    }
    assert "var.kafka_create_topic" in str(policy["WriteAndReadBackTheTopics"]["actions"])
    assert granted["OwnTheJobsTransactionalIds"] == {
        "kafka-cluster:DescribeTransactionalId",
        "kafka-cluster:AlterTransactionalId",
    }
    assert granted["FindTheReaderGroupCoordinator"] == {"kafka-cluster:DescribeGroup"}
    # Listing only for prefix jobs, only under their prefixes (a dynamic statement).
    assert granted.pop("ListTheSourcePrefixes") == {"s3:ListBucket"}
    listing = modules["core"].all_text
    assert "for_each = length(var.s3_prefixes) == 0 ? [] : [var.s3_prefixes]" in listing
    assert '"s3:prefix"' in str(policy["ListTheSourcePrefixes"]["condition"])
    every = set().union(*granted.values())
    assert not any(a.endswith("*") and not a.startswith("kms:") for a in every), every
    assert not {"dynamodb:CreateTable", "dynamodb:DescribeTable", "s3:ListBucket"} & every


def test_msk_resource_arns_follow_the_processors_names(modules: dict[str, TerraformDir]) -> None:
    locals_ = modules["core"].locals()
    assert ":topic/" in str(locals_["topic_arns"])
    assert ":transactional-id/" in str(locals_["transactional_id_arns"])
    assert "csv-to-kafka-${id}" in str(locals_["transactional_id_arns"])
    # The names the processor uses, taken from its code: the resume scan's consumer group must
    # match the group ARN's pattern, and the transactional id the ARN built from the job id.
    from csv_to_kafka.config import Config, parse_source_uri
    from csv_to_kafka.sink import READER_GROUP_PREFIX

    assert str(locals_["reader_group_arn"]).strip('"').endswith(f"/{READER_GROUP_PREFIX}*")
    config = Config(
        source=parse_source_uri("s3://bucket/key.csv"),
        topic="topic",
        bootstrap_servers="broker:9098",
        job_id="JOB",
        checkpoint_table="table",
    )
    arn_name = config.transactional_id.replace("JOB", "${id}")
    assert f"/{arn_name}" in str(locals_["transactional_id_arns"])
    # and a planned part's (run --plan): the job id J.part-I
    from csv_to_kafka.plan import part_job_id

    part = dataclasses.replace(config, job_id=part_job_id("JOB", 7)).transactional_id
    assert f"/{part.replace('JOB', '${id}').replace('7', '*')}" in str(
        locals_["transactional_id_arns"]
    )


def test_the_launch_policy_pulls_logs_and_reads_the_secret_only(
    modules: dict[str, TerraformDir],
) -> None:
    policy = statements(modules["core"], "launch")
    granted = {sid: actions(st) for sid, st in policy.items()}
    assert granted["PullTheImage"] == {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
    }
    assert granted["WriteTheJobLogs"] == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert granted["ReadTheScramSecret"] == {"secretsmanager:GetSecretValue"}
    assert "var.sasl_secret_arn" in str(policy["ReadTheScramSecret"]["resources"])


def test_shared_resources_are_hardened(modules: dict[str, TerraformDir]) -> None:
    resources = modules["core"].typed("resource")
    table = resources["aws_dynamodb_table.this"]
    assert unquote(table["billing_mode"]) == "PAY_PER_REQUEST"
    assert unquote(table["hash_key"]) == "job_id"
    assert table["attribute"][0] == {"name": '"job_id"', "type": '"S"', "__is_block__": True}
    assert table["point_in_time_recovery"][0]["enabled"] is True
    assert table["server_side_encryption"][0]["enabled"] is True
    repo = resources["aws_ecr_repository.this"]
    assert unquote(repo["image_tag_mutability"]) == "IMMUTABLE"
    assert repo["image_scanning_configuration"][0]["scan_on_push"] is True
    assert "retention_in_days" in resources["aws_cloudwatch_log_group.this"]
    group = resources["aws_security_group.this"]
    assert "ingress" not in group
    assert len(group["egress"]) == 2
    assert resources["aws_kms_key.this"]["enable_key_rotation"] is True


def test_instances_require_imdsv2_and_need_no_ssh_key(stacks: dict[str, TerraformDir]) -> None:
    for name in ("option2-aws-batch", "option3-ec2-spot"):
        template = stacks[name].typed("resource")["aws_launch_template.this"]
        options = template["metadata_options"][0]
        assert unquote(options["http_tokens"]) == "required", name
        assert options["http_put_response_hop_limit"] == 1, name
        assert "key_name" not in template, name
    spot = stacks["option3-ec2-spot"].typed("resource")["aws_launch_template.this"]
    assert unquote(spot["instance_initiated_shutdown_behavior"]) == "terminate"
    assert unquote(spot["instance_market_options"][0]["market_type"]) == "spot"
    assert "iam_instance_profile" in spot


# --- AWS Batch: retries -----------------------------------------------------------------------


def _glob(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    if value is None:
        return False
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), value) is not None


def batch_decision(rules: list[dict[str, Any]], exit_code: int | None, reason: str) -> str:
    """AWS Batch's evaluateOnExit: the first rule whose every given pattern matches decides;
    with none matching, the attempt is retried."""
    for rule in rules:
        code_pattern = unquote(rule["on_exit_code"])
        reason_pattern = unquote(rule["on_status_reason"])
        exit_text = None if exit_code is None else str(exit_code)
        if _glob(code_pattern, exit_text) and _glob(reason_pattern, reason):
            return str(unquote(rule["action"]))
    return "RETRY"


@pytest.mark.parametrize(
    ("exit_code", "reason", "expected"),
    [
        (None, "Host EC2 (instance i-0123456789abcdef0) terminated.", "RETRY"),
        (143, "Essential container in task exited", "RETRY"),
        (4, "Essential container in task exited", "RETRY"),
        (3, "Essential container in task exited", "EXIT"),
        (2, "Essential container in task exited", "EXIT"),
        (1, "Essential container in task exited", "EXIT"),
        (0, "Essential container in task exited", "EXIT"),
    ],
)
def test_batch_retries_interruptions_and_infrastructure_but_not_bad_input(
    stacks: dict[str, TerraformDir], exit_code: int | None, reason: str, expected: str
) -> None:
    batch = stacks["option2-aws-batch"]
    rules = batch.locals()["evaluate_on_exit"]
    assert len(rules) <= 5, "Batch takes at most 5 evaluateOnExit rules"
    assert batch_decision(rules, exit_code, reason) == expected


def test_batch_job_definitions_retry_and_time_out(stacks: dict[str, TerraformDir]) -> None:
    batch = stacks["option2-aws-batch"]
    resources = batch.typed("resource")
    for name in ("aws_batch_job_definition.this", "aws_batch_job_definition.array"):
        definition = resources[name]
        strategy = definition["retry_strategy"][0]
        assert strategy["attempts"] == "${var.retry_attempts}"
        assert "local.evaluate_on_exit" in str(strategy["dynamic"])
        assert definition["timeout"][0]["attempt_duration_seconds"] == "${var.timeout_seconds}"
    assert batch.named("variable")["retry_attempts"]["default"] >= 2
    compute = resources["aws_batch_compute_environment.this"]["compute_resources"][0]
    assert "SPOT_CAPACITY_OPTIMIZED" in str(compute["allocation_strategy"])
    assert set(
        batch.named("variable")["compute_type"]["validation"][0]["condition"].split('"')
    ) >= {
        "FARGATE_SPOT",
        "SPOT",
    }


# --- dashboard and alarms ---------------------------------------------------------------------


def documented_metrics() -> set[str]:
    text = (ROOT / "docs" / "metrics.md").read_text()
    return set(re.findall(r"^\| `([A-Za-z]+)` \| `", text, flags=re.MULTILINE))


def test_the_dashboard_has_the_widgets_of_docs_metrics(modules: dict[str, TerraformDir]) -> None:
    widgets = modules["monitoring"].locals()["widgets"]
    graphs = [w for w in widgets if unquote(w["type"]) in {"metric", "log", "alarm"}]
    assert len(graphs) >= 7, f"{len(graphs)} widgets"
    titles = " | ".join(unquote(w["properties"].get("title", "")) for w in graphs).lower()
    for topic in (
        "throughput",
        "progress",
        "rows sent",
        "eta",
        "retries and errors",
        "commit",
        "estimated cost so far",
        "objects done",
    ):
        assert topic in titles, f"no widget for {topic}: {titles}"
    text = str(widgets)
    metrics = documented_metrics()
    assert len(metrics) == 12, metrics
    main = modules["monitoring"].text["main.tf"]
    for metric in metrics:
        assert f'"{metric}"' in main, f"{metric} (docs/metrics.md) is not on the dashboard"
    # The cost widget is docs/metrics.md's recipe: running seconds from ProgressPercent samples.
    assert "IF(m1 > 0, PERIOD(m1), 0)" in text
    assert "RUNNING_SUM(e1) / 3600" in text
    assert 'stat = "SampleCount"' in main


def test_alarms_watch_errors_and_progress(modules: dict[str, TerraformDir]) -> None:
    resources = modules["monitoring"].typed("resource")
    errors = resources["aws_cloudwatch_metric_alarm.errors"]
    assert unquote(errors["metric_name"]) == "Errors"
    assert unquote(errors["comparison_operator"]) == "GreaterThanThreshold"
    assert errors["threshold"] == 0
    stalled = resources["aws_cloudwatch_metric_alarm.no_progress"]
    queried = str(stalled["metric_query"])
    assert "RecordsSent" in queried
    assert "ProgressPercent" in queried
    assert "var.no_progress_minutes" in str(stalled["datapoints_to_alarm"])
    for alarm in (errors, stalled):
        assert "JobId" in str(alarm), "every metric has the JobId dimension"


def test_a_job_in_parts_has_a_no_progress_alarm_per_part(
    modules: dict[str, TerraformDir], stacks: dict[str, TerraformDir]
) -> None:
    """With parts = N, one alarm per part: the job's no-progress test (the same resource, over
    local.progress_watches) over the part's own job id (J.part-I, where a part sends RecordsSent
    and ProgressPercent; docs/metrics.md). The watches themselves: test_tofu_eval.py."""
    monitoring = modules["monitoring"]
    stalled = monitoring.typed("resource")["aws_cloudwatch_metric_alarm.no_progress"]
    assert str(stalled["for_each"]) == "${local.progress_watches}"
    assert monitoring.named("variable")["parts"]["default"] == 0
    queries = {unquote(q["id"]): q for q in stalled["metric_query"]}
    assert queries.keys() == {"progressing", "rows", "progress"}
    for name, metric, stat in (
        ("rows", "RecordsSent", "Sum"),
        ("progress", "ProgressPercent", "Maximum"),
    ):
        inner = queries[name]["metric"][0]
        assert unquote(inner["metric_name"]) == metric
        assert unquote(inner["stat"]) == stat
        assert "${each.value.job_id}" in str(inner["dimensions"])
    main = monitoring.text["main.tf"]
    assert 'aws_cloudwatch_metric_alarm.no_progress["part-${part}"].arn' in main
    for name in ("option1-ecs-fargate", "option2-aws-batch"):
        assert "parts               = var.parts" in stacks[name].text["cloudwatch_dashboard.tf"]


# --- image ----------------------------------------------------------------------------------


def dockerfile() -> str:
    return (ROOT / "app" / "Dockerfile").read_text()


def test_the_dockerfile_is_multi_stage_slim_non_root_exec_form() -> None:
    text = dockerfile()
    # The bases are build arguments (local/engine passes Debian bases made with debootstrap);
    # their defaults are what a user gets.
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))
    froms = [
        (re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], image), stage)
        for image, stage in re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, flags=re.MULTILINE)
    ]
    assert len(froms) >= 2
    # What runs is slim; only the build stage (discarded but for its venv) has a compiler.
    bases = {stage: image for image, stage in froms}
    assert "slim" in bases["runtime-base"]
    assert bases["build"].startswith("python:3.11-")
    assert all(image.startswith(("python:3.11-", "runtime")) for image, _ in froms)
    assert froms[-1][1] == "runtime", "the default target is the job's image"
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users
    assert all(not u.startswith(("0", "root")) for u in users)
    runtime = text.split("AS runtime\n", 1)[1]
    assert re.search(r'^ENTRYPOINT \["csv-to-kafka"\]$', runtime, re.MULTILINE)
    assert re.search(r'^CMD \["run"\]$', runtime, re.MULTILINE)
    assert not re.search(r"^(ENV|ARG)\b.*(PASSWORD|SECRET|TOKEN|AWS_ACCESS_KEY)", text, re.M)
    assert "--requirement app/requirements.lock" in text
    assert "--only-binary=:all:" in text
    assert "--no-deps" in text


def test_the_dockerignore_sends_only_what_the_image_needs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    copied = set(re.findall(r"^COPY (?!--from)(\S+(?: \S+)*) \S+$", dockerfile(), re.MULTILINE))
    sources = {part.rstrip("/") for entry in copied for part in entry.split()}
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert sources <= allowed, f"COPY of files the context excludes: {sources - allowed}"


def test_each_module_readme_lists_its_inputs_and_outputs_and_a_usage_that_fits(
    modules: dict[str, TerraformDir],
) -> None:
    """modules/*/README.md: a row per variable and output, and an example call that sets every
    required variable and nothing the module does not declare."""
    for tf in modules.values():
        readme = (tf.path / "README.md").read_text()
        rows = set(re.findall(r"^\| `([a-z0-9_]+)` \|", readme, re.MULTILINE))
        variables, outputs = tf.named("variable"), tf.named("output")
        assert rows == set(variables) | set(outputs), f"{tf.path}/README.md tables drift"
        usage = re.search(r"```hcl\n(.*?)```", readme, re.DOTALL)
        assert usage, f"{tf.path}/README.md has no usage example"
        given = set(re.findall(r"^  ([a-z0-9_]+)\s*=", usage.group(1), re.MULTILINE)) - {"source"}
        required = {name for name, body in variables.items() if "default" not in body}
        assert required <= given, f"{tf.path}: the example lacks {required - given}"
        assert given <= set(variables), f"{tf.path}: the example sets {given - set(variables)}"


@pytest.mark.parametrize(
    "stack_name", ["option1-ecs-fargate", "option2-aws-batch", "option3-ec2-spot"]
)
def test_every_stack_takes_a_prefix_and_several_sources(
    stacks: dict[str, TerraformDir], stack_name: str
) -> None:
    """s3_key may be a prefix and s3_prefixes adds sources: modules/core gets the prefixes
    (s3:ListBucket under them) and their objects (s3:GetObject on PREFIX*); the container gets
    them one per line in CSV_TO_KAFKA_SOURCE, which extra_environment may still override.
    (tests/deployment/test_tofu_eval.py evaluates the same expressions.)"""
    stack = stacks[stack_name]
    core = stack.named("module")["core"]
    assert "local.source_prefixes" in str(core["s3_prefixes"])
    assert "local.source_object_keys" in str(core["s3_keys"])
    variables = stack.named("variable")
    assert variables["s3_prefixes"]["default"] == []
    text = code(stack.all_text)
    assert "source_keys = concat([var.s3_key], var.s3_prefixes)" in text
    assert "}, var.extra_environment)" in text
