"""A worker process of a batch: ``python -m iiif_process.worker FD [CPU]``.

Started by :class:`iiif_process.pool.Pool` with one end of a socket pair as file descriptor
``FD`` (and, with one worker per CPU, the ``CPU`` to run on): it receives its job, then processes
one URI at a time until told to exit (or the parent goes away). SIGTERM and SIGINT are the
parent's to act on (it stops the batch and decides what happens to this worker's image); the
out-of-memory killer should pick a worker, never the parent that holds every result.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection


def _prefer_oom_kill() -> None:
    """Make this process the kernel's first choice when the task runs out of memory."""
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as handle:
        handle.write("1000")


def _pin(cpu: int) -> None:
    """Run on ``cpu`` only (libvips then sizes its thread pool to it); where that is not
    allowed, run anywhere."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        os.sched_setaffinity(0, {cpu})


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the parent on the connection given as a file descriptor."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 2) or not all(arg.isdigit() for arg in args):
        print(
            "usage: python -m iiif_process.worker FD [CPU] (started by iiif-process)",
            file=sys.stderr,
        )
        return 2
    if len(args) == 2:
        _pin(int(args[1]))
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _prefer_oom_kill()
    conn = Connection(int(args[0]))
    try:
        job = conn.recv()
    except (EOFError, OSError):
        return 0
    from .pool import serve

    job.prepare()
    serve(conn, job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
