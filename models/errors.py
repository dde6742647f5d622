"""Errors whose type says how to recover.

Connectors raise these; activities turn them into Temporal ``ApplicationError`` s with the
matching retry behaviour (see ``activities/errors.py``). Messages must never contain
secrets or record data: they end up in workflow history and logs.
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error synchub raises on purpose."""


class RetryableError(SyncError):
    """Transient: rate limits, 5xx, timeouts, an offline connector. Retry with backoff.

    Attributes:
        retry_after: seconds the upstream asked us to wait (``Retry-After``), if it said.

    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(SyncError):
    """Retrying cannot help (bad credentials, missing scope, bad request): fix and re-run.

    Attributes:
        setting: the environment variable or parameter the operator should fix, if known.

    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        if setting and setting not in message:
            message = f"{message} (check {setting})"
        super().__init__(message)
        self.setting = setting


class NotConfiguredError(PermanentError):
    """The worker has no settings for a source it was asked to sync."""


class InvalidParamsError(PermanentError):
    """Workflow or CLI parameters do not fit the connector's parameter model."""
