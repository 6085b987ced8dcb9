"""Lambda entry point: event → records → started tasks → response.

Deployed from the `lambda_src/` folder, so the `iiif_process_ecs` package sits beside this file.
"""

from __future__ import annotations

from typing import Any

from iiif_process_ecs.service import handle_event


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Start `iiif-process` tasks for the images an event names; never waits for them.

    Returns ``{"launched": [{"uri", "task_arn"}], "skipped": [{"uri", "reason"}],
    "failed": [{"uri", "reason"}], "tasks": [...]}``. For an SQS batch from the event queue it
    adds ``"batchItemFailures": [{"itemIdentifier": messageId}]`` naming the messages with a URI
    AWS did not start, so that SQS delivers only those again (and after 5 receives moves them
    to the queue's dead-letter queue). For other events it raises TasksNotStarted when AWS did
    not start some URIs, so that Lambda retries the event (the clientToken keeps started batches
    from starting twice) and finally sends it to the function's dead-letter queue.
    """
    return handle_event(event, context)
