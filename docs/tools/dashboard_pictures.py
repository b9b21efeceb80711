"""Draw the CloudWatch dashboard's widgets from a real local run: ``make dashboard-pictures``.

1. The widgets: ``modules/monitoring/main.tf``'s ``locals`` blocks, evaluated by the real OpenTofu
   binary (``tofu console``, no provider needed), so the pictures follow the Terraform: a metric
   renamed on one side and not the other draws an empty graph, and this script fails.
2. The run: ``csv-to-kafka run`` copies a generated CSV through the local stack (Kafka + moto)
   and sends its metrics every second to moto's CloudWatch; when the job is about a third done,
   the broker is paused (SIGSTOP) for ``--pause`` seconds, then resumed (SIGCONT).
3. The data: every metric of every widget is read back with ``GetMetricData`` (moto answers
   ``MetricStat`` queries; it returns no data for metric math), and the widgets' expressions
   (``m1 / PERIOD(m1)``, ``RUNNING_SUM``, ``IF``, ``SEARCH``) are evaluated here, on those series.
4. The pictures: one PNG per metric widget, with matplotlib, plus ``alarms.png``: the no-progress
   alarm's expression and the errors alarm's metric over the same run.
5. A job in parts: after that run, the same object is planned in 2 parts (``csv-to-kafka plan``)
   and both parts run side by side under the same job id (``run --plan --part I``); the
   "Progress per part (%)" widget (a ``SEARCH`` over ``{JobId, Part}``) is drawn from that run,
   one line per part.

The run sends every second, not every minute: one second of the pictures stands for one period
of the real dashboard. ``PERIOD(m)`` is that second.

Needs the local stack's environment (``eval "$(local/stack env)"``). Exits non-zero if a widget's
metric has no data at all, so that a renamed metric fails the build rather than the guide.
"""

# S603: the commands are ours (tofu, local/stack, csv-to-kafka). PLR0917: a script's helpers.
# ruff: noqa: S603, PLR0917

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3

from csv_to_kafka.metrics import BAD_ROWS, ERRORS, METRICS, OBJECTS_DONE, RETRIES

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "modules" / "monitoring"
STACK = ROOT / "local" / "stack"
SENT = {spec.name for spec in METRICS}  # the product's own list (csv_to_kafka.metrics)
# Sent only when something happens: a healthy one-object run has no data point for them
# (ObjectsDone: a job over many objects only).
ONLY_ON_EVENTS = {RETRIES, ERRORS, BAD_ROWS, OBJECTS_DONE}
# A SEARCH over the parts of a job in parts: the "Progress per part (%)" widget.
PART_SEARCH = re.compile(
    r"SEARCH\('\{\w+,JobId,Part\} MetricName=\"(?P<name>\w+)\" JobId=\"[^\"]+\"', "
    r"'(?P<stat>\w+)', \d+\)"
)
HOURLY_COST = 0.0987  # option 1, Fargate 2 vCPU / 4 GB (docs/deployment.md)
TF_PERIOD = 60  # the module's smallest period; the run's 1 s stands for it


# --- 1. the widgets, from the Terraform ---------------------------------------------------------


def _locals_blocks(text: str) -> str:
    blocks = []
    for match in re.finditer(r"^locals \{\n", text, flags=re.MULTILINE):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        blocks.append(text[match.start() : i])
    return "\n\n".join(blocks)


def dashboard_widgets(tofu: str, namespace: str, job_id: str) -> list[dict[str, Any]]:
    """The dashboard body's widgets, as ``modules/monitoring`` builds them."""
    text = _locals_blocks((MONITORING / "main.tf").read_text())
    text = text.replace("aws_cloudwatch_metric_alarm.errors.arn", '"errors"')
    text = text.replace('aws_cloudwatch_metric_alarm.no_progress["job"].arn', '"no-progress"')
    text = text.replace("aws_cloudwatch_metric_alarm.bad_rows[*].arn", '["bad-rows"]')
    parts_arns = 'aws_cloudwatch_metric_alarm.no_progress["part-${part}"].arn'
    text = text.replace(f"[for part in range(var.parts) : {parts_arns}]", "[]")
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "variables.tf").write_text((MONITORING / "variables.tf").read_text())
        Path(scratch, "locals.tf").write_text(text)
        variables = {
            "name": f"csv-to-kafka-{job_id}",
            "aws_region": "us-east-1",
            "job_id": job_id,
            "metrics_namespace": namespace,
            "metrics_interval_seconds": str(TF_PERIOD),
            "hourly_cost_usd": str(HOURLY_COST),
            "log_group_name": "/csv-to-kafka/csv-to-kafka",
        }
        result = subprocess.run(
            [tofu, "console", "-no-color", *(f"-var={k}={v}" for k, v in variables.items())],
            input="jsonencode(local.widgets)\n",
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"},
            check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"tofu console failed:\n{result.stderr}")
    widgets: list[dict[str, Any]] = json.loads(json.loads(result.stdout.strip()))
    return widgets


