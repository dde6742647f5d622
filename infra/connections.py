"""Production connections: Kafka SASL/TLS, Redis TLS and ACL user, Temporal TLS/mTLS.

One place turns the settings into client options, so the worker, the starter and every
producer, consumer and admin client connect the same way. Secrets are read from their
``SecretStr`` only here, at the moment a client is built.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.utils import HIREDIS_AVAILABLE
from temporalio.service import TLSConfig

from infra.change_store import HiredisPacking
from infra.kafka_settings import KafkaSettings
from infra.redis_settings import RedisSettings
from infra.temporal_settings import TemporalSettings


def kafka_security(settings: KafkaSettings) -> dict[str, Any]:
    """The librdkafka options for the security settings (empty for a plaintext broker).

    Merged into every producer, consumer and admin client configuration.
    """
    conf: dict[str, Any] = {}
    if settings.security_protocol != "PLAINTEXT":
        conf["security.protocol"] = settings.security_protocol
    if settings.security_protocol.startswith("SASL_"):
        conf["sasl.mechanism"] = settings.sasl_mechanism
        conf["sasl.username"] = settings.sasl_username
        if settings.sasl_password is not None:
            conf["sasl.password"] = settings.sasl_password.get_secret_value()
    if settings.ssl_ca_file is not None:
        conf["ssl.ca.location"] = str(settings.ssl_ca_file)
    if settings.ssl_cert_file is not None:
        conf["ssl.certificate.location"] = str(settings.ssl_cert_file)
    if settings.ssl_key_file is not None:
        conf["ssl.key.location"] = str(settings.ssl_key_file)
    if settings.ssl_key_password is not None:
        conf["ssl.key.password"] = settings.ssl_key_password.get_secret_value()
    return conf


def redis_client(settings: RedisSettings) -> aioredis.Redis:
    """A Redis client for ``REDIS_URL`` with the ACL user and TLS files of the settings.

    A user or password in the URL still works; the separate settings win when both are set.
    """
    kwargs: dict[str, Any] = {}
    if settings.username is not None:
        kwargs["username"] = settings.username
    if settings.password is not None:
        kwargs["password"] = settings.password.get_secret_value()
    if settings.url.startswith("rediss://"):
        if settings.ssl_ca_file is not None:
            kwargs["ssl_ca_certs"] = str(settings.ssl_ca_file)
        if settings.ssl_cert_file is not None:
            kwargs["ssl_certfile"] = str(settings.ssl_cert_file)
        if settings.ssl_key_file is not None:
            kwargs["ssl_keyfile"] = str(settings.ssl_key_file)
    elif settings.url.startswith("redis://") and HIREDIS_AVAILABLE:
        # commands packed in C: a page's commit sends tens of thousands of arguments
        kwargs["connection_class"] = HiredisPacking
    return aioredis.Redis.from_url(settings.url, **kwargs)


def temporal_tls(settings: TemporalSettings) -> TLSConfig | bool:
    """TLS for the Temporal connection: mTLS files, an API key (implies TLS) or none."""
    files = (settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)
    if any(files) or settings.tls_server_name:
        return TLSConfig(
            server_root_ca_cert=settings.tls_ca_file.read_bytes() if settings.tls_ca_file else None,
            client_cert=settings.tls_cert_file.read_bytes() if settings.tls_cert_file else None,
            client_private_key=settings.tls_key_file.read_bytes()
            if settings.tls_key_file
            else None,
            domain=settings.tls_server_name,
        )
    return settings.tls or settings.api_key is not None
