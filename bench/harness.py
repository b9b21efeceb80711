"""``make bench``: csv-to-kafka with each Kafka client, side by side with kcat and the original
design, on the local stack; prints one table and issue 3's targets, writes bench/results/*.json.

Run it with the stack's environment (``eval "$(local/stack env)"``; ``make bench`` does that):

    python -m bench                           # 2M rows: confluent, kafka-python, kcat, original
    python -m bench --rows 200000 --repeat 3  # smaller file, median of three rounds
    python -m bench --resume --memory         # also the resume case and the 1M/10M memory case
    python -m bench --profile                 # one confluent run under pyinstrument, no table

Progress goes to stderr; the table and the path of the JSON file to stdout. Exit 0 when every
run finished and checked out (whether or not a target is met; ``--strict`` makes an unmet
target exit 3), 1 when a run failed or its output was wrong, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import datagen, dead_letters, report
from .measure import machine_info
from .runs import Bench, RunResult, median_run, summarize_samples

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RUNS = ("confluent", "kafka-python", "kcat", "original")
CLIENTS = ("confluent", "kafka-python")
WARMUP_ROWS = 5_000


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _rows(text: str) -> int:
    """A row count: 2000000, 2_000_000, 2M or 500k."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    value = int(float(text[:-1]) * scale) if scale > 1 else int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("a row count must be positive")
    return value


