"""The printed report: one table of runs, then history, time and memory details."""

from __future__ import annotations

from typing import Any

ENGINE_RUNS = (
    ("first_sync", "synchub first sync"),
    ("no_change", "synchub no-change re-sync"),
    ("one_percent", "synchub re-sync, 1% changed"),
)
NAIVE_RUNS = (
    ("first_sync", "naive first sync"),
    ("no_change", "naive no-change re-sync"),
)


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-align the first column, right-align the others."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _runs(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [(label, results["engine"][k]) for k, label in ENGINE_RUNS if k in results["engine"]]
    naive = results.get("naive") or {}
    out += [(label, naive[k]) for k, label in NAIVE_RUNS if k in naive]
    return out


def _speedups(results: dict[str, Any]) -> list[str]:
    naive = results.get("naive")
    if not naive:
        return []
    engine = results["engine"]
    parts = []
    for key, what in (("first_sync", "first sync"), ("no_change", "no-change re-sync")):
        ours = engine[key]["records_per_second"]
        theirs = naive[key]["records_per_second"]
        if theirs:
            parts.append(f"{what} {ours / theirs:,.0f}x")
    first, nfirst = engine["first_sync"], naive["first_sync"]
    per_k = 1000 * first["history"]["events"] / max(1, first["records"])
    naive_per_k = 1000 * nfirst["history"]["events"] / max(1, nfirst["records"])
    return [
        "synchub vs naive, records/s: " + ", ".join(parts),
        f"history events per 1,000 records (first sync): synchub {per_k:,.1f}, "
        f"naive {naive_per_k:,.0f}",
    ]


def _activities(acts: dict[str, Any]) -> str:
    parts = []
    for name, t in acts.items():
        parts.append(
            f"{name} {t['count']}x {t['run_seconds']:.2f}s (max {t['max_run_seconds']:.2f}s, "
            f"queued {t['queue_seconds']:.2f}s)"
        )
    return "; ".join(parts) or "-"


def _history(results: dict[str, Any]) -> list[str]:
    rows = []
    for key, label in ENGINE_RUNS:
        run = results["engine"].get(key)
        if run is None:
            continue
        sync_all = run["history"]["sync_all"]
        parts = run["history"]["partitions"]
        rows.append(
            [
                label,
                "SyncAllWorkflow",
                _n(sync_all["runs"]),
                _n(sync_all["events"]),
                _n(sync_all["bytes"] / 1024, 1),
                _n(sync_all["seconds"], 2),
            ]
        )
        events = [p["events"] for p in parts]
        rows.append(
            [
                "",
                f"SyncPartitionWorkflow x{len(parts)}",
                _n(sum(p["runs"] for p in parts)),
                f"{min(events, default=0):,}-{max(events, default=0):,} each",
                _n(sum(p["bytes"] for p in parts) / 1024, 1),
                _n(max((p["seconds"] for p in parts), default=0), 2),
            ]
        )
    for key, label in NAIVE_RUNS:
        run = (results.get("naive") or {}).get(key)
        if run is None:
            continue
        wf = run["history"]["workflow"]
        rows.append(
            [
                label,
                "BenchNaiveSyncWorkflow",
                _n(wf["runs"]),
                _n(wf["events"]),
                _n(wf["bytes"] / 1024, 1),
                _n(wf["seconds"], 2),
            ]
        )
    header = ["run", "workflow", "runs", "events", "KiB", "seconds"]
    return _table(header, rows)


def _time(results: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in ENGINE_RUNS:
        run = results["engine"].get(key)
        if run is None:
            continue
        lines.append(f"{label}: wall {run['wall_seconds']:.2f}s; {_activities(run['activities'])}")
        lines.append(f"    upstream requests: {run['upstream_requests'] or 'none'}")
    for key, label in NAIVE_RUNS:
        run = (results.get("naive") or {}).get(key)
        if run is None:
            continue
        acts = _activities(run["history"]["workflow"]["activities"])
        lines.append(f"{label}: wall {run['wall_seconds']:.2f}s; {acts}")
        lines.append(f"    upstream requests: {run['upstream_requests'] or 'none'}")
    return lines


def render(results: dict[str, Any]) -> str:
    """The human-readable report of a finished benchmark."""
    opts = results["options"]
    per_day = opts["shifts"] / opts["days"]
    lines = [
        f"synchub benchmark: {opts['shifts']:,} shifts over {opts['days']} day partitions "
        f"({per_day:,.0f}/day), simulator latency {opts['latency_ms']} ms "
        f"({opts['simulator']}), {results['host']['cpus']} CPUs, "
        f"commit {results.get('git_commit') or '?'}",
    ]
    if opts["naive_shifts"]:
        lines.append(
            f"naive baseline: {opts['naive_shifts']:,} shifts, one activity per record, "
            f"{opts['naive_concurrency']} in flight"
        )
    setup, host = results["setup"], results["host"]
    load = host.get("load_average_at_start") or [0.0]
    lines.append(
        f"setup: services up in {setup.get('stack_start_seconds', 0):.1f}s, "
        f"simulator seeded in {setup.get('seed_seconds', 0):.1f}s; "
        f"load average before the run {load[0]:.2f} (other work on the machine skews numbers)"
    )
    lines.append("")
    header = [
        "run",
        "records",
        "wall s",
        "records/s",
        "published",
        "history events",
        "history KiB",
        "peak RSS MiB",
    ]
    rows = [
        [
            label,
            _n(run["records"]),
            _n(run["wall_seconds"], 2),
            _n(run["records_per_second"]),
            _n(run["published"]),
            _n(run["history"]["events"]),
            _n(run["history"]["bytes"] / 1024, 1),
            _n(run["peak_rss_mib"], 1),
        ]
        for label, run in _runs(results)
    ]
    lines += _table(header, rows)
    speed = _speedups(results)
    if speed:
        lines += ["", *speed]
    lines += ["", "history per workflow:", *_history(results)]
    lines += ["", "where the time went:", *_time(results)]
    mem = results.get("memory", {})
    services = ", ".join(f"{k} {v:,.0f}" for k, v in mem.get("services_peak_rss_mib", {}).items())
    lines += [
        "",
        f"memory: benchmark process peak RSS {mem.get('bench_process_peak_rss_mib', 0):,.1f} MiB "
        f"(getrusage, whole run: worker, naive worker, Temporal client, readers)",
        f"        services peak RSS MiB: {services or '-'}",
        f"total {results['total_seconds']:.0f}s; processes left running: "
        f"{', '.join(results['leftover_processes']) or 'none'}",
    ]
    return "\n".join(lines)
