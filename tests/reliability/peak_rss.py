"""Runs a command and writes its peak resident memory (KiB) to a file:

    python peak_rss.py OUT COMMAND [ARGS...]

Why a wrapper: a process forked from the test runner inherits the runner's memory high-water
mark (Linux keeps ``maxrss`` across fork and exec), so ``wait4`` on a direct child reports the
runner's size, not the processor's. Forked from this small process instead, the command's
``maxrss`` is its own. The exit status is passed on (a signal as the same signal).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path


def main() -> None:
    out, command = Path(sys.argv[1]), sys.argv[2:]
    code = subprocess.call(command)
    out.write_text(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
    if code < 0:
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those cannot be caught anyway
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
