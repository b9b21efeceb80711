"""Named crash points for the crash tests: ``CSV_TO_KAFKA_FAILPOINTS="after-commit=3"``.

When set, the process SIGKILLs itself the 3rd time it reaches ``after-commit``. Unset (always, in
production) a failpoint costs one dictionary lookup per transaction; none sits on the per-row path.

Points: ``in-transaction`` (records sent, not committed), ``after-commit`` (Kafka committed, the
DynamoDB checkpoint not yet written), ``after-checkpoint`` (the checkpoint written).
"""

from __future__ import annotations

import os
import signal

ENV = "CSV_TO_KAFKA_FAILPOINTS"


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition("=")
        points[name] = int(count or "1")
    return points


_remaining = _parse(os.environ.get(ENV, ""))


def failpoint(name: str) -> None:
    """Die here, as kill -9 would, if this point's turn has come."""
    if name not in _remaining:
        return
    _remaining[name] -= 1
    if _remaining[name] <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
