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
        if run.get("cpu_ms_by_thread"):
            lines.append(f"    worker CPU by thread: {_threads(run['cpu_ms_by_thread'])}")
    for key, label in NAIVE_RUNS:
        run = (results.get("naive") or {}).get(key)
        if run is None:
            continue
        acts = _activities(run["history"]["workflow"]["activities"])
        lines.append(f"{label}: wall {run['wall_seconds']:.2f}s; {acts}")
        lines.append(f"    upstream requests: {run['upstream_requests'] or 'none'}")
    return lines


LOOP_RUNS = (
    ("first_sync", "first sync"),
    ("no_change", "no-change re-sync"),
    ("one_percent", "1% changed"),
)


def _repeats(res: dict[str, Any]) -> int:
    """Runs per phase at one size (results before ``--repeats`` existed: 1)."""
    return int(res.get("repeats") or 1)


def _medians_note(results: dict[str, Any]) -> str:
    """Which values are medians, and of how many runs, per size."""
    parts = []
    for size, res in results["sizes"].items():
        n = _repeats(res)
        what = f"medians of {n} runs" if n > 1 else "1 run"
        parts.append(f"{int(size):,} shifts: {what}")
    return (
        "values (wall, records/s, CPU, ratios) are per phase and side: "
        + "; ".join(parts)
        + " (each first sync from emptied Redis state, each 1% run with a fresh 1% changed; "
        "peak RSS is the highest of the runs; every run's numbers are in the JSON's 'runs')"
    )


def _each_wall(run: dict[str, Any]) -> str:
    """The wall seconds of every repetition, in order ("-" for a single run)."""
    runs = run.get("runs") or []
    if len(runs) < 2:
        return "-"
    return " ".join(f"{r['wall_seconds']:.2f}" for r in runs)


def _side_by_side(results: dict[str, Any]) -> list[str]:
    """The headline: per-record loop vs synchub at every size, ratio of records/s."""
    rows = []
    for size, res in results["sizes"].items():
        loop = res.get("loop") or {}
        for key, label in LOOP_RUNS:
            ours = res["engine"].get(key)
            theirs = loop.get(key)
            if ours is None:
                continue
            ratio = (
                ours["records_per_second"] / theirs["records_per_second"]
                if theirs and theirs["records_per_second"]
                else None
            )
            rows.append(
                [
                    f"{int(size):,} shifts, {label}",
                    _n(theirs and theirs["records_per_second"]),
                    _n(ours["records_per_second"]),
                    "-" if ratio is None else f"{ratio:,.1f}x",
                    _n(theirs and theirs["wall_seconds"], 2),
                    _n(ours["wall_seconds"], 2),
                    _n(_repeats(res)),
                ]
            )
    header = ["", "loop rec/s", "synchub rec/s", "ratio", "loop wall s", "synchub wall s", "runs"]
    return _table(header, rows)


def _cost(results: dict[str, Any]) -> list[str]:
    """CPU per record, peak RSS and history size of the worker at every size."""
    rows = []
    for size, res in results["sizes"].items():
        engine, loop = res["engine"], res.get("loop") or {}
        first, same = engine.get("first_sync"), engine.get("no_change")
        peaks = [r["peak_rss_mib"] for r in engine.values() if r.get("peak_rss_mib") is not None]
        events = first["history"]["events"] if first else None
        rows.append(
            [
                f"{int(size):,}",
                _n(first and first["cpu_us_per_record"], 1),
                _n(same and same["cpu_us_per_record"], 1),
                _n((loop.get("first_sync") or {}).get("cpu_us_per_record"), 1),
                _n((loop.get("no_change") or {}).get("cpu_us_per_record"), 1),
                _n(max(peaks) if peaks else None, 1),
                _n(1000 * events / max(1, first["records"]), 1) if first and events else "-",
            ]
        )
    header = [
        "shifts",
        "synchub CPU us/new",
        "us/unchanged",
        "loop CPU us/new",
        "us/unchanged",
        "worker peak RSS MiB",
        "history events/1k",
    ]
    return _table(header, rows)


