"""Connecting to Temporal the same way from the worker, the starter and the tests."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from infra.codec import data_converter
from infra.connections import temporal_tls
from infra.interceptors import interceptors
from infra.temporal_settings import TemporalSettings
from workflows.options import SEARCH_ATTRIBUTES

DATA_CONVERTER = data_converter()
"""How payloads are (de)serialised without a codec key: the worker, the starter, tests and the
replay test must agree, or recorded histories stop decoding. With ``SYNCHUB_CODEC_KEYS`` set,
``converter_for`` adds encryption on top of the same converter."""


def converter_for(settings: TemporalSettings) -> DataConverter:
    """The data converter for these settings: pydantic, encrypted when a codec key is set."""
    keys, active = settings.codec()
    return data_converter(keys, active) if keys else DATA_CONVERTER


class TemporalUnavailableError(RuntimeError):
    """Temporal cannot be reached; names the setting that points at it."""


async def connect(settings: TemporalSettings, runtime: Runtime | None = None) -> Client:
    """Connect with the pydantic data converter; payloads encrypted when a codec key is set.

    The client carries synchub's interceptors (tracing, metrics, Web UI summaries); a
    worker built on it inherits them. ``runtime``: the one whose metrics a process serves.

    Raises:
        TemporalUnavailableError: naming TEMPORAL_ADDRESS when nothing answers there.
    """
    try:
        return await Client.connect(
            settings.address,
            namespace=settings.namespace,
            data_converter=converter_for(settings),
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            tls=temporal_tls(settings),
            interceptors=interceptors(),
            runtime=runtime,
        )
    except RuntimeError as exc:
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {settings.address} (TEMPORAL_ADDRESS): {exc}"
        ) from None


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register synchub's search attributes where missing; return the ones added.

    Workflows upsert them, so a namespace without them would fail every run. Temporal
    Cloud does not allow this call; there they are created once in the Cloud UI.
    """
    ns = client.namespace
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=ns)
    )
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {
        name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for name in SEARCH_ATTRIBUTES
        if name not in known
    }
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=ns, search_attributes=missing)
            )
        except RPCError as exc:
            raise TemporalUnavailableError(
                f"search attributes {', '.join(missing)} are missing in namespace {ns} and "
                f"cannot be added from here ({exc.message}); add them as Keyword attributes"
            ) from None
    return sorted(missing)
