"""EC2's side of a Spot interruption: 120 s after the notice, the instance is reclaimed.

The watcher under test is the product's own, option3-ec2-spot/user-data.sh: it runs the
processor, polls IMDSv2's ``spot/instance-action`` (here local/imds_stub.py) and sends SIGTERM
when the notice appears. ``Reclaimer`` plays EC2: if anything of the instance still runs
``RECLAIM_SECONDS`` after the notice, it is SIGKILLed, process group and all.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from .faults import Run

RECLAIM_SECONDS = 120.0


class Reclaimer:
    def __init__(self, instance: Run, notice_at: float) -> None:
        self.instance = instance
        self.notice_at = notice_at
        self.reclaimed = False
        self._thread = threading.Thread(target=self._run, name="ec2-reclaim", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = self.notice_at + RECLAIM_SECONDS
        while self.instance.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.instance.poll() is None:
            self.reclaimed = True
            os.killpg(self.instance.pid, signal.SIGKILL)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