def _threads(ms: dict[str, float]) -> str:
    """``cpu_ms_by_thread`` as text: "event loop 33.1 ms, Temporal core 16.3 ms, ..."."""
    return ", ".join(f"{name} {v:.1f} ms" for name, v in ms.items())


def _fixed_cost(results: dict[str, Any]) -> list[str]:
    """The measured fixed cost of a run and what it alone costs per record at each size."""
    fixed = results.get("fixed_cost") or {}
    run = fixed.get("no_change")
    if not run:
        return []
    ms = 1000 * run["cpu_seconds"]
    days = results["options"]["days"]
    per = ", ".join(f"{1000 * ms / int(size):.1f} us at {int(size):,}" for size in results["sizes"])
    split = f" ({_threads(run['cpu_ms_by_thread'])})" if run.get("cpu_ms_by_thread") else ""
    lines = [
        f"fixed cost, measured: a no-change run of {fixed['shifts']:,} shifts over {days} "
        f"partitions takes {ms:.0f} ms of worker CPU (median of {run.get('repeats', 1)})"
        f"{split}"
    ]
    if per:
        lines.append(f"    that alone, per record: {per} shifts")
    return lines


def _marginal(results: dict[str, Any]) -> list[str]:
    """CPU per record beyond a run's fixed cost, from the smallest and largest size.

    A run costs a fixed amount whatever its size (workflow starts and completions, a
    request and a few Redis calls per partition, the topic check) plus an amount per
    record; the difference between two sizes divided by the difference in records is the
    latter, and what it leaves at the small size is the former.
    """
    sizes = sorted(results["sizes"], key=int)
    if len(sizes) < 2:
        return []
    small, big = int(sizes[0]), int(sizes[-1])
    parts, fixed = [], []
    for key, what in (("first_sync", "new"), ("no_change", "unchanged")):
        a = results["sizes"][sizes[0]]["engine"].get(key)
        b = results["sizes"][sizes[-1]]["engine"].get(key)
        if not a or not b:
            continue
        per = (b["cpu_seconds"] - a["cpu_seconds"]) / (big - small)
        parts.append(f"{1e6 * per:.1f} us per {what} record")
        rest = 1000 * (a["cpu_seconds"] - per * small)
        # below zero only by noise (the large size cost more per record than the small)
        fixed.append(f"{rest:.0f} ms ({what})" if rest >= 0 else f"~0 ms ({what})")
    if not parts:
        return []
    return [
        f"beyond a run's fixed cost (from {small:,} to {big:,} shifts): {', '.join(parts)}; "
        f"fixed cost per run: {', '.join(fixed)}"
    ]


