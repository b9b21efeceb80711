"""Step 3 of the benchmark: one table, the targets of issue 3 each marked met or not met, and
the JSON file under bench/results/."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .runs import RunResult

__all__ = ["Target", "compressed_targets", "render_table", "targets", "write_json"]

# Issue 3's targets.
CONFLUENT_ROWS_PER_S = 250_000
KAFKA_PYTHON_ROWS_PER_S = 60_000
KCAT_RATIO = 0.5
ORIGINAL_RATIO = 100
MAX_RSS_MB = 200
RESUME_SECONDS = 2.0
# Issue 13: a compressed object's rate against the same rows uncompressed, side by side.
GZIP_RATIO = 0.8
ZSTD_RATIO = 0.9
# "About equal" peak RSS for the memory case: the larger file may use at most this much more.
MEMORY_GROWTH = 0.10


@dataclass(frozen=True)
class Target:
    name: str
    value: str
    goal: str
    met: bool | None  # None: not measured in this run

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "goal": self.goal, "met": self.met}


def _mark(met: bool | None) -> str:
    return {True: "met", False: "NOT MET", None: "not measured"}[met]


def _rate(r: RunResult | None) -> str:
    return f"{r.rows_per_s:,.0f} rows/s" if r else "-"


def _ratio(name: str, top: RunResult | None, bottom: RunResult | None, goal: float) -> Target:
    if top is None or bottom is None or bottom.rows_per_s <= 0:
        return Target(name, "-", f">= {goal:g}x", None)
    ratio = top.rows_per_s / bottom.rows_per_s
    return Target(name, f"{ratio:.2f}x", f">= {goal:g}x", top.ok and bottom.ok and ratio >= goal)


def _span_target(r: RunResult | None) -> Target:
    """The rows/s between the first and last record's CreateTime: the rate of a long run, whose
    start-up (about a second here) does not count; the 10M-row memory run shows it end to end."""
    name = "confluent rows/s, first-last record"
    rate = r.extra.get("span_rows_per_s") if r else None
    if r is None or rate is None:
        return Target(name, "-", f">= {CONFLUENT_ROWS_PER_S:,}", None)
    return Target(
        name,
        f"{rate:,.0f} rows/s",
        f">= {CONFLUENT_ROWS_PER_S:,}",
        r.ok and rate >= CONFLUENT_ROWS_PER_S,
    )


def _verdict(ok: bool | None) -> str:
    return "OK" if ok else "skipped" if ok is None else "FAILED"


def _main_targets(runs: dict[str, RunResult]) -> list[Target]:
    confluent, kafka_python = runs.get("confluent"), runs.get("kafka-python")
    out = [
        Target(
            "confluent rows/s",
            _rate(confluent),
            f">= {CONFLUENT_ROWS_PER_S:,}",
            confluent.ok and confluent.rows_per_s >= CONFLUENT_ROWS_PER_S if confluent else None,
        ),
        _span_target(confluent),
        _ratio("confluent / kcat", confluent, runs.get("kcat"), KCAT_RATIO),
        _ratio("confluent / original design", confluent, runs.get("original"), ORIGINAL_RATIO),
        Target(
            "kafka-python rows/s",
            _rate(kafka_python),
            f">= {KAFKA_PYTHON_ROWS_PER_S:,}",
            kafka_python.ok and kafka_python.rows_per_s >= KAFKA_PYTHON_ROWS_PER_S
            if kafka_python
            else None,
        ),
    ]
    product = [r for r in (confluent, kafka_python) if r is not None]
    out += [
        Target(
            f"peak RSS {r.name}",
            f"{r.max_rss_mb:,.0f} MB",
            f"<= {MAX_RSS_MB} MB",
            r.max_rss_mb <= MAX_RSS_MB,
        )
        for r in product
    ]
    if product:
        out.append(
            Target(
                "exact (csv-to-kafka verify)",
                ", ".join(f"{r.name} {_verdict(r.check_ok)}" for r in product),
                "every run OK",
                None if any(r.check_ok is None for r in product) else all(r.ok for r in product),
            )
        )
    return out


def _memory_targets(memory: Sequence[RunResult]) -> list[Target]:
    out = [
        Target(
            f"peak RSS {r.rows:,} rows",
            f"{r.max_rss_mb:,.0f} MB",
            f"<= {MAX_RSS_MB} MB",
            r.ok and r.max_rss_mb <= MAX_RSS_MB,
        )
        for r in memory
    ]
    if len(memory) >= 2:
        small, large = memory[0], memory[-1]
        growth = large.max_rss_mb / small.max_rss_mb - 1 if small.max_rss_mb else 0.0
        out.append(
            Target(
                f"peak RSS {large.rows:,} vs {small.rows:,} rows",
                f"{growth:+.1%}",
                f"<= +{MEMORY_GROWTH:.0%} (flat)",
                growth <= MEMORY_GROWTH,
            )
        )
    return out


def targets(
    runs: dict[str, RunResult],
    resume: dict[str, Any] | None,
    memory: Sequence[RunResult],
) -> list[Target]:
    """Issue 3's targets, for the cases that were run."""
    out = _main_targets(runs) if runs else []
    if resume is not None and "error" in resume:
        out.append(Target("resume: first new record", "failed", f"<= {RESUME_SECONDS:g} s", False))
    elif resume is not None:
        seen = resume.get("first_record_seen_s")
        out.append(
            Target(
                f"resume at {resume['first_run']['percent']:.0f}%: first new record",
                f"{seen:.2f} s" if seen is not None else "none seen",
                f"<= {RESUME_SECONDS:g} s",
                seen is not None and seen <= RESUME_SECONDS and resume.get("check_ok") is not False,
            )
        )
    return out + _memory_targets(memory)


