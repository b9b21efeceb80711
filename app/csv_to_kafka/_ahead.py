"""Run a producer of items in a thread a few items ahead of its consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def ahead(items: Iterable[T], *, depth: int, name: str) -> Iterator[T]:
    """Yield ``items`` while a thread computes up to ``depth`` of the next ones.

    Used where the work on both sides can overlap: S3 reads with parsing, and parsing with the
    Kafka commit (which waits without holding the GIL). An error in the thread is raised here,
    after the items made before it. Closing the iterator stops the thread at its next item.
    """
    q: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.5)
            except queue.Full:
                continue
            return True
        return False

    def pump() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as err:  # noqa: BLE001 (handed to the consumer, which raises it)
            put((_DONE, err))

    threading.Thread(target=pump, name=name, daemon=True).start()
    try:
        while True:
            item, err = q.get()
            if err is not None:
                raise err
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
