"""The CLI side of ``-mode backfill``: flags → a Backfill run → what is printed (issue #10).

The first Ctrl-C asks the run to stop after the page in hand (then ``-start-after KEY`` is
printed to resume); a second one stops at once, putting the page's ledger items back.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, TextIO

from .backfill import (
    EXIT_STOPPED,
    Backfill,
    BackfillOptions,
    BackfillResult,
    BackfillUsageError,
    StopRequest,
    describe,
    object_count,
    resume_hint,
    summary,
    write_json,
)
from .claims import recipe_of_task_definition
from .cost import task_size_of
from .ledger import Ledger
from .progress import Progress
from .requeue import Requeuer


@contextmanager
def stop_on_ctrl_c(stop: StopRequest, progress: Progress) -> Iterator[None]:
    """SIGINT sets ``stop`` once, then raises KeyboardInterrupt (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True
        progress.note("stopping after this page (Ctrl-C again to stop now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_backfill_mode(
    values: Mapping[str, Any],
    session: Any,
    stdout: TextIO,
    stderr: TextIO,
    *,
    nonce: str = "",
    on_page: Callable[[BackfillResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    tty: bool | None = None,
) -> int:
    """Run ``-mode backfill`` with the CLI's flag ``values``; returns the exit status: 0, 1 when
    some key could not be queued, 130 when stopped by Ctrl-C."""
    needed = ["source-bucket", "ledger-table", "task", "container"]
    if not values["dry-run"]:
        needed.append("event-queue-url")
    missing = [f"-{name}" for name in needed if not values.get(name)]
    if missing:
        raise BackfillUsageError(f"-mode backfill needs {', '.join(missing)} (or -stack)")
    if values["max-uris-per-task"] < 1:
        raise BackfillUsageError("-max-uris-per-task must be at least 1")
    if values["max-source-bytes"] < 0:
        raise BackfillUsageError("-max-source-bytes must be 0 (no limit) or more")
    region = getattr(session, "region_name", "") or ""
    bucket = values["source-bucket"]
    ecs = session.client("ecs")
    size = task_size_of(
        ecs.describe_task_definition(taskDefinition=values["task"])["taskDefinition"]
    )
    recipe = values["recipe"] or recipe_of_task_definition(
        ecs, SimpleNamespace(task_definition=values["task"], container=values["container"])
    )
    options = BackfillOptions(
        bucket=bucket,
        prefix=values["prefix"],
        start_after=values["start-after"],
        recipe=recipe,
        max_source_bytes=values["max-source-bytes"],
        dry_run=values["dry-run"],
        force=values["force"],
        run=nonce,
        region=region,
    )
    total = None
    if not options.prefix and not options.start_after:
        total = object_count(session.client("cloudwatch"), bucket)
    progress = Progress(stderr, tty=tty, total=total)
    requeuer = (
        None
        if options.dry_run
        else Requeuer(
            session.client("sqs"),
            values["event-queue-url"],
            bucket,
            region=region,
            sleep=sleep,
            rand=rand,
        )
    )
    show_keys = options.dry_run and not values["json"]
    stop = StopRequest()
    backfill = Backfill(
        session.client("s3"),
        Ledger(values["ledger-table"], session=session),
        requeuer,
        options,
        progress=progress,
        stop=stop,
        on_page=on_page,
        on_would_queue=(lambda keys: stdout.write("".join(f"{k}\n" for k in keys)))
        if show_keys
        else None,
        on_failed_key=lambda key, reason: progress.note(f"failed: {key}: {reason}"),
    )
    with stop_on_ctrl_c(stop, progress):
        result = backfill.run()
    report = summary(
        result,
        max_uris_per_task=values["max-uris-per-task"],
        size=size,
        region=region,
        prices=values["prices"],
    )
    if values["json"]:
        write_json(stdout, report)
    else:
        stdout.write(
            describe(
                result,
                report,
                dry_run=options.dry_run,
                size=size,
                region=region,
                prices=values["prices"],
            )
        )
    if result.stopped:
        stderr.write(resume_hint(result))
        return EXIT_STOPPED
    return 1 if result.failed else 0