def alarm_expression() -> str:
    """The no-progress alarm's expression, as modules/monitoring/main.tf writes it."""
    text = (MONITORING / "main.tf").read_text()
    match = re.search(r'id\s*=\s*"progressing".*?expression\s*=\s*"([^"]+)"', text, re.DOTALL)
    if match is None:
        raise SystemExit("modules/monitoring/main.tf: no 'progressing' metric_query expression")
    return match.group(1)


# --- 2. the run ---------------------------------------------------------------------------------


def make_csv(rows: int) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "customer", "email", "amount", "note"])
    for i in range(1, rows + 1):
        writer.writerow(
            [
                i,
                f"customer {i % 997}",
                f"user{i}@example.com",
                f"{(i * 37) % 10000 / 100:.2f}",
                f"order {i}, paid",
            ]
        )
    return out.getvalue().encode()


def _stack(*args: str) -> str:
    result = subprocess.run(
        [str(STACK), *args], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"local/stack {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def run_job(
    *,
    rows: int,
    pause: float,
    pause_at: float,
    namespace: str,
    job_id: str,
    work: Path,
    transaction_timeout_ms: int,
) -> dict[str, Any]:
    """Copy ``rows`` rows with a broker pause at ``pause_at`` of the bytes; the run's timeline."""
    bucket = f"docs-dashboard-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="orders.csv", Body=make_csv(rows))
    log = work / "run.log"
    table = "csv-to-kafka-docs-dashboard"
    args = [
        sys.executable, "-m", "csv_to_kafka.cli", "run",
        "--source", f"s3://{bucket}/orders.csv",
        "--topic", f"docs-dashboard-{job_id}",
        "--bootstrap-servers", os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        "--job-id", job_id,
        "--checkpoint-table", table,
        "--checkpoint-every", "200",  # many small transactions: a run long enough to watch
        "--metrics-namespace", namespace,
        "--metrics-interval", "1",
        "--progress", "json",
        # The commit waits at most transaction.timeout.ms (60 s by default): shorter here, so
        # that the pause outlasts it and the job's own retry loop shows, as a longer outage would.
        "-X", f"transaction.timeout.ms={transaction_timeout_ms}",
    ]  # fmt: skip
    timeline: dict[str, Any] = {
        "rows": rows,
        "pause_seconds": pause,
        "transaction_timeout_ms": transaction_timeout_ms,
    }
    with log.open("w") as out:
        started = time.time()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        timeline["start"] = started
        broker = int(_stack("kafka-pid").strip())
        paused = False
        try:
            while proc.poll() is None:
                if not paused and _percent(table, job_id) >= pause_at * 100:
                    os.kill(broker, signal.SIGSTOP)
                    paused = True
                    timeline["pause_start"] = time.time()
                    time.sleep(pause)
                    os.kill(broker, signal.SIGCONT)
                    timeline["pause_end"] = time.time()
                time.sleep(0.1)
        finally:
            if paused and "pause_end" not in timeline:
                os.kill(broker, signal.SIGCONT)
            if proc.poll() is None:
                proc.kill()
        timeline["end"] = time.time()
        timeline["exit_code"] = proc.wait()
    if timeline["exit_code"] != 0:
        raise SystemExit(f"the run failed ({timeline['exit_code']}):\n{log.read_text()[-3000:]}")
    if "pause_start" not in timeline:
        raise SystemExit(f"the run ended before {pause_at:.0%}: use more --rows")
    return timeline


