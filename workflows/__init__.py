"""Workflows: orchestration only (no I/O, no settings, no clocks but ``workflow.now()``)."""
