"""Issue 15's speed figure: typed values from a schema against the untyped copy, side by side.

    eval "$(local/stack env)"; .venv/bin/python -m bench.typed --rows 200000 --rounds 5

The same object (bench/datagen.py's file, 13 columns) is copied with each client with
``--schema bench/typed_schema.json`` (5 columns typed: ``id``, ``customer_id`` and ``quantity``
integer, ``amount`` number, ``comment`` a nullable string) and without, alternating
(bench/sidebyside.py). Prints the medians per client and layout, the ratio typed / untyped (the
issue's target: >= 0.7) and the load average, as one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .sidebyside import Comparison, main

SCHEMA = Path(__file__).with_name("typed_schema.json")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schema", default=str(SCHEMA), help="default: %(default)s")


TYPED = Comparison(
    prog="python -m bench.typed",
    description=__doc__ or "",
    candidate="typed",
    baseline="untyped",
    target=0.7,
    add_arguments=_add_arguments,
    layouts=lambda args: {"typed": ["--schema", args.schema], "untyped": []},
    details=lambda args: {"schema": args.schema},
)

if __name__ == "__main__":
    sys.exit(main(TYPED))
