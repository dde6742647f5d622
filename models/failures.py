"""What an operator reads about a failed activity, child workflow or run.

Workflows put it in their own failure messages and the CLI prints it, so it lives beside the
models both import rather than in a workflow module.
"""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ChildWorkflowError


def failure_message(exc: BaseException) -> str:
    """The message an operator needs: the first failure below the Temporal wrappers.

    Wrappers (activity, child workflow, client-side workflow failure) only say where it
    happened; the application error under them says what happened.
    """
    while (
        isinstance(exc, ActivityError | ChildWorkflowError)
        or type(exc).__name__ == "WorkflowFailureError"
    ) and getattr(exc, "cause", None) is not None:
        exc = exc.cause  # type: ignore[attr-defined]
    return str(exc) or type(exc).__name__
