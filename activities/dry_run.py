"""What a dry run reports instead of publishing: the first keys a plan would have changed."""

from __future__ import annotations

from activities.plan import Plan
from models.sync import MAX_DRY_RUN_KEYS, DryRunKeys


def would_change(plan: Plan) -> DryRunKeys:
    """The first keys ``plan`` would upsert, delete and dead-letter (its counts say how many).

    A malformed record without a readable id is named ``?``: the dead-letter topic would
    still get it, with the reason.
    """
    return DryRunKeys(
        upserted=list(plan.upserts)[:MAX_DRY_RUN_KEYS],
        deleted=list(plan.deletes)[:MAX_DRY_RUN_KEYS],
        dead_lettered=[m.key or "?" for m in plan.dead_letters[:MAX_DRY_RUN_KEYS]],
    )