def compressed_targets(runs: dict[str, RunResult]) -> list[Target]:
    """Issue 13's: gzip at >= 0.8x and zstd at >= 0.9x the plain rate (the median runs of
    interleaved rounds), and no more peak RSS than the plain run's, plus 10%."""
    if not runs:
        return []
    plain = runs.get("plain")
    out = [
        _ratio("gzip -6 / plain rows/s", runs.get("gzip"), plain, GZIP_RATIO),
        _ratio("zstd -3 / plain rows/s", runs.get("zstd"), plain, ZSTD_RATIO),
    ]
    if plain is not None:
        bound = plain.max_rss_mb * (1 + MEMORY_GROWTH)
        for kind in ("gzip", "zstd"):
            r = runs.get(kind)
            if r is not None:
                out.append(
                    Target(
                        f"{kind} peak RSS",
                        f"{r.max_rss_mb:.0f} MB",
                        f"<= plain's {plain.max_rss_mb:.0f} MB + 10%",
                        r.max_rss_mb <= bound,
                    )
                )
    return out


def _row(r: RunResult) -> list[str]:
    stack = r.stack_cpu_s
    return [
        r.name,
        f"{r.rows:,}",
        f"{r.records:,}" if r.records is not None else "-",
        f"{r.wall_s:.2f}",
        f"{r.rows_per_s:,.0f}",
        f"{r.extra['span_rows_per_s']:,.0f}" if "span_rows_per_s" in r.extra else "-",
        f"{r.mb_per_s:.1f}",
        f"{r.cpu_s:.2f}",
        f"{100 * r.cpu_s / r.wall_s:.0f}%" if r.wall_s else "-",
        f"{r.max_rss_mb:.0f}",
        f"{stack['broker']:.1f}" if "broker" in stack else "-",
        f"{stack['moto']:.1f}" if "moto" in stack else "-",
        ("ok" if r.check_ok else "-" if r.check_ok is None else "FAIL")
        if r.exit_code == 0
        else f"exit {r.exit_code}",
    ]


_HEADER = [
    "run",
    "rows",
    "records",
    "wall s",
    "rows/s",
    "first-last rows/s",
    "MB/s",
    "CPU s",
    "CPU/wall",
    "RSS MB",
    "broker CPU s",
    "moto CPU s",
    "check",
]


def render_table(results: Sequence[RunResult], found: Sequence[Target]) -> str:
    """The runs as a Markdown table, then the targets."""
    rows = [_HEADER, *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows[1:]]
    if found:
        out.append("")
        name_w = max(len(t.name) for t in found)
        value_w = max(len(t.value) for t in found)
        goal_w = max(len(t.goal) for t in found)
        for t in found:
            out.append(
                f"  {t.name.ljust(name_w)}  {t.value.rjust(value_w)}  {t.goal.ljust(goal_w)}  "
                f"{_mark(t.met)}"
            )
    return "\n".join(out)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