def render(results: dict[str, Any]) -> str:
    """The human-readable report of a finished benchmark."""
    opts = results["options"]
    sizes = ", ".join(f"{n:,}" for n in opts["sizes"])
    lines = [
        f"synchub benchmark: {sizes} shifts over {opts['days']} day partitions, simulator "
        f"latency {opts['latency_ms']} ms ({opts['simulator']}), {results['host']['cpus']} "
        f"CPUs, commit {results.get('git_commit') or '?'}",
        "baseline: the per-record loop users run today (slot_sync's: one GET for the window, "
        "then per shift Redis GET, md5 compare, SETEX, produce + flush; no Temporal)",
    ]
    if opts["naive_shifts"]:
        lines.append(
            f"naive baseline: {opts['naive_shifts']:,} shifts, one activity per record, "
            f"{opts['naive_concurrency']} in flight"
        )
    setup, host = results["setup"], results["host"]
    load = host.get("load_average_at_start") or [0.0]
    seeds = ", ".join(f"{int(k):,}: {v:.1f}s" for k, v in setup.get("seed_seconds", {}).items())
    lines.append(
        f"setup: services up in {setup.get('stack_start_seconds', 0):.1f}s, "
        f"simulator seeded in {seeds or '-'}; load average before the run {load[0]:.2f} "
        "(other work on the machine skews absolute numbers: compare ratios within one run)"
    )
    lines.append(_medians_note(results))
    lines += ["", *_side_by_side(results)]
    lines += [
        "",
        "worker cost (CPU = benchmark process CPU time over the run / records, median of the "
        "runs; it hosts the worker; RSS = its peak during the runs of that size):",
        *_cost(results),
        *_marginal(results),
        *_fixed_cost(results),
    ]
    for size, res in results["sizes"].items():
        n = _repeats(res)
        runs = f" (medians of {n} runs)" if n > 1 else ""
        lines += ["", f"---- {int(size):,} shifts{runs} ----"]
        header = [
            "run",
            "records",
            "wall s",
            "records/s",
            "CPU us/rec",
            "published",
            "history events",
            "history KiB",
            "peak RSS MiB",
            "wall s, each run",
        ]
        rows = [
            [
                label,
                _n(run["records"]),
                _n(run["wall_seconds"], 2),
                _n(run["records_per_second"]),
                _n(run.get("cpu_us_per_record"), 1),
                _n(run["published"]),
                _n(run["history"]["events"]),
                _n(run["history"]["bytes"] / 1024, 1),
                _n(run["peak_rss_mib"], 1),
                _each_wall(run),
            ]
            for label, run in _runs(res)
        ]
        for key, label in LOOP_RUNS:
            run = (res.get("loop") or {}).get(key)
            if run is not None:
                rows.append(
                    [
                        f"loop {label}",
                        _n(run["records"]),
                        _n(run["wall_seconds"], 2),
                        _n(run["records_per_second"]),
                        _n(run["cpu_us_per_record"], 1),
                        _n(run["published"]),
                        "-",
                        "-",
                        _n(run["peak_rss_mib"], 1),
                        _each_wall(run),
                    ]
                )
        lines += _table(header, rows)
        speed = _speedups(res)
        if speed:
            lines += ["", *speed]
        lines += ["", "history per workflow:", *_history(res)]
        median = " (the run of median wall time)" if n > 1 else ""
        lines += ["", f"where the time went{median}:", *_time(res)]
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


# ---- Advoware scenario -------------------------------------------------------------------------

ADVOWARE_RUNS = (
    ("first_sync", "synchub first sync"),
    ("no_change", "synchub no-change re-sync"),
)


