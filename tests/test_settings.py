"""Settings: slot_sync's environment names, clear errors naming the variable, keyword overrides.

Reading the environment is the behaviour under test here, so these tests set variables with
pytest's ``monkeypatch`` (everywhere else settings are built from keyword arguments).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AliasChoices, SecretStr

from settings import (
    _SECTIONS,
    KafkaSettings,
    RedisSettings,
    Settings,
    SettingsError,
    SyncSettings,
    TemporalSettings,
    WiwSettings,
    load_settings,
)

GENERIC_NAMES = ("HOST", "URL", "ADDRESS", "EMAIL", "TOKEN", "PASSWORD", "NAMESPACE", "TLS")
"""Bare field names that an operator's shell or a container may well export."""


def _documented_names() -> set[str]:
    names: set[str] = set()
    for section in _SECTIONS.values():
        for field in section.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(c for c in alias.choices if isinstance(c, str))
    return names


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No synchub variable of the developer's shell leaks into these tests."""
    for name in _documented_names() | set(GENERIC_NAMES) | set(_SECTIONS):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_slot_sync_names_map_to_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SYNC_DAYS_AHEAD": "7",
        "SYNC_DAYS_PRIOR": "2",
        "SYNC_SLEEP_PERIOD_SECONDS": "10",
        "WIW_KEY": "w-token-from-slot-sync",
        "KAFKA_BROKERS": "kafka-1:9092,kafka-2:9092",
        "KAFKA_TOPIC_NAME": "shifts.v1",
        "REDIS_HOST": "cache.internal:6380",
        "EXPIRE_CACHE": "3600",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    s = load_settings()

    assert s.sync.days_ahead == 7
    assert s.sync.days_prior == 2
    assert s.sync.interval_seconds == 10
    assert s.wiw.token is not None
    assert s.wiw.token.get_secret_value() == "w-token-from-slot-sync"
    assert "w-token-from-slot-sync" not in repr(s)  # SecretStr keeps it out of logs
    assert s.wiw.configured
    assert s.kafka.brokers == "kafka-1:9092,kafka-2:9092"
    assert s.kafka.wiw_topic == "shifts.v1"
    assert s.redis.url == "redis://cache.internal:6380"  # bare host:port gets the scheme
    assert s.redis.expire_cache == 3600


