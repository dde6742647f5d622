"""Errors of the command line itself."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command-line input; printed as is, exit code 2, before any work starts."""
