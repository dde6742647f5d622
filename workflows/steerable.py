"""The stop / pause / resume signals every per-partition workflow answers.

``SyncAllWorkflow`` forwards its own signals to its children by name, whatever their type,
so each child workflow inherits the same handlers and the state they drive from here.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.sync import RunState


class Steerable:
    """Signal handlers and the flags they set; the workflow checks them between steps."""

    def __init__(self) -> None:
        self._state = RunState.RUNNING
        self._paused = False
        self._stop = False

    async def _hold(self) -> bool:
        """Wait while paused; True when the workflow should stop instead of going on."""
        await workflow.wait_condition(lambda: not self._paused or self._stop)
        return self._stop

    @workflow.signal
    def stop(self) -> None:
        """Finish the current activity, then stop."""
        self._stop = True
        if self._state in (RunState.RUNNING, RunState.PAUSED):
            self._state = RunState.STOPPING

    @workflow.signal
    def pause(self) -> None:
        """Finish the current activity, then wait for ``resume``."""
        self._paused = True
        if self._state == RunState.RUNNING:
            self._state = RunState.PAUSED

    @workflow.signal
    def resume(self) -> None:
        """Continue after ``pause``."""
        self._paused = False
        if self._state == RunState.PAUSED:
            self._state = RunState.RUNNING