def _run_list(text: str) -> list[str]:
    if text.strip() in {"", "none"}:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown run {unknown[0]!r}; choose from {', '.join(RUNS)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Environment: KAFKA_BOOTSTRAP_SERVERS and AWS_ENDPOINT_URL (required; "
        'eval "$(local/stack env)"), AWS_REGION and credentials, CSV_TO_KAFKA_CACHE '
        "(the CSV cache's parent, as for local/stack).",
    )
    data = p.add_argument_group("the file")
    data.add_argument("--rows", type=_rows, default=2_000_000, help="data rows (default 2M)")
    data.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    data.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"where generated CSVs are kept between runs (default {datagen.default_cache_dir()})",
    )
    data.add_argument(
        "--bucket", default="csv-to-kafka-bench", help="S3 bucket (default %(default)s)"
    )

    main_case = p.add_argument_group("the side-by-side runs")
    main_case.add_argument(
        "--runs",
        type=_run_list,
        default=list(RUNS),
        help=f"comma-separated, in this order (default {','.join(RUNS)}; 'none' for none)",
    )
    main_case.add_argument(
        "--original-rows",
        type=_rows,
        default=20_000,
        help="rows of the slice the original design copies (default 20k; it does ~1,300 rows/s)",
    )
    main_case.add_argument(
        "--repeat", type=int, default=1, help="rounds of every run; the table shows the median"
    )
    main_case.add_argument(
        "--compression",
        default="zstd",
        choices=["none", "gzip", "snappy", "lz4", "zstd"],
        help="for csv-to-kafka and kcat alike (default zstd, the product's default)",
    )
    main_case.add_argument(
        "--run-args",
        default="",
        help='extra arguments for every csv-to-kafka run, e.g. "-X linger.ms=50"',
    )
    main_case.add_argument("--kcat-args", default="", help="extra arguments for kcat")
    main_case.add_argument(
        "--table", default="csv-to-kafka-bench", help="checkpoint table (default %(default)s)"
    )
    main_case.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip csv-to-kafka verify after each product run (it reads everything back)",
    )
    main_case.add_argument(
        "--keep-topics", action="store_true", help="keep each run's topic (default: delete it)"
    )

    resume = p.add_argument_group("the resume case")
    resume.add_argument("--resume", action="store_true", help="measure the resume case")
    resume.add_argument("--resume-rows", type=_rows, default=2_000_000, help="default 2M")
    resume.add_argument(
        "--resume-at", type=float, default=0.9, help="stop the first run here (default 0.9)"
    )
    resume.add_argument("--resume-client", choices=CLIENTS, default="confluent")
    resume.add_argument(
        "--resume-kill",
        action="store_true",
        help="stop the first run with SIGKILL (a crash) instead of SIGTERM (a clean stop)",
    )

    memory = p.add_argument_group("the memory case")
    memory.add_argument("--memory", action="store_true", help="measure the memory case")
    memory.add_argument(
        "--memory-rows",
        default="1M,10M",
        help="comma-separated file sizes, smallest first (default 1M,10M)",
    )
    memory.add_argument("--memory-client", choices=CLIENTS, default="confluent")

    packed = p.add_argument_group("compressed objects (issue 13)")
    packed.add_argument(
        "--compressed",
        action="store_true",
        help="confluent on the --rows file plain, gzip -6 and zstd -3 (named .csv), "
        "interleaved, --compressed-repeat rounds; the ratios of their rates",
    )
    packed.add_argument("--compressed-repeat", type=int, default=3, help="rounds (default 3)")
    packed.add_argument(
        "--compressed-resume",
        action="store_true",
        help="the resume case (--resume-rows, --resume-at) on a single-member gzip and on one "
        f"of {datagen.MEMBER_BYTES // 2**20} MiB members",
    )
    many = p.add_argument_group("a prefix of many objects (issue 13)")
    many.add_argument(
        "--prefix",
        action="store_true",
        help="confluent on one object of --rows rows and on a prefix of --prefix-objects "
        "objects holding as many rows, interleaved, --prefix-repeat rounds; the ratio of rates "
        "(target >= 0.5) and both peak RSS",
    )
    many.add_argument("--prefix-objects", type=int, default=1000, help="objects (default 1000)")
    many.add_argument("--prefix-repeat", type=int, default=1, help="rounds (default 1)")
    p.add_argument(
        "--all",
        action="store_true",
        help="the runs, --resume, --memory, --compressed and --compressed-resume",
    )
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the unmeasured 5k-row run that first creates the table and Kafka's "
        "transaction state",
    )
    dead = p.add_argument_group("bad rows to a dead-letter topic (issue 14)")
    dead.add_argument(
        "--dead-letters",
        action="store_true",
        help="confluent on the --rows file and on a copy with 1%% of its rows bad under "
        "--errors-tolerance all (a dead-letter topic), alternated, --dead-letters-repeat "
        "rounds; the median of the rounds' ratios of rates (target >= 0.9)",
    )
    dead.add_argument("--dead-letters-repeat", type=int, default=3, help="rounds (default 3)")
    p.add_argument(
        "--profile",
        nargs="?",
        const="pyinstrument",
        choices=["pyinstrument", "py-spy"],
        help="only profile one product run (default tool pyinstrument); no table",
    )
    p.add_argument("--profile-client", choices=CLIENTS, default="confluent")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=ROOT / "bench" / "results",
        help="where the JSON (and a folder of logs) go (default bench/results)",
    )
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run (default 3600)")
    p.add_argument("--strict", action="store_true", help="exit 3 when a target is not met")
    return p


