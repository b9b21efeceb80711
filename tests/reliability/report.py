"""The table of docs/reliability.md, from the report the oracle writes (one JSON line per job).

    python -m tests.reliability.report tests/reliability/results/torture.jsonl

Prints, per fault type: how it is injected, the tests and jobs, the rounds injected (faults,
kills, bounces, files...), the processor runs, the records checked by the final read_committed
read and by the consumer that watched during the faults, and what the oracle found (missing,
duplicated, reordered, content differing, non-prefix reads, checkpoint regressions: all must be
0). Then, for jobs of many objects and jobs with a dead-letter topic: the objects, the dead
letters checked (by the final read, and the checks after each fault) and what the oracle found
in the dead-letter topic (missing, duplicated, reordered, content differing, and checks that
found it out of step with the topic: all must be 0; "-" where no job had one). Then the seeds,
to replay any of it with CSV_TO_KAFKA_SEED.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

HOW = {
    "1": "kill -9 at each further 20%, and at seeded random instants",
    "2": "failpoints: SIGKILL after commit / after checkpoint / in a transaction",
    "3": "SIGTERM at each further 20%",
    "4": "IMDSv2 stub notice, user-data.sh's watcher SIGTERMs, SIGKILL at +120 s",
    "5": "local/stack kafka-kill, then local/stack up",
    "6": "local/stack kafka-stop, then local/stack up",
    "7": "SIGSTOP of the broker 5, 35, 70 s, then SIGCONT",
    "8": "TCP proxy: responses dropped, black-holed, delayed; resets",
    "9": "SIGSTOP instance 1, run instance 2 to the end, SIGCONT instance 1",
    "10": "HTTP proxy before moto: throttling, 5xx, resets, cut bodies, outages",
    "11": "random 1, 5, 7, 8 for 300 s (CI: 30 s) per seed",
    "12": "corpus of 40 files plus generated 50 MB field, 1 GB line, 10,000 columns",
    "13": "failpoints (in a transaction, after commit, after checkpoint), then kill -9 at random "
    "instants, 1.2% bad rows",
    "14": "failpoints (in a transaction, after commit, after checkpoint) at their 1st-4th point",
}


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(rows: list[dict[str, Any]]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["fault"].split()[0]].append(row)
    out = [
        "| fault | how it is injected | tests (clients) | jobs | rounds injected | processor runs "
        "| records checked (final + during) | missing | duplicated | reordered | content "
        "differs | not a prefix | checkpoint regressions | objects | dead letters checked "
        "(final + after faults) | DLQ missing / duplicated / reordered / differs / out of step |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for number in sorted(groups, key=int):
        jobs = groups[number]
        name = jobs[0]["fault"].split(" ", 1)[1]
        tests = {row["test"].split("::")[-1] for row in jobs}
        clients = sorted({row["client"] for row in jobs})
        final = sum(row["records_checked"] for row in jobs)
        during = sum(row["prefix_records_checked"] for row in jobs)
        out.append(
            f"| {number}. {name} | {HOW.get(number, '')} | {len(tests)} "
            f"({', '.join(clients)}) | {len(jobs)} | {sum(row['rounds'] for row in jobs)} "
            f"| {sum(row['runs'] for row in jobs)} | {final:,} + {during:,} "
            f"| {sum(row['missing'] for row in jobs)} | {sum(row['duplicated'] for row in jobs)} "
            f"| {sum(row['reordered'] for row in jobs)} "
            f"| {sum(row['content_differs'] for row in jobs)} "
            f"| {sum(1 for row in jobs if row['prefix_violation'])} "
            f"| {sum(len(row['checkpoint_regressions']) for row in jobs)} "
            f"| {sum(row.get('objects', 1) for row in jobs):,} | {_dlq(jobs)} |"
        )
    return "\n".join(out)


def _dlq(jobs: list[dict[str, Any]]) -> str:
    """The dead-letter columns of a group: '- | -' if none of its jobs had a DLQ."""
    with_dlq = [row for row in jobs if row.get("dlq")]
    if not with_dlq:
        return "- | -"
    final = sum(row["dlq_records_checked"] for row in with_dlq)
    checks = sum(row["dlq_checks_after_faults"] for row in with_dlq)
    found = " / ".join(
        str(sum(row[name] for row in with_dlq))
        for name in (
            "dlq_missing",
            "dlq_duplicated",
            "dlq_reordered",
            "dlq_content_differs",
            "dlq_out_of_step",
        )
    )
    return f"{final:,} + {checks:,} checks | {found}"


def seeds(rows: list[dict[str, Any]]) -> str:
    by_test: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row.get("seed") is not None:
            by_test[row["test"].split("::")[-1]].add(row["seed"])
    return "\n".join(
        f"- `{test}`: {', '.join(str(s) for s in sorted(values))}"
        for test, values in sorted(by_test.items())
    )


def main() -> None:
    rows = load(Path(sys.argv[1]))
    print(table(rows))
    print()
    print(f"{len(rows)} jobs judged. Seeds (CSV_TO_KAFKA_SEED=N replays one):")
    print()
    print(seeds(rows))


if __name__ == "__main__":
    main()