def test_defaults_without_environment() -> None:
    s = load_settings()
    assert s.temporal.address == "127.0.0.1:7233"
    assert s.temporal.task_queue == "synchub"
    assert s.kafka.brokers == "127.0.0.1:9092" and s.kafka.wiw_topic == "wiw.shifts"
    assert s.redis.url == "redis://127.0.0.1:6379/0" and s.redis.expire_cache == 604_800
    assert (s.sync.days_prior, s.sync.days_ahead, s.sync.interval_seconds) == (0, 1, 60)
    assert s.wiw.token is None and not s.wiw.configured
    assert s.dev.host == "127.0.0.1" and s.dev.state_dir == Path(".synchub")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REDIS_HOST", "redis://cache:6379/3", "redis://cache:6379/3"),
        ("REDIS_HOST", "rediss://cache:6380/0", "rediss://cache:6380/0"),
        ("REDIS_URL", "cache:6379", "redis://cache:6379"),
    ],
)
def test_redis_forms(monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    monkeypatch.setenv(name, value)
    assert load_settings().redis.url == expected


def test_invalid_values_name_each_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNC_DAYS_AHEAD", "abc")
    monkeypatch.setenv("SYNC_DAYS_PRIOR", "-1")
    monkeypatch.setenv("SYNC_SLEEP_PERIOD_SECONDS", "0")
    monkeypatch.setenv("EXPIRE_CACHE", "5")
    monkeypatch.setenv("KAFKA_BROKERS", " , ")
    monkeypatch.setenv("SYNC_TIMEZONE", "Mars/Olympus_Mons")

    with pytest.raises(SettingsError) as info:
        load_settings()

    message = str(info.value)
    lines = message.splitlines()[1:]
    named = {line.strip().split(":", 1)[0] for line in lines}
    assert named == {
        "SYNC_DAYS_AHEAD",
        "SYNC_DAYS_PRIOR",
        "SYNC_SLEEP_PERIOD_SECONDS",
        "EXPIRE_CACHE",
        "KAFKA_BROKERS",
        "SYNC_TIMEZONE",
    }, message
    assert "'abc'" in message  # the operator sees what was wrong
    assert "Mars/Olympus_Mons" in message


def test_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A password inside a URL whose scheme is wrong: the error names the variable and the
    # problem, but not the password.
    monkeypatch.setenv("REDIS_HOST", "http://synchub:hunter2-redis@cache:6379/0")
    monkeypatch.setenv("WIW_KEY", "tok-super-secret")
    monkeypatch.setenv("WIW_PASSWORD", "pw-super-secret")
    monkeypatch.setenv("TEMPORAL_API_KEY", "api-super-secret")
    monkeypatch.setenv("SYNC_DAYS_AHEAD", "abc")

    with pytest.raises(SettingsError) as info:
        load_settings()

    message = str(info.value)
    assert "REDIS_HOST" in message and "SYNC_DAYS_AHEAD" in message
    for secret in ("hunter2-redis", "tok-super-secret", "pw-super-secret", "api-super-secret"):
        assert secret not in message, message
    assert "cache:6379" in message  # what is not secret still helps


@pytest.mark.parametrize("name", GENERIC_NAMES)
def test_generic_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # Field names are keyword names, never environment names: a shell's HOST or a container's
    # TOKEN must not become the dev host or the When I Work token.
    monkeypatch.setenv(name, "from-the-shell")
    monkeypatch.setenv(name.lower(), "from-the-shell")
    s = load_settings()
    assert "from-the-shell" not in s.model_dump_json()
    assert s.wiw.token is None and s.wiw.password is None and s.temporal.api_key is None


@pytest.mark.parametrize("name", sorted(_SECTIONS))
def test_section_named_variables_do_not_break_loading(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # KAFKA=..., DEV=1: the tree reads its sections, never a whole section as JSON.
    monkeypatch.setenv(name.upper(), "not json")
    s = load_settings()
    assert s.kafka.brokers == "127.0.0.1:9092" and s.dev.temporal_port == 7233


def test_keyword_overrides_without_environment() -> None:
    temporal = TemporalSettings(address="temporal.test:7233", task_queue="q-1")
    kafka = KafkaSettings(brokers="k:1", wiw_topic="t.shifts", deadletter_topic="t.dlq")
    redis = RedisSettings(url="valkey:6379", expire_cache=120)
    sync = SyncSettings(days_ahead=3, days_prior=1, interval_seconds=5)
    wiw = WiwSettings(api_url="http://sim:1", token=SecretStr("t"))

    s = load_settings(temporal=temporal, kafka=kafka, redis=redis, sync=sync, wiw=wiw)

    assert s.temporal.address == "temporal.test:7233" and s.temporal.task_queue == "q-1"
    assert s.kafka.wiw_topic == "t.shifts" and s.kafka.deadletter_topic == "t.dlq"
    assert s.redis.url == "redis://valkey:6379" and s.redis.expire_cache == 120
    assert (s.sync.days_ahead, s.sync.days_prior, s.sync.interval_seconds) == (3, 1, 5)
    assert s.wiw.configured and s.wiw.api_url == "http://sim:1"
    # the same tree without load_settings, as tests build it
    direct = Settings(temporal=temporal, kafka=kafka, redis=redis, sync=sync, wiw=wiw)
    assert direct.model_dump() == s.model_dump()


def test_keyword_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "from-env:7233")
    monkeypatch.setenv("SYNC_DAYS_AHEAD", "abc")  # invalid, but its section is overridden
    s = load_settings(sync=SyncSettings(days_ahead=4))
    assert s.sync.days_ahead == 4
    assert s.temporal.address == "from-env:7233"
    assert TemporalSettings(address="kw:1").address == "kw:1"


def test_keyword_values_are_validated() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        SyncSettings(days_ahead=-1)
    assert RedisSettings(url="h:1").url == "redis://h:1"


def test_temu_shops_errors_name_the_field_and_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TEMU_SHOPS",
        '[{"id": "us-1", "app_key": "k", "app_secret": "TOPSECRET-1"},'
        ' {"id": "us-1", "app_key": "k", "app_secret": "TOPSECRET-2", "access_token": "TOK-2"}]',
    )
    with pytest.raises(SettingsError) as caught:
        load_settings()
    text = str(caught.value)
    assert "TEMU_SHOPS[0].access_token" in text
    assert "TOPSECRET" not in text and "TOK-2" not in text


def test_temu_shops_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TEMU_SHOPS",
        '[{"id": "eu-1", "region": "eu", "app_key": "k", "app_secret": "sec-xyz",'
        ' "access_token": "t"}]',
    )
    shops = load_settings().temu.shops
    assert [s.id for s in shops] == ["eu-1"]
    assert shops[0].app_secret.get_secret_value() == "sec-xyz"
    assert "sec-xyz" not in repr(shops)