def run_parts(*, rows: int, parts: int, namespace: str, job_id: str, work: Path) -> dict[str, Any]:
    """Plan ``rows`` rows in ``parts`` parts and run them side by side as job ``job_id``."""
    bucket = f"docs-dashboard-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="orders.csv", Body=make_csv(rows))
    source = f"s3://{bucket}/orders.csv"
    cli = [sys.executable, "-m", "csv_to_kafka.cli"]
    plan = f"{source}.plan.json"
    planned = subprocess.run(
        [*cli, "plan", "--source", source, "--parts", str(parts), "--output", plan],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if planned.returncode != 0:
        raise SystemExit(f"plan failed ({planned.returncode}):\n{planned.stderr[-3000:]}")
    args = [
        *cli, "run",
        "--plan", plan,
        "--topic", f"docs-dashboard-parts-{job_id}",
        "--bootstrap-servers", os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        "--job-id", job_id,
        "--checkpoint-table", "csv-to-kafka-docs-dashboard",
        "--checkpoint-every", "200",
        "--metrics-namespace", namespace,
        "--metrics-interval", "1",
        "--progress", "none",
    ]  # fmt: skip
    timeline: dict[str, Any] = {"rows": rows, "parts": parts, "start": time.time()}
    logs = [work / f"part-{i}.log" for i in range(parts)]
    procs = []
    for i, log in enumerate(logs):
        with log.open("w") as out:
            procs.append(subprocess.Popen([*args, "--part", str(i)], stdout=out, stderr=out))
    codes = [proc.wait(timeout=600) for proc in procs]
    timeline["end"] = time.time()
    timeline["exit_codes"] = codes
    if any(codes):
        raise SystemExit(
            f"a part failed ({codes}):\n" + "\n".join(log.read_text()[-2000:] for log in logs)
        )
    return timeline


def _percent(table: str, job_id: str) -> float:
    """The job's checkpoint: bytes committed, in percent (0 before the first commit)."""
    try:
        item = (
            boto3.client("dynamodb")
            .get_item(TableName=table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
            .get("Item")
        )
    except boto3.client("dynamodb").exceptions.ResourceNotFoundException:
        return 0.0
    if not item or not float(item["total_bytes"]["N"]):
        return 0.0
    return 100 * float(item["byte_offset"]["N"]) / float(item["total_bytes"]["N"])


# --- 3. the data --------------------------------------------------------------------------------


class Series:
    """Values per second of the run (NaN where CloudWatch has no data point)."""

    def __init__(self, values: list[float]) -> None:
        self.values = values

    def _map(self, other: Any, fn: Callable[[float, float], float]) -> Series:
        rhs = other.values if isinstance(other, Series) else [other] * len(self.values)
        return Series([fn(a, b) for a, b in zip(self.values, rhs, strict=True)])

    def __truediv__(self, other: Any) -> Series:
        return self._map(other, lambda a, b: a / b if b else math.nan)

    def __mul__(self, other: Any) -> Series:
        return self._map(other, lambda a, b: a * b)

    def __gt__(self, other: Any) -> Series:
        return self._map(other, lambda a, b: math.nan if math.isnan(a) else float(a > b))

    def __lt__(self, other: Any) -> Series:
        return self._map(other, lambda a, b: math.nan if math.isnan(a) else float(a < b))


def _running_sum(s: Series) -> Series:
    total, out = 0.0, []
    for v in s.values:
        total += 0.0 if math.isnan(v) else v
        out.append(total)
    return Series(out)


def _fill(s: Series, how: Any) -> Series:
    out, last = [], math.nan
    for v in s.values:
        if not math.isnan(v):
            last = v
            out.append(v)
        else:
            out.append(last if how == "REPEAT" else float(how))
    return Series(out)


def _if(cond: Series, a: Any, b: Any) -> Series:
    n = len(cond.values)
    av = a.values if isinstance(a, Series) else [a] * n
    bv = b.values if isinstance(b, Series) else [b] * n
    return Series([x if c == 1.0 else y for c, x, y in zip(cond.values, av, bv, strict=True)])


def evaluate(expression: str, ids: dict[str, Series], search: Callable[[str], Series]) -> Series:
    """CloudWatch metric math, the subset the dashboard and the alarm use."""
    period = 1.0  # the run's interval: its stand-in for the dashboard's period
    python = re.sub(
        r"SEARCH\('(.*?)',\s*'Sum',\s*\d+\)", lambda m: f"_search({m.group(1)!r})", expression
    )
    python = re.sub(r"PERIOD\(\w+\)", "_period", python)
    python = python.replace("REPEAT", "'REPEAT'")
    python = (
        re.sub(rf"/\s*{TF_PERIOD}\b(?!\d)", "/ _period", python) if "_search" in python else python
    )
    names: dict[str, Any] = {
        **ids,
        "_period": period,
        "RUNNING_SUM": _running_sum,
        "FILL": _fill,
        "IF": _if,
        "_search": search,
    }
    result: Series = eval(python, {"__builtins__": {}}, names)  # noqa: S307 (our own Terraform's text)
    return result


def fetch(
    cw: Any,
    namespace: str,
    job_id: str,
    name: str,
    stat: str,
    start: float,
    seconds: int,
    *,
    part: str | None = None,
) -> Series:
    """One metric of the job (of one of its parts: ``{JobId, Part}``), per second of the run,
    with GetMetricData."""
    dimensions = [{"Name": "JobId", "Value": job_id}]
    if part is not None:
        dimensions.append({"Name": "Part", "Value": part})
    result = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": dimensions,
                    },
                    "Period": 1,
                    "Stat": stat,
                },
            }
        ],
        StartTime=dt.datetime.fromtimestamp(start - 2, dt.UTC),
        EndTime=dt.datetime.fromtimestamp(start + seconds + 2, dt.UTC),
    )["MetricDataResults"][0]
    values = [math.nan] * seconds
    for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
        i = int(stamp.timestamp() - int(start))
        if 0 <= i < seconds:
            values[i] = value if math.isnan(values[i]) else _combine(stat, values[i], value)
    return Series(values)


