"""How runs are shown: one progress line, the final summary."""

from __future__ import annotations

from models.sync import Progress, SyncAllResult


def format_progress(p: Progress) -> str:
    """One status line."""
    parts, recs = p.partitions, p.records
    return (
        f"{p.source} {p.state.value}: partitions {parts.done}/{parts.total} done, "
        f"{parts.running} running, {parts.pending} pending, {parts.failed} failed, "
        f"{parts.skipped} skipped | records fetched {recs.fetched}, unchanged {recs.unchanged}, "
        f"upserted {recs.upserted}, deleted {recs.deleted}, dead-lettered {recs.dead_lettered}"
    )


def format_result(r: SyncAllResult) -> str:
    """Final summary, including why partitions failed."""
    lines = [
        format_progress(
            Progress(source=r.source, state=r.state, partitions=r.partitions, records=r.records)
        )
    ]
    lines.append(f"  pages {r.pages} ({r.unchanged_pages} proven unchanged by digest)")
    lines += [f"  failed {e.partition}: {e.error}" for e in r.failed]
    lines += [f"  notice: {n}" for n in r.notices]
    if r.records.republished:
        lines.append(f"  republished (cache void, same event ids): {r.records.republished}")
    if r.skipped:
        lines.append(f"  skipped (already running elsewhere): {', '.join(r.skipped)}")
    lines += [f"  warning: {w}" for w in r.warnings]
    return "\n".join(lines)
