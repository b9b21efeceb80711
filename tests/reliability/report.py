"""The table of docs/reliability.md, from the report the oracle writes (one JSON line per job).

    python -m tests.reliability.report tests/reliability/results/torture.jsonl

Prints, per fault type: how it is injected, the tests and jobs, the rounds injected (faults,
kills, bounces, files...), the processor runs, the records checked by the final read_committed
read and by the consumer that watched during the faults, and what the oracle found (missing,
duplicated, reordered, content differing, non-prefix reads, checkpoint regressions: all must be
0). Then the seeds, to replay any of it with CSV_TO_KAFKA_SEED.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

HOW = {
    "1": "`kill -9` of the processor once each run has committed another 20%, and at seeded "
    "random instants (0.2-2.5 s after launch: start-up, open transaction, commit)",
    "2": "`CSV_TO_KAFKA_FAILPOINTS`: SIGKILL after the Kafka commit before the DynamoDB write, "
    "after the DynamoDB write, inside a transaction, at a seeded transaction count",
    "3": "SIGTERM once each run has committed another 20%: exit 143 within 30 s, INTERRUPTED "
    "checkpoint at the last commit",
    "4": "local/imds_stub.py flips `spot/instance-action`; option3-ec2-spot/user-data.sh's "
    "watcher sends SIGTERM; SIGKILL 120 s after the notice if still running",
    "5": "`local/stack kafka-kill` (SIGKILL) mid-copy, then `local/stack up`",
    "6": "`local/stack kafka-stop` (clean) mid-copy, then `local/stack up`",
    "7": "SIGSTOP of the broker for 5, 35 or 70 s (past request.timeout.ms and "
    "transaction.timeout.ms), then SIGCONT",
    "8": "local/kafka_fault_proxy.py between processor and broker (Metadata rewritten to keep "
    "clients on it): Produce / AddPartitionsToTxn / EndTxn responses swallowed (connection "
    "then reset, or black-holed until the client's timeout), delayed; resets mid-frame",
    "9": "SIGSTOP a running processor, run a second instance of the job to its end, SIGCONT the "
    "first (also after the 60 s transaction timeout)",
    "10": "local/aws_fault_proxy.py in front of moto: DynamoDB throttling, "
    "ProvisionedThroughputExceeded, 500/503, resets, answers lost after the write; S3 SlowDown, "
    "500/503, resets, GET bodies cut mid-stream; CloudWatch down; outages past --retry-seconds",
    "11": "300 s (CI: 45 s) of random faults from 1, 5, 7 and 8 over a stream of jobs, 3 seeds",
    "12": "tests/data/hostile (manifest.json: the documented outcome of each file), plus a 50 MB "
    "field, a 1 GB line, 10,000 columns, fields near the 1 MB record limit, generated and "
    "streamed; valid files also killed after their 2nd commit and resumed",
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
        "differs | not a prefix | checkpoint regressions |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
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
            f"| {sum(len(row['checkpoint_regressions']) for row in jobs)} |"
        )
    return "\n".join(out)


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