def _combine(stat: str, a: float, b: float) -> float:
    return {"Sum": a + b, "Maximum": max(a, b), "Minimum": min(a, b), "SampleCount": a + b}.get(
        stat, (a + b) / 2
    )


def widget_series(
    widget: dict[str, Any], cw: Any, namespace: str, job_id: str, start: float, seconds: int
) -> list[tuple[str, Series, bool, str]]:
    """(label, series, on the right axis, id) of each visible line of a metric widget."""
    props = widget["properties"]
    ids: dict[str, Series] = {}
    lines: list[tuple[str, Series, bool, str]] = []

    def search(query: str) -> Series:
        match = re.search(r'MetricName="(\w+)"', query)
        assert match is not None, query
        jobs = [
            d["Value"]
            for m in cw.list_metrics(Namespace=namespace, MetricName=match.group(1))["Metrics"]
            for d in m["Dimensions"]
            if d["Name"] == "JobId"
        ]
        total = Series([math.nan] * seconds)
        # One line per job on the real dashboard; here the dashboard's job only (the parted
        # run's parts are jobs J.part-I of their own).
        if job_id in jobs:
            total = fetch(cw, namespace, job_id, match.group(1), "Sum", start, seconds)
        return total

    for i, row in enumerate(props["metrics"]):
        options = row[-1] if isinstance(row[-1], dict) else {}
        metric_id = options.get("id", f"_{i}")
        per_part = PART_SEARCH.fullmatch(options.get("expression", ""))
        if per_part is not None:  # one line per part, as the SEARCH draws them
            name, stat = per_part.group("name"), per_part.group("stat")
            parts = sorted(
                {
                    d["Value"]
                    for m in cw.list_metrics(
                        Namespace=namespace,
                        MetricName=name,
                        Dimensions=[{"Name": "JobId", "Value": job_id}, {"Name": "Part"}],
                    )["Metrics"]
                    for d in m["Dimensions"]
                    if d["Name"] == "Part"
                },
                key=int,
            )
            for part in parts:
                series = fetch(cw, namespace, job_id, name, stat, start, seconds, part=part)
                lines.append((f"part {part}", series, False, f"{metric_id}-{part}"))
            continue
        if "expression" in options:
            series = evaluate(options["expression"], ids, search)
            label = options.get("label") or "rows/s"
        else:
            _, name, _, _ = row[:4]
            stat = options.get("stat", props.get("stat", "Average"))
            series = fetch(cw, namespace, job_id, name, stat, start, seconds)
            label = options.get("label", f"{name} {stat}")
        ids[metric_id] = series
        if options.get("visible", True):
            lines.append((label, series, options.get("yAxis") == "right", metric_id))
    return lines


