"""Lambda entry point of the reconcile function: stopped-task events → ledger → re-run/re-queue.

Deployed from the `lambda_src/` folder as ``reconcile_handler.handler``, beside the
``iiif_process_ecs`` package.
"""

from __future__ import annotations

from typing import Any

from iiif_process_ecs.reconcile import handle_reconcile_event


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Reconcile the tasks named by an SQS batch of "ECS Task State Change" (STOPPED) events.

    Returns ``{"batchItemFailures": [{"itemIdentifier": MESSAGE_ID}], "tasks": [...]}``: the
    messages whose handling hit an AWS failure are delivered again (every step is idempotent);
    bodies that are not such events are logged and dropped.
    """
    return handle_reconcile_event(event, context)
