"""Issue 15's speed figure: a keyed copy over 6 partitions against the unkeyed copy, side by side.

    eval "$(local/stack env)"; .venv/bin/python -m bench.keyed --rows 200000 --rounds 5

The same object (bench/datagen.py's file, keyed by ``customer_id``) is copied with each client,
keyed (``--key-column customer_id --partitions 6``) and unkeyed, alternating (bench/sidebyside.py).
Prints the medians per client and layout, the ratio keyed / unkeyed (the issue's target: >= 0.9)
and the load average, as one JSON object.
"""

from __future__ import annotations

import argparse
import sys

from .sidebyside import Comparison, main


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--key-column", default="customer_id")


KEYED = Comparison(
    prog="python -m bench.keyed",
    description=__doc__ or "",
    candidate="keyed",
    baseline="unkeyed",
    target=0.9,
    add_arguments=_add_arguments,
    layouts=lambda args: {
        "keyed": ["--key-column", args.key_column, "--partitions", str(args.partitions)],
        "unkeyed": [],
    },
    details=lambda args: {"partitions": args.partitions, "key_column": args.key_column},
)

if __name__ == "__main__":
    sys.exit(main(KEYED))
