"""How runs are shown: one progress line, the final summary."""

from __future__ import annotations

from models.sync import DryRunKeys, Progress, SyncAllResult


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
    if r.dry_run:
        lines += format_dry_run(r)
    return "\n".join(lines)


def format_dry_run(r: SyncAllResult) -> list[str]:
    """What a dry run would have done: counts, and the first keys of each kind of change."""
    would = r.would or DryRunKeys()
    lines = ["  dry run: nothing was published or committed"]
    for what, count, keys in (
        ("upsert", r.records.upserted, would.upserted),
        ("delete", r.records.deleted, would.deleted),
        ("dead-letter", r.records.dead_lettered, would.dead_lettered),
    ):
        shown = ", ".join(keys) + (", ..." if count > len(keys) else "")
        lines.append(f"  would {what} {count}" + (f": {shown}" if keys else ""))
    return lines