# --- 4. the pictures ----------------------------------------------------------------------------


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _widget_metrics(widget: dict[str, Any]) -> tuple[set[str], bool]:
    """The metric names a widget draws, and whether it draws a job's parts."""
    rows = widget["properties"]["metrics"]
    searches = [
        PART_SEARCH.fullmatch(row[-1].get("expression", ""))
        for row in rows
        if isinstance(row[-1], dict)
    ]
    names = {row[1] for row in rows if isinstance(row[0], str)}
    names |= {match.group("name") for match in searches if match is not None}
    return names, any(searches)


def draw(
    widgets: Sequence[dict[str, Any]],
    cw: Any,
    namespace: str,
    job_id: str,
    timeline: dict[str, Any],
    out: Path,
    parts_timeline: dict[str, Any],
) -> dict[str, Any]:
    import matplotlib  # noqa: PLC0415 (a docs-only dependency)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    start = timeline["start"]
    seconds = int(timeline["end"] - start) + 3
    pause = (timeline["pause_start"] - start, timeline["pause_end"] - start)
    summary: dict[str, Any] = {"timeline": timeline, "parts": parts_timeline, "widgets": {}}
    out.mkdir(parents=True, exist_ok=True)
    empty = []
    for widget in widgets:
        if widget["type"] != "metric":
            continue
        title = widget["properties"]["title"]
        names, in_parts = _widget_metrics(widget)
        # A widget over the parts is drawn from the run in parts, on its own clock.
        w_start = parts_timeline["start"] if in_parts else start
        w_seconds = int(parts_timeline["end"] - w_start) + 3 if in_parts else seconds
        x = list(range(w_seconds))
        lines = widget_series(widget, cw, namespace, job_id, w_start, w_seconds)
        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
        right = ax.twinx() if any(r for _, _, r, _ in lines) else None
        for label, series, on_right, _ in lines:
            axis = right if on_right and right is not None else ax
            # Markers: a lone data point (one retry) has no line to draw.
            axis.plot(
                x,
                series.values,
                "o-",
                markersize=2 if sum(not math.isnan(v) for v in series.values) > 3 else 5,
                label=label,
                color=None if not on_right else "tab:orange",
            )
        if not in_parts:
            ax.axvspan(
                *pause,
                color="tab:red",
                alpha=0.12,
                label=f"broker paused {timeline['pause_seconds']:.0f} s",
            )
        ax.set_title(
            title
            + (
                "  (latest value, as the single-value widget shows it)"
                if widget["properties"].get("view") == "singleValue"
                else ""
            ),
            fontsize=10,
        )
        ax.set_xlabel(
            (
                f"seconds since the {parts_timeline['parts']} parts started, side by side "
                "(1 s here = one 60 s period)"
                if in_parts
                else "seconds since the job started (1 s here = one 60 s period in production)"
            ),
            fontsize=8,
        )
        handles, labels = ax.get_legend_handles_labels()
        if right is not None:
            h2, l2 = right.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.legend(handles, labels, fontsize=7, loc="best")
        ax.grid(alpha=0.3)
        ax.set_xlim(0, w_seconds)
        if names <= ONLY_ON_EVENTS:
            ax.set_ylim(bottom=0)
        fig.tight_layout()
        name = slug(title) + ".png"
        points = {label: sum(not math.isnan(v) for v in s.values) for label, s, _, _ in lines}
        summary["widgets"][title] = {"file": name, "data_points": points}
        unknown = names - SENT
        if unknown:
            raise SystemExit(f"{title}: {sorted(unknown)} are not metrics csv-to-kafka sends")
        if not any(points.values()) and not names <= ONLY_ON_EVENTS:
            empty.append(title)
        if not any(points.values()):
            ax.text(
                0.5,
                0.5,
                "no data point: nothing happened",
                transform=ax.transAxes,
                ha="center",
                fontsize=9,
                color="grey",
            )
        fig.savefig(out / name)
        plt.close(fig)
    summary["alarms"] = _draw_alarms(plt, cw, namespace, job_id, start, seconds, pause, out)
    if empty:
        raise SystemExit(f"no data at all for the widgets {empty}: a metric renamed?")
    return summary


