"""deploy/monitoring names only metrics synchub exports (a renamed metric silences an alert)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def exported() -> set[str]:
    """Instrument names created in synchub's code (counters get ``_total`` in Prometheus)."""
    names: set[str] = set()
    for path in [*(ROOT / "infra").glob("*.py"), *(ROOT / "workflows").glob("*.py")]:
        names |= set(re.findall(r'"(synchub_[a-z0-9_]+)"', path.read_text()))
    return names


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_alerts_and_dashboard_use_exported_metrics() -> None:
    known = exported()
    alerts = (MONITORING / "alerts.yml").read_text()
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set(re.findall(r"synchub_[a-z0-9_]+", alerts + "\n".join(exprs)))
    assert used, "no synchub metric referenced"
    unknown = sorted(n for n in used if base(n) not in known and n not in known)
    assert not unknown, f"not exported by synchub: {unknown}"
    for needed in ("synchub_last_success_timestamp_seconds", "synchub_skipped_runs_total"):
        assert needed in alerts
    assert 'outcome="dead_lettered"' in alerts