def _environment() -> tuple[str, str]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not bootstrap or not endpoint:
        raise SystemExit(
            "bench: KAFKA_BOOTSTRAP_SERVERS and AWS_ENDPOINT_URL must point at the local stack: "
            'run `eval "$(local/stack env)"` first, or use `make bench`'
        )
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.setdefault("AWS_DEFAULT_REGION", os.environ["AWS_REGION"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return bootstrap, endpoint


def _s3() -> Any:
    import boto3  # noqa: PLC0415

    return boto3.client("s3")


def _prepare(cache: Path, rows: int, seed: int, bucket: str) -> tuple[datagen.CsvFile, str]:
    csv_file = datagen.cached_csv(cache, rows, seed, log=_log)
    return csv_file, datagen.upload(_s3(), csv_file, bucket, log=_log)


def _slice(
    cache: Path, big: datagen.CsvFile, rows: int, bucket: str
) -> tuple[datagen.CsvFile, str]:
    """The first ``rows`` rows of ``big``: generated with the same seed, checked to be a prefix."""
    small, source = _prepare(cache, min(rows, big.rows), big.seed, bucket)
    with open(big.path, "rb") as f_big, open(small.path, "rb") as f_small:
        if f_big.read(small.bytes) != f_small.read():
            raise SystemExit(f"bench: {small.path} is not a prefix of {big.path}; clear the cache")
    return small, source


def _dead_letters(bench: Bench, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The clean --rows file and its copy with 1% bad rows (``dead_letters.damage``), under
    --errors-tolerance all with a dead-letter topic, alternated round by round (the machine's
    load drifts: a round's two runs see about the same): the median of the rounds' ratios."""
    clean, clean_source = _prepare(cache, args.rows, args.seed, args.bucket)
    damaged_path = Path(clean.path).with_name(Path(clean.path).stem + "-1pct-bad.csv")
    bad = dead_letters.damage(Path(clean.path), damaged_path)
    damaged = datagen.CsvFile(
        str(damaged_path),
        clean.rows,
        clean.seed,
        damaged_path.stat().st_size,
        clean.lines,
        clean.special_rows,
    )
    key = f"bench/rows-{clean.rows}-seed-{clean.seed}-v{clean.generator_version}-1pct-bad.csv"
    damaged_source = datagen.upload(_s3(), damaged, args.bucket, log=_log, key=key)
    _log(f"dead letters: {bad:,} bad rows of {clean.rows:,} ({bad / clean.rows:.2%})")
    rounds: list[dict[str, Any]] = []
    for round_no in range(1, args.dead_letters_repeat + 1):
        _log(f"dead letters: round {round_no} of {args.dead_letters_repeat}")
        plain = bench.product(clean, clean_source, "confluent", f"dlq-clean-{round_no}")
        damaged_run = bench.product(
            damaged,
            damaged_source,
            "confluent",
            f"dlq-bad-{round_no}",
            name="confluent 1% bad",
            bad_rows=bad,
        )
        ratio = damaged_run.rows_per_s / plain.rows_per_s if plain.rows_per_s else None
        rounds.append({"clean": plain.to_json(), "damaged": damaged_run.to_json(), "ratio": ratio})
        _log(
            f"  clean {plain.rows_per_s:,.0f} rows/s ({plain.check}); 1% bad "
            f"{damaged_run.rows_per_s:,.0f} rows/s ({damaged_run.check}); ratio {ratio}"
        )
    ratios = [r["ratio"] for r in rounds if r["ratio"] is not None]
    # verify of both topics (None with --no-verify counts as not failed)
    exact = all(r[run]["check_ok"] is not False for r in rounds for run in ("clean", "damaged"))
    median = round(statistics.median(ratios), 3) if ratios else None
    _log(f"dead letters: median ratio {median} (target >= {dead_letters.TARGET}); exact {exact}")
    return {
        "bad_rows": bad,
        "rounds": rounds,
        "ratio": median,
        "target_ratio": dead_letters.TARGET,
        "met": median is not None and median >= dead_letters.TARGET and exact,
        "verified": exact,
    }


def _resume_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"\nresume: FAILED: {r['error']}"
    first, restart = r["first_run"], r["restart"]
    return (
        f"\nresume ({r['client']}, {r['rows']:,} rows): {r['stop_signal']} at "
        f"{first['rows_committed']:,} rows committed ({first['percent']:.1f}%, exit "
        f"{first['exit_code']}); restart: first new record seen {r['first_record_seen_s']} s "
        f"after the fork (CreateTime {r['first_record_created_s']} s, first commit "
        f"{r['first_commit_seen_s']} s; bare imports take {r['import_floor_s']} s), line "
        f"{r['first_record_line']}; the last {restart['rows']:,} rows in "
        f"{restart['wall_s']:.2f} s, "
        f"exit {restart['exit_code']}; {'verify OK' if r['check_ok'] else r['check']}"
    )


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0912, PLR0915 (one linear script)
    args = build_parser().parse_args(argv)
    if args.all:
        args.resume = args.memory = args.compressed = args.compressed_resume = True
    memory_rows = [_rows(x) for x in args.memory_rows.split(",") if x.strip()]
    bootstrap, endpoint = _environment()
    if "kcat" in args.runs and args.profile is None and shutil.which("kcat") is None:
        raise SystemExit("bench: kcat is not installed (apt-get install kcat; make bench does it)")
    cache = args.cache_dir or datagen.default_cache_dir()
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    json_path = args.results_dir / f"bench-{stamp}.json"
    out_dir = args.results_dir / f"bench-{stamp}"
    bench = Bench(
        bootstrap=bootstrap,
        bucket=args.bucket,
        table=args.table,
        out_dir=out_dir,
        compression=args.compression,
        run_args=shlex.split(args.run_args),
        kcat_args=shlex.split(args.kcat_args),
        verify=args.verify,
        keep_topics=args.keep_topics,
        timeout=args.timeout,
        log=_log,
    )
    document: dict[str, Any] = {
        "schema": 1,
        "started_at": started.isoformat(timespec="seconds"),
        "command": [sys.executable, "-m", "bench", *(argv if argv is not None else sys.argv[1:])],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine_info(ROOT, bench.services.pids.get("broker")),
        "stack": {
            "kafka_bootstrap_servers": bootstrap,
            "aws_endpoint_url": endpoint,
            "pids": bench.services.pids,
        },
        "logs": str(out_dir),
    }
    _log(
        f"{document['machine']['nproc']} CPUs ({document['machine']['cpu_model']}), load "
        f"{document['machine']['load_average']}; broker {bootstrap}, S3 {endpoint}"
    )

    if args.profile:
        csv_file, source = _prepare(cache, args.rows, args.seed, args.bucket)
        document["csv"] = {**csv_file.to_json(), "source": source}
        document["profile"] = bench.profile(csv_file, source, args.profile_client, args.profile)
        report.write_json(json_path, document)
        for path in document["profile"]["outputs"]:
            print(path)
        print(json_path)
        return 0 if document["profile"]["exit_code"] == 0 else 1

    if args.warmup and (
        set(args.runs) & set(CLIENTS)
        or args.resume
        or args.memory
        or args.compressed
        or args.compressed_resume
        or args.prefix
        or args.dead_letters
    ):
        warm_file, warm_source = _prepare(cache, WARMUP_ROWS, args.seed, args.bucket)
        bench.warm_up(warm_file, warm_source)

    samples: dict[str, list[RunResult]] = {}
    if args.runs:
        csv_file, source = _prepare(cache, args.rows, args.seed, args.bucket)
        document["csv"] = {**csv_file.to_json(), "source": source}
        if "original" in args.runs:
            slice_file, slice_source = _slice(cache, csv_file, args.original_rows, args.bucket)
            document["original_slice"] = {**slice_file.to_json(), "source": slice_source}
        for round_no in range(1, args.repeat + 1):
            if args.repeat > 1:
                _log(f"round {round_no} of {args.repeat}")
            for name in args.runs:
                label = f"{name}-{round_no}"
                if name in CLIENTS:
                    result = bench.product(csv_file, source, name, label)
                elif name == "kcat":
                    result = bench.kcat(csv_file, label)
                else:
                    result = bench.original(slice_file, slice_source, label)
                samples.setdefault(name, []).append(result)
                _log(
                    f"  {name}: {result.rows:,} rows in {result.wall_s:.2f}s = "
                    f"{result.rows_per_s:,.0f} rows/s, CPU {result.cpu_s:.1f}s, RSS "
                    f"{result.max_rss_mb:.0f} MB, exit {result.exit_code}; {result.check}"
                )
    runs = {name: median_run(found) for name, found in samples.items()}
    document["runs"] = {name: r.to_json() for name, r in runs.items()}
    document["samples"] = {name: [r.to_json() for r in found] for name, found in samples.items()}
    document["sample_stats"] = {name: summarize_samples(found) for name, found in samples.items()}

    resume: dict[str, Any] | None = None
    if args.resume:
        csv_file_r, source_r = _prepare(cache, args.resume_rows, args.seed, args.bucket)
        try:
            resume = bench.resume(
                csv_file_r, source_r, args.resume_client, args.resume_at, args.resume_kill
            )
        except RuntimeError as err:
            _log(f"  resume failed: {err}")
            resume = {"error": str(err), "check_ok": False}
        else:
            _log(
                f"  resume: first new record {resume['first_record_seen_s']}s after the restart "
                f"(CreateTime {resume['first_record_created_s']}s, committed "
                f"{resume['first_commit_seen_s']}s); {resume['check']}"
            )
    document["resume"] = resume

    packed: dict[str, list[RunResult]] = {}
    if args.compressed:
        csv_file_c, source_c = _prepare(cache, args.rows, args.seed, args.bucket)
        sources = {"plain": source_c}
        for kind in ("gzip", "zstd"):
            copy = datagen.compressed_copy(cache, csv_file_c, kind, log=_log)
            sources[kind] = datagen.upload_compressed(_s3(), copy, args.bucket, log=_log)
        for round_no in range(1, args.compressed_repeat + 1):
            _log(f"compressed: round {round_no} of {args.compressed_repeat}")
            for kind, src in sources.items():
                result = bench.product(
                    csv_file_c, src, "confluent", f"{kind}-{round_no}", name=f"confluent {kind}"
                )
                packed.setdefault(kind, []).append(result)
                _log(
                    f"  {kind}: {result.rows_per_s:,.0f} rows/s, RSS {result.max_rss_mb:.0f} MB,"
                    f" CPU {result.cpu_s:.1f}s, exit {result.exit_code}; {result.check}"
                )
    packed_runs = {kind: median_run(found) for kind, found in packed.items()}
    document["compressed"] = (
        {
            "runs": {kind: r.to_json() for kind, r in packed_runs.items()},
            "samples": {k: [r.to_json() for r in found] for k, found in packed.items()},
            "ratios_by_round": {
                kind: [
                    round(r.rows_per_s / p.rows_per_s, 3) if p.rows_per_s else None
                    for r, p in zip(found, packed["plain"], strict=True)
                ]
                for kind, found in packed.items()
                if kind != "plain"
            },
        }
        if packed
        else None
    )

    if args.prefix:
        csv_file_p, source_p = _prepare(cache, args.rows, args.seed, args.bucket)
        prefix_uri, prefix_file = datagen.upload_prefix(
            _s3(),
            cache,
            bucket=args.bucket,
            objects=args.prefix_objects,
            rows_per_object=args.rows // args.prefix_objects,
            seed=args.seed,
            log=_log,
        )
        many: dict[str, list[RunResult]] = {}
        for round_no in range(1, args.prefix_repeat + 1):
            _log(f"prefix: round {round_no} of {args.prefix_repeat}")
            for kind, (facts, src) in {
                "one object": (csv_file_p, source_p),
                f"{args.prefix_objects} objects": (prefix_file, prefix_uri),
            }.items():
                label = f"prefix-{kind.split()[0]}-{round_no}"
                result = bench.product(facts, src, "confluent", label, name=f"confluent {kind}")
                many.setdefault(kind, []).append(result)
                _log(
                    f"  {kind}: {result.rows_per_s:,.0f} rows/s, RSS {result.max_rss_mb:.0f} MB,"
                    f" CPU {result.cpu_s:.1f}s, exit {result.exit_code}; {result.check}"
                )
        many_runs = {kind: median_run(found) for kind, found in many.items()}
        one, lots = many_runs.values()
        document["prefix"] = {
            "runs": {kind: r.to_json() for kind, r in many_runs.items()},
            "ratio": round(lots.rows_per_s / one.rows_per_s, 3) if one.rows_per_s else None,
            "target_ratio": 0.5,
            "peak_rss_mb": {kind: r.max_rss_mb for kind, r in many_runs.items()},
        }
        _log(f"prefix: ratio {document['prefix']['ratio']} (target >= 0.5)")

    if args.dead_letters:
        document["dead_letters"] = _dead_letters(bench, cache, args)

    packed_resume: dict[str, dict[str, Any]] = {}
    if args.compressed_resume:
        csv_file_r, _source_r = _prepare(cache, args.resume_rows, args.seed, args.bucket)
        for kind in ("gzip", "gzip-members"):
            copy = datagen.compressed_copy(cache, csv_file_r, kind, log=_log)
            src = datagen.upload_compressed(_s3(), copy, args.bucket, log=_log)
            try:
                found_r = bench.resume(
                    csv_file_r, src, args.resume_client, args.resume_at, args.resume_kill
                )
            except RuntimeError as err:
                _log(f"  resume {kind} failed: {err}")
                found_r = {"error": str(err), "check_ok": False}
            found_r["kind"] = kind
            found_r["compressed_bytes"] = copy.bytes
            packed_resume[kind] = found_r
            if "error" not in found_r:
                _log(f"  resume {kind}: first new record {found_r['first_record_seen_s']}s")
    document["compressed_resume"] = packed_resume or None

    memory: list[RunResult] = []
    if args.memory:
        for rows in memory_rows:
            csv_file_m, source_m = _prepare(cache, rows, args.seed, args.bucket)
            result = bench.memory(csv_file_m, source_m, args.memory_client)
            memory.append(result)
            _log(
                f"  memory {rows:,} rows: peak RSS {result.max_rss_mb:.0f} MB, "
                f"{result.rows_per_s:,.0f} rows/s, exit {result.exit_code}; {result.check}"
            )
    document["memory"] = [r.to_json() for r in memory] if args.memory else None

    found = report.targets(runs, resume, memory) + report.compressed_targets(packed_runs)
    if args.dead_letters:
        dead = document["dead_letters"]
        found.append(
            report.Target(
                "1% bad rows (all) / clean rows/s, median of rounds",
                f"{dead['ratio']}x" if dead["ratio"] is not None else "-",
                f">= {dead['target_ratio']:g}x, both topics verified",
                dead["met"],
            )
        )
    table_rows = list(runs.values()) + list(packed_runs.values()) + memory
    table = report.render_table(table_rows, found)
    finished = datetime.now(UTC)
    document.update(
        targets=[t.to_json() for t in found],
        all_met=all(t.met for t in found) if all(t.met is not None for t in found) else None,
        table=table,
        finished_at=finished.isoformat(timespec="seconds"),
        duration_s=round((finished - started).total_seconds(), 1),
        load_average_after=[round(x, 2) for x in os.getloadavg()],
    )
    report.write_json(json_path, document)

    title = f"csv-to-kafka bench, {stamp}"
    if "csv" in document:
        c = document["csv"]
        title += f": {c['rows']:,} rows, {c['bytes'] / 1e6:,.1f} MB ({c['bytes_per_row']} B/row)"
    print(f"\n{title}; compression {args.compression}; wall time includes process start-up")
    print(table)
    if resume is not None:
        print(_resume_line(resume))
    for kind, found_r in packed_resume.items():
        print(f"{kind} object:" + _resume_line(found_r))
    print(f"\nresults: {json_path}\nlogs:    {out_dir}")

    failed = (
        any(not r.ok for r in [*runs.values(), *packed_runs.values(), *memory])
        or (resume is not None and resume.get("check_ok") is False)
        or any(r.get("check_ok") is False for r in packed_resume.values())
    )
    if failed:
        return 1
    if args.strict and not all(t.met for t in found):
        return 3
    return 0
