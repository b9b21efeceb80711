"""Every shell command of docs/operations.md and docs/quick-reference.md is run or checked.

Local blocks run for real, in page order, against the local stack (the copy, status, check,
verify, the Kafka tools, the DynamoDB calls against moto); AWS-only commands are checked against
the AWS CLI's help; the deployment scripts' flags against their --help. See conftest.py.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import pytest

from .conftest import ROOT, VENV_BIN, Block, DocEnv, parse

pytestmark = pytest.mark.docs

PAGES = ["operations.md", "quick-reference.md"]
SETUP_VARIABLES = {"JOB_ID", "SOURCE", "PREFIX", "TOPIC", "BOOTSTRAP", "TABLE", "LOGS"}
# Options of the aws command itself, valid after any operation.
AWS_GLOBAL = {
    "--query",
    "--output",
    "--region",
    "--profile",
    "--endpoint-url",
    "--no-cli-pager",
    "--debug",
    "--no-paginate",
    "--color",
}
# `aws logs tail` exists only in AWS CLI v2 (the .venv has v1, from awscli on PyPI): its flags,
# from the v2 reference, https://awscli.amazonaws.com/v2/documentation/api/latest/reference/logs/tail.html
AWS_V2_ONLY = {
    ("logs", "tail"): {
        "--follow",
        "--since",
        "--filter-pattern",
        "--log-stream-name-prefix",
        "--log-stream-names",
        "--format",
        "--mode",
    },
}


def flags(command: str) -> list[str]:
    return [w.split("=", 1)[0] for w in shlex.split(command) if w.startswith("--")]


@pytest.mark.parametrize("page", PAGES)
def test_every_bash_block_says_how_it_is_tested(page: str) -> None:
    parsed = parse(page)
    assert parsed.unmarked == [], (
        f"docs/{page}: bash blocks without a doc-test marker at lines {parsed.unmarked}"
    )
    kinds = {b.kind for b in parsed.blocks}
    assert kinds <= {"local", "aws", "script", "setup", "skip"}, kinds
    assert "local" in kinds


def test_the_setup_block_names_the_variables_the_test_sets() -> None:
    setup = [b for b in parse("operations.md").blocks if b.kind == "setup"]
    assert len(setup) == 1
    exported = set(re.findall(r"^export (\w+)=", setup[0].text, re.MULTILINE))
    assert exported == SETUP_VARIABLES
    used = set()
    for page in PAGES:
        for block in parse(page).blocks:
            if block.kind == "local":
                used |= set(re.findall(r"\$\{?([A-Z_]+)", block.text))
    assert used <= SETUP_VARIABLES, (
        f"local blocks use variables the setup does not set: {used - SETUP_VARIABLES}"
    )


@pytest.mark.parametrize("page", PAGES)
def test_the_local_commands_run_against_the_local_stack(page: str, docenv: DocEnv) -> None:
    blocks = [b for b in parse(page).blocks if b.kind == "local"]
    for block in blocks:
        extra = {"SOURCE": docenv.bad_source} if block.options.get("source") == "bad" else {}
        result = docenv.run(block.text, extra=extra)
        expected = int(block.options.get("exit", "0"))
        assert result.returncode == expected, (
            f"{block.where}: exit {result.returncode}, expected {expected}\n{block.text}\n"
            f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
        )
        if block.options.get("stdout") == "rows":
            assert result.stdout.strip() == str(docenv.rows), (block.where, result.stdout)


@cache
def aws_help(service: str, operation: str) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "aws"), service, operation, "help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "PAGER": "cat",
            "MANPAGER": "cat",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )
    assert result.returncode == 0, f"aws {service} {operation}: {result.stderr[-500:]}"
    return result.stdout


def aws_commands() -> list[tuple[Block, str]]:
    out = []
    for page in PAGES:
        for block in parse(page).blocks:
            if block.kind in {"aws", "local"}:
                out += [(block, c) for c in block.commands() if c.startswith("aws ")]
    return out


@pytest.mark.parametrize(
    ("block", "command"),
    aws_commands(),
    ids=lambda x: x.where if isinstance(x, Block) else x.split(" --")[0],
)
def test_the_aws_commands_exist_with_their_flags(block: Block, command: str) -> None:
    words = shlex.split(command)
    service, operation = words[1], words[2]
    used = set(flags(command)) - AWS_GLOBAL
    if (service, operation) in AWS_V2_ONLY:
        unknown = used - AWS_V2_ONLY[service, operation]
    else:
        text = aws_help(service, operation)
        unknown = {f for f in used if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text)}
    assert not unknown, f"{block.where}: aws {service} {operation} has no {sorted(unknown)}"


def script_commands() -> list[tuple[Block, str]]:
    return [
        (b, c)
        for page in PAGES
        for b in parse(page).blocks
        if b.kind == "script"
        for c in b.commands()
    ]


@pytest.mark.parametrize(
    ("block", "command"),
    script_commands(),
    ids=lambda x: x.where if isinstance(x, Block) else x.split(" ")[0],
)
def test_the_deployment_scripts_have_the_flags_the_docs_use(block: Block, command: str) -> None:
    script = Path(ROOT, shlex.split(command)[0])
    assert script.is_file(), f"{block.where}: no {script}"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    unknown = [f for f in flags(command) if f not in result.stdout]
    assert not unknown, f"{block.where}: {script.name} --help has no {unknown}"


def test_the_quick_reference_lists_every_variable_metric_and_exit_code() -> None:
    from csv_to_kafka.config import ENV
    from csv_to_kafka.errors import EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_INFRASTRUCTURE, EXIT_SIGTERM
    from csv_to_kafka.metrics import METRICS

    text = (ROOT / "docs" / "quick-reference.md").read_text()
    missing = [v for v in ENV.values() if f"`{v}`" not in text]
    missing += [s.name for s in METRICS if f"| `{s.name}` |" not in text]
    missing += [
        str(c)
        for c in (EXIT_CONFIG, EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, EXIT_SIGTERM)
        if not re.search(rf"^\| {c}\b", text, re.MULTILINE)
    ]
    assert not missing, f"docs/quick-reference.md does not list {missing}"
