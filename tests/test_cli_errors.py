"""starter.py's answers to bad input: each names what to fix, exits 2 (or 1), no traceback.

Every case runs ``python starter.py`` as an operator would, with the setting in its
environment and Temporal pointed at a port where nothing listens: a starter that connected
(or started a run) before validating would exit 1 ("cannot reach Temporal") instead of 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from simulators.server import free_port

ROOT = Path(__file__).parents[1]
_PREFIXES = ("TEMPORAL_", "KAFKA_", "REDIS_", "SYNC_", "WIW_", "SYNCHUB_", "TEMU_", "ADVOWARE_")
SHOP = (
    '[{"id": "eu-1", "region": "eu", "app_key": "k", "app_secret": "SECRET-1",'
    ' "access_token": "TOKEN-1"}]'
)


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without synchub settings; Temporal where nothing listens."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    return {**base, "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", **extra}


def starter(env: dict[str, str], *args: str, limit: float = 60.0) -> tuple[int, str, str, float]:
    """Exit code, stdout, stderr and seconds of one ``python starter.py ARGS``."""
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=limit,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - began


def run_all(cases: list[tuple[dict[str, str], list[str]]]) -> list[tuple[int, str, str, float]]:
    """All cases at once (each is a subprocess that mostly waits)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda c: starter(c[0], *c[1]), cases))


def test_json_setting_errors_name_the_variable_without_traceback() -> None:
    values = ["notjson", "[{", '{"id": "eu-1"', SHOP.replace('"id": "eu-1", ', "")]
    results = run_all([(clean_env(TEMU_SHOPS=v), ["status", "x"]) for v in values])
    for value, (code, out, err, _) in zip(values, results, strict=True):
        assert code == 2, f"{value}: {code}\n{out}\n{err}"
        assert "TEMU_SHOPS" in err, f"{value}: {err}"
        assert "Traceback" not in err, f"{value}: {err}"
        assert len(err.splitlines()) <= 4, f"{value}: {err}"
        assert "SECRET-1" not in err and "TOKEN-1" not in err, err


def test_invalid_partitions_are_rejected_before_the_run_starts() -> None:
    cases: list[tuple[list[str], dict[str, str], list[str]]] = [
        (["run", "wiw", "--partition", "notadate"], {}, ["--partition", "notadate", "YYYY-MM-DD"]),
        (["resync", "wiw", "--partition", "2026-02-30"], {}, ["--partition", "2026-02-30"]),
        (["run", "advoware", "--partition", "AB/C"], {}, ["--partition", "Kürzel"]),
        (["run", "advoware", "--partition", " "], {}, ["--partition", "Kürzel"]),
        (
            ["run", "temu-orders", "--partition", "us-9"],
            {"TEMU_SHOPS": SHOP},
            ["--partition", "us-9", "eu-1", "TEMU_SHOPS"],
        ),
        (
            ["run", "temu-inventory", "--partition", "us-9"],
            {"TEMU_SHOPS": SHOP},
            ["--partition", "us-9", "eu-1"],
        ),
    ]
    results = run_all([(clean_env(**env), args) for args, env, _ in cases])
    for (args, _, expected), (code, out, err, _) in zip(cases, results, strict=True):
        assert code == 2, f"{args}: {code}\n{out}\n{err}"
        assert out == "", f"{args}: {out}"
        for text in expected:
            assert text in err, f"{args}: {err}"
        assert "Traceback" not in err, f"{args}: {err}"


def test_valid_partitions_pass_validation() -> None:
    # Valid partitions get as far as connecting: exit 1, "cannot reach Temporal".
    cases: list[tuple[list[str], dict[str, str]]] = [
        (["run", "wiw", "--partition", "2026-11-24"], {}),
        (["run", "advoware", "--partition", "ab"], {}),
        (["run", "temu-orders", "--partition", "eu-1"], {"TEMU_SHOPS": SHOP}),
    ]
    results = run_all([(clean_env(**env), args) for args, env in cases])
    for (args, _), (code, out, err, _) in zip(cases, results, strict=True):
        assert code == 1 and "Temporal" in err, f"{args}: {code}\n{out}\n{err}"


def test_unreachable_brokers_fail_fast_naming_kafka_brokers() -> None:
    brokers = ["nowhere:1", f"127.0.0.1:{free_port()}"]
    results = run_all([(clean_env(KAFKA_BROKERS=b), ["watch", "wiw.shifts"]) for b in brokers])
    for value, (code, out, err, seconds) in zip(brokers, results, strict=True):
        assert code == 1, f"{value}: {code}\n{out}\n{err}"
        assert "KAFKA_BROKERS" in err and value in err, f"{value}: {err}"
        assert "Traceback" not in err, f"{value}: {err}"
        assert len(err.splitlines()) <= 2, f"{value}: no librdkafka flood: {err}"
        assert seconds < 25, f"{value}: took {seconds:.1f} s"


def test_dry_run_is_refused_where_partitions_act() -> None:
    # TEMU inventory's partitions update stock at TEMU: there is nothing "dry" to run.
    code, out, err, _ = starter(
        clean_env(TEMU_SHOPS=SHOP), "run", "temu-inventory", "--dry-run", "--param", "mode=full"
    )
    assert code == 2 and out == "", f"{code}\n{out}\n{err}"
    assert "--dry-run" in err and "temu-inventory" in err and "Traceback" not in err, err


def test_worker_with_unreachable_brokers_fails_fast_naming_kafka_brokers(
    temporal_address: str, redis_url: str
) -> None:
    # Temporal and Redis are reachable: only the brokers are wrong.
    env = {
        **clean_env(KAFKA_BROKERS="nowhere:1", REDIS_HOST=redis_url),
        "TEMPORAL_ADDRESS": temporal_address,
    }
    env["TEMPORAL_TASK_QUEUE"] = f"nowhere-{time.monotonic_ns()}"
    began = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=40,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else str(exc.stderr)
        raise AssertionError(f"worker still running after 40 s:\n{err[-1500:]}") from None
    assert proc.returncode == 1, proc.stderr
    assert "KAFKA_BROKERS" in proc.stderr and "nowhere:1" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "rdkafka" not in proc.stderr, proc.stderr
    assert time.monotonic() - began < 25