def _draw_alarms(
    plt: Any,
    cw: Any,
    namespace: str,
    job_id: str,
    start: float,
    seconds: int,
    pause: tuple[float, float],
    out: Path,
) -> dict[str, Any]:
    rows = fetch(cw, namespace, job_id, "RecordsSent", "Sum", start, seconds)
    progress = fetch(cw, namespace, job_id, "ProgressPercent", "Maximum", start, seconds)
    errors = fetch(cw, namespace, job_id, "Errors", "Sum", start, seconds)
    expression = alarm_expression()
    progressing = evaluate(expression, {"rows": rows, "progress": progress}, lambda q: rows)
    stalled = [1.0 if v < 1 else 0.0 for v in progressing.values]
    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=100)
    x = list(range(seconds))
    shown = [min(v, 1.0) for v in progressing.values]  # rows committed in the period, capped at 1
    ax.step(x, shown, where="post", label=f"no progress: {expression}, capped at 1 (< 1 breaches)")
    for i, v in enumerate(stalled):
        if v:
            ax.axvspan(i, i + 1, color="tab:blue", alpha=0.15, lw=0)
    ax.step(
        x,
        [0 if math.isnan(v) else v for v in errors.values],
        where="post",
        color="tab:red",
        label="errors: Errors Sum (> 0 breaches)",
    )
    ax.axvspan(*pause, color="tab:red", alpha=0.12, label="broker paused")
    ax.set_title("Alarms' inputs, per period", fontsize=10)
    ax.set_xlabel(
        "seconds since the job started (1 s here = one 60 s period in production)", fontsize=8
    )
    ax.legend(fontsize=7, loc="center right")
    ax.set_ylim(-0.1, 1.4)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "alarms.png")
    plt.close(fig)
    return {
        "expression": expression,
        "breaching_periods": int(sum(stalled)),
        "error_periods": int(sum(0 if math.isnan(v) else v > 0 for v in errors.values)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tofu", required=True, help="the OpenTofu binary")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "dashboard")
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--pause", type=float, default=10.0, help="seconds the broker is paused")
    parser.add_argument("--pause-at", type=float, default=0.35, help="fraction of the bytes")
    parser.add_argument(
        "--transaction-timeout-ms",
        type=int,
        default=6000,
        help="-X transaction.timeout.ms of the run: a pause longer than this makes commits fail "
        "and the job retry (default 6000; the product's default is 60000)",
    )
    args = parser.parse_args(argv)
    job_id = f"docs-dashboard-{uuid.uuid4().hex[:8]}"
    namespace = f"CsvToKafkaDocs{uuid.uuid4().hex[:8]}"
    widgets = dashboard_widgets(args.tofu, namespace, job_id)
    with tempfile.TemporaryDirectory() as work:
        timeline = run_job(
            rows=args.rows,
            pause=args.pause,
            pause_at=args.pause_at,
            namespace=namespace,
            job_id=job_id,
            work=Path(work),
            transaction_timeout_ms=args.transaction_timeout_ms,
        )
        # The parts send their rows under the job's id too (metrics.JOB_TOTALS): a gap, so that
        # none of theirs falls in the first run's pictures (which end 3 s after it).
        time.sleep(4)
        parts_timeline = run_parts(
            rows=args.rows, parts=2, namespace=namespace, job_id=job_id, work=Path(work)
        )
    time.sleep(1.5)  # moto has stored the final send
    summary = draw(
        widgets, boto3.client("cloudwatch"), namespace, job_id, timeline, args.out, parts_timeline
    )
    summary["job_id"], summary["namespace"] = job_id, namespace
    (args.out / "run.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(json.dumps({k: summary[k] for k in ("alarms", "job_id")}, indent=2))
    print(f"wrote {len(summary['widgets']) + 1} pictures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