def _advoware_runs(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    engine = results.get("engine") or {}
    return [(label, engine[k]) for k, label in ADVOWARE_RUNS if k in engine]


def _advoware_history(results: dict[str, Any]) -> list[str]:
    rows = []
    for label, run in _advoware_runs(results):
        hist = run["history"]
        sync_all, parts, one = hist["sync_all"], hist["partitions"], hist["partition_example"]
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
        rows.append(
            [
                "",
                f"SyncPartitionWorkflow x{parts['count']}",
                _n(parts["runs"]),
                f"{parts['events_min']:,}-{parts['events_max']:,} each",
                _n(parts["bytes"] / 1024, 1),
                f"{parts['seconds_mean']:.2f} avg, {parts['seconds_max']:.2f} max",
            ]
        )
        if one is not None:
            rows.append(
                [
                    "",
                    f"  e.g. {one['workflow_id']}",
                    _n(one["runs"]),
                    _n(one["events"]),
                    _n(one["bytes"] / 1024, 1),
                    _n(one["seconds"], 2),
                ]
            )
    return _table(["run", "workflow", "runs", "events", "KiB", "seconds"], rows)


def _ms(seconds: float, count: int) -> str:
    return f"{1000 * seconds / max(1, count):.0f} ms"


def _advoware_time(results: dict[str, Any]) -> list[str]:
    opts = results["options"]
    lines = []
    for label, run in _advoware_runs(results):
        acts, parts = run["activities"], run["history"]["partitions"]
        lines.append(
            f"{label}: wall {run['wall_seconds']:.2f}s vs latency floor "
            f"{run['latency_floor_seconds']:.2f}s ({run['pages']:,} pages x "
            f"{opts['latency_ms']} ms / {run['concurrency']} at once); each of the "
            f"{run['concurrency']} slots spent "
            f"{1000 * run['seconds_per_page_slot']:.0f} ms per page"
        )
        page, tasks = acts.get("sync_page"), run["workflow_tasks"]["partitions"]
        per_part = run["pages"] / max(1, parts["count"])
        if page and page["count"] and parts["count"]:
            lines.append(
                f"    a partition: {parts['seconds_mean']:.2f}s for {per_part:.0f} pages in "
                f"sequence = {1000 * parts['seconds_mean'] / per_part:.0f} ms per page: "
                f"sync_page {_ms(page['run_seconds'], page['count'])} running + "
                f"{_ms(page['queue_seconds'], page['count'])} queued; "
                f"{tasks['count'] / parts['count']:.0f} workflow tasks per partition, "
                f"{_ms(tasks['run_seconds'], tasks['count'])} running + "
                f"{_ms(tasks['queue_seconds'], tasks['count'])} queued each"
            )
        lines.append(f"    activities: {_activities(acts)}")
        each = run.get("per_employee")
        if each:  # the Temporal round trips and who pays for them: server vs worker CPU
            ms = ", ".join(f"{k} {v:.0f}" for k, v in each["cpu_ms"].items())
            lines.append(
                f"    per employee: {each['history_events']:.1f} history events, "
                f"{each['workflow_tasks']:.2f} workflow tasks, {each['activity_tasks']:.2f} "
                f"activity tasks; CPU ms: {ms}"
            )
        lines.append(f"    upstream requests: {run['upstream_requests'] or 'none'}")
        cpu = run.get("cpu_seconds") or {}
        if cpu:
            used = ", ".join(f"{k} {v:.1f}s" for k, v in cpu.items())
            busy = sum(cpu.values()) / max(run["wall_seconds"], 1e-9)
            lines.append(
                f"    CPU: {used} (= {busy:.1f} of {results['host']['cpus']} CPUs busy on average)"
            )
    return lines


def render_advoware(results: dict[str, Any]) -> str:
    """The human-readable report of a finished Advoware scenario."""
    opts, data = results["options"], results.get("data", {})
    lines = [
        f"synchub benchmark, Advoware: {opts['employees']:,} employees "
        f"({data.get('active_employees', 0):,} active) x {opts['appointments_per_employee']:,} "
        f"appointments, window {data.get('window_days', 0)} days in "
        f"{data.get('pages_per_employee', 0)} pages of {opts['page_days']} days, "
        f"simulator latency {opts['latency_ms']} ms ({opts['simulator']}), "
        f"{opts['max_concurrent']} employees at once, {results['host']['cpus']} CPUs, "
        f"commit {results.get('git_commit') or '?'}",
    ]
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
        "appointments",
        "employees",
        "pages",
        "wall s",
        "appts/s",
        "employees/s",
        "published",
        "history events",
        "history KiB",
        "peak RSS MiB",
    ]
    rows = [
        [
            label,
            _n(run["appointments"]),
            _n(run["employees"]),
            _n(run["pages"]),
            _n(run["wall_seconds"], 2),
            _n(run["appointments_per_second"]),
            _n(run["employees_per_second"], 1),
            _n(run["published"]),
            _n(run["history"]["events"]),
            _n(run["history"]["bytes"] / 1024, 1),
            _n(run["peak_rss_mib"], 1),
        ]
        for label, run in _advoware_runs(results)
    ]
    lines += _table(header, rows)
    engine = results.get("engine") or {}
    first, again = engine.get("first_sync"), engine.get("no_change")
    if first and again:
        lines += [
            "",
            f"checked: first sync published {first['distinct_keys']:,} distinct keys = the real "
            f"appointments of active employees ({data.get('system_entries', 0)} system entries "
            f"and {data.get('appointments', 0) - data.get('expected_published', 0):,} "
            f"appointments of inactive employees left out); no-change re-sync published "
            f"{again['published']}, {again['unchanged_pages']:,}/{again['pages']:,} pages "
            f"proven unchanged by digest",
        ]
    sim = results.get("simulator") or {}
    if sim:
        per_run = ", ".join(
            f"{label} {run['token_requests']}" for label, run in _advoware_runs(results)
        )
        lines.append(
            f"token requests: {per_run} (worker total {sim['worker_token_requests']}, shared by "
            f"every activity); peak requests in flight at the simulator {sim['peak_in_flight']}"
        )
    lines += ["", "history per workflow:", *_advoware_history(results)]
    lines += ["", "where the time went:", *_advoware_time(results)]
    mem = results.get("memory", {})
    services = ", ".join(f"{k} {v:,.0f}" for k, v in mem.get("services_peak_rss_mib", {}).items())
    lines += [
        "",
        f"memory: benchmark process peak RSS {mem.get('bench_process_peak_rss_mib', 0):,.1f} MiB "
        f"(getrusage, whole run: worker, Temporal client, readers)",
        f"        services peak RSS MiB: {services or '-'}",
        f"total {results['total_seconds']:.0f}s; processes left running: "
        f"{', '.join(results['leftover_processes']) or 'none'}",
    ]
    return "\n".join(lines)


