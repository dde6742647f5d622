"""The soak table: one row per source, and the first violation of each kind."""

from __future__ import annotations

from soak.harness import EXPIRE_CACHE_SECONDS, SoakResult, weekly


def table(results: list[SoakResult]) -> str:
    """The table of every source, then its settings and first violations.

    Columns: ticks, runs, failed runs, live records, messages, lookups per run (median of
    the first period, of all ticks, of the last period), Redis keys and KiB (peak of the
    first and of the last period; bytes also per live record), ticks with a violation, real
    seconds.
    """
    head = (
        f"{'source':<9} {'ticks':>5} {'runs':>5} {'fail':>4} {'live':>7} {'msgs':>8} "
        f"{'lookups/run f/med/l':>21} {'redis keys f/l':>15} {'redis KiB f/l':>17} "
        f"{'B/live f/l':>11} "
        f"{'viol':>4} {'real s':>6}"
    )
    lines = [head, "-" * len(head)]
    for res in results:
        rows = res.rows
        period = res.period
        first, med, last = weekly(rows, period)
        end = rows[-1].day if rows else 0.0
        early = [r for r in rows if r.day < period] or rows[:1]
        late = [r for r in rows if r.day > end - period] or rows[-1:]
        keys = (
            max((r.redis_keys for r in early), default=0),
            max((r.redis_keys for r in late), default=0),
        )
        per_live = (
            max((r.redis_bytes / max(r.live, 1) for r in early), default=0),
            max((r.redis_bytes / max(r.live, 1) for r in late), default=0),
        )
        kib = (
            max((r.redis_bytes for r in early), default=0) / 1024,
            max((r.redis_bytes for r in late), default=0) / 1024,
        )
        lines.append(
            f"{res.source:<9} {len(rows):>5} {sum(r.runs for r in rows):>5} "
            f"{sum(r.failed_runs for r in rows):>4} {rows[-1].live if rows else 0:>7} "
            f"{res.messages:>8} {f'{first:.0f}/{med:.0f}/{last:.0f}':>21} "
            f"{f'{keys[0]}/{keys[1]}':>15} {f'{kib[0]:,.0f}/{kib[1]:,.0f}':>17} "
            f"{f'{per_live[0]:.0f}/{per_live[1]:.0f}':>11} "
            f"{sum(res.counts.values()):>4} {res.seconds:>6.0f}"
        )
    lines.append("")
    for res in results:
        p = res.profile
        lines.append(
            f"{res.source}: {p.days:g} simulated days, tick {p.tick_hours:g} h, period "
            f"{res.period:g} days, {res.kills} worker kills, {res.overlaps} overlapping ticks, "
            f"{res.duplicates} duplicate deliveries (same event_id), Redis TTL one "
            f"simulated week (EXPIRE_CACHE {EXPIRE_CACHE_SECONDS} s real)"
        )
        if res.stopped_early:
            lines.append(f"  stopped early: {res.stopped_early}")
        for v in res.violations:
            lines.append(f"  {v}  [{res.counts[v.kind]} ticks]")
        if not res.violations:
            lines.append("  no violations")
    return "\n".join(lines)