# ---- TEMU scenario -----------------------------------------------------------------------------


def _temu_row(label: str, items: str, wall: float, per_s: str, t: dict[str, Any]) -> list[str]:
    active = t["requests_per_second_active"]
    return [
        label,
        items,
        _n(wall, 1),
        per_s,
        _n(t["total_requests"]),
        _n(t["requests_per_second_wall"], 1),
        _n(active, 1),
        f"{t['limit_qps']:.0f}",
        _n(t["rate_limited_4000004"]),
        _n(t["max_requests_in_1s_window"]),
    ]


def render_temu(results: dict[str, Any]) -> str:
    """The human-readable report of a finished TEMU scenario."""
    opts, setup, host = results["options"], results["setup"], results["host"]
    load = host.get("load_average_at_start") or [0.0]
    lines = [
        f"synchub benchmark, TEMU: 1 shop, {opts['orders']:,} orders, "
        f"{opts['goods']:,} goods x {opts['skus_per_goods']} SKUs "
        f"({opts['changed_share']:.0%} with a different desired stock), simulator limit "
        f"{opts['limit_qps']:.0f} QPS per app key ({opts['simulator']}), client target "
        f"{opts['limit_qps'] * (1 - opts['client_headroom']):.0f}/s, "
        f"{host['cpus']} CPUs, commit {results.get('git_commit') or '?'}",
        f"setup: services up in {setup.get('stack_start_seconds', 0):.1f}s, orders seeded in "
        f"{setup.get('seed_orders_seconds', 0):.1f}s; load average before the run {load[0]:.2f}",
        "",
    ]
    orders, inv = results.get("orders") or {}, results.get("inventory")
    first, again = orders.get("first_sync"), orders.get("no_change")
    header = [
        "run",
        "items",
        "wall s",
        "items/s",
        "TEMU requests",
        "req/s (wall)",
        "req/s (active)",
        "limit",
        "4000004",
        "max in 1 s",
    ]
    rows = []
    if first:
        rows.append(
            _temu_row(
                "orders first sync",
                f"{first['orders']:,} orders",
                first["wall_seconds"],
                _n(first["orders_per_second"], 1),
                first["temu"],
            )
        )
    if again:
        rows.append(
            _temu_row(
                "orders no-change re-sync",
                f"{again['fetched']:,} read",
                again["wall_seconds"],
                "-",
                again["temu"],
            )
        )
    reread = orders.get("reread")
    if reread:
        rows.append(
            _temu_row(
                "orders re-read, days_back=7",
                f"{reread['fetched']:,} read",
                reread["wall_seconds"],
                _n(reread["fetched"] / max(reread["wall_seconds"], 1e-9), 1),
                reread["temu"],
            )
        )
    if inv:
        rows.append(
            _temu_row(
                "inventory full",
                f"{inv['applied']:,} applied",
                inv["wall_seconds"],
                _n(inv["applied_per_second"], 1),
                inv["temu"],
            )
        )
    lines += _table(header, rows)
    lines.append("")
    if first:
        t = first["temu"]
        w = first["without_enrichment"]
        lines += [
            f"orders first sync: {first['list_calls']:,} list calls (pages of 100, newest "
            f"first, each page once) + {first['shipping_info_calls']:,} shipping-info calls "
            f"(one per new order in a shippable status: {first['shippable_orders']:,} of "
            f"{first['orders']:,} = {first['shippable_orders'] / max(1, first['orders']):.0%})",
            f"    rate-bound: {t['total_requests']:,} requests need >= "
            f"{first['rate_floor_seconds']:.0f}s at the client's {t['client_target_qps']:.0f}/s "
            f"(>= {first['limit_floor_seconds']:.0f}s at the {t['limit_qps']:.0f} QPS limit); "
            f"took {first['wall_seconds']:.0f}s",
            f"    without enrichment (computed from the request counts, not measured): "
            f"{w['requests']:,} list calls ~ {w['estimated_wall_seconds']:.1f}s at the achieved "
            f"rate = {w['speedup']}x fewer requests; a lower bound, since pages are then read one "
            f"after another and per-page work (publish, Redis) no longer hides behind the limit",
            f"    checked: {first['distinct_keys']:,} distinct keys published = "
            f"{first['orders']:,} seeded, {first['duplicates']} published twice; "
            f"{first['published_with_shipping']:,} carry the address = shippable orders = "
            f"shipping-info calls",
        ]
        cpu = first.get("cpu_seconds") or {}
        if cpu:
            lines.append("    CPU: " + ", ".join(f"{k} {v:.1f}s" for k, v in cpu.items()))
    ext = orders.get("extrapolated")
    if ext:
        lines.append(
            f"EXTRAPOLATED (not measured) to {ext['orders']:,} orders: {ext['list_calls']:,} "
            f"list + {ext['shipping_info_calls']:,} shipping-info calls ~ "
            f"{ext['estimated_wall_seconds']:.0f}s ({ext['estimated_wall_seconds'] / 60:.1f} min); "
            f"without enrichment ~ {ext['estimated_wall_seconds_without_enrichment']:.0f}s "
            f"[{ext['basis']}]"
        )
    if again:
        lines.append(
            f"orders no-change re-sync from the checkpoint (with the overlap re-read): "
            f"{again['list_calls']} list call(s), "
            f"{again['fetched']} orders read, {again['published']} published"
        )
    if reread and first:
        lines.append(
            f"orders re-read of the {first['orders']:,} orders (days_back=7, measured): "
            f"{reread['list_calls']} list calls, no shipping-info calls, nothing published, "
            f"{reread['wall_seconds']:.1f}s: the list traffic of the first sync without "
            f"enrichment and without publishing"
        )
    if inv:
        lines += [
            f"inventory full: {inv['skus']:,} SKUs in {inv['batches']} batches: "
            f"{inv['stock_queries']} stock queries + {inv['stock_edits']} edits (one per "
            f"product with a change per batch: {inv['goods_with_changes']} of {inv['goods']} "
            f"products changed, some split across two batches); "
            f"{inv['applied']:,} applied = {inv['changed_skus']:,} seeded differences, "
            f"{inv['unchanged']:,} unchanged, {inv['audit_events']:,} audit events; "
            f"TEMU stock = desired for every SKU afterwards",
            f"    {inv['applied_per_second']:.1f} stock updates/s over the whole run "
            f"({inv['applied_per_second_active'] or 0:.1f}/s between the first and last TEMU "
            f"request); rate floor {inv['rate_floor_seconds']:.0f}s",
        ]
    mem = results.get("memory", {})
    services = ", ".join(f"{k} {v:,.0f}" for k, v in mem.get("services_peak_rss_mib", {}).items())
    lines += [
        "",
        f"memory: benchmark process peak RSS {mem.get('bench_process_peak_rss_mib', 0):,.1f} MiB;"
        f" services peak RSS MiB: {services or '-'}",
        f"total {results['total_seconds']:.0f}s; processes left running: "
        f"{', '.join(results['leftover_processes']) or 'none'}",
    ]
    return "\n".join(lines)
