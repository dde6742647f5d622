"""Payload codec: personal data never reaches Temporal's history in plaintext.

The end-to-end test syncs Advoware calendars (an employee's Kürzel is the partition id, one
employee's calendar refusal is quoted in a failure message) through a worker whose client
encrypts, then reads the raw history from the server with a client WITHOUT the codec and
searches its bytes. The same search over the decoded history finds the values, so the test
can fail. Keys, rotation and errors are checked on the codec itself and through Temporal.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, ScheduleActionStartWorkflow, WorkflowHistory

from infra.codec import CodecKeyError, EncryptionCodec, data_converter, parse_keys
from infra.schedules import ScheduleDef, apply_schedules
from infra.temporal import converter_for
from models.sync import SyncAllInput, SyncAllResult
from settings import Settings, SettingsError, TemporalSettings, load_settings
from simulators.advoware import AdvowareState, make_sim_app
from simulators.advoware.dev import local_advoware_settings
from simulators.server import ThreadedServer
from tests.helpers import Engine, make_settings, read, running_engine
from workflows.options import partition_workflow_id
from workflows.sync_all import SyncAllWorkflow

OK_KUERZEL = "ZQXJ"
REFUSED_KUERZEL = "QWVK"
SECRET_TEXT = "Mandantengespräch Quappenmeyer Scheidung"


def b64key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def keys_setting(**keys: str) -> SecretStr:
    return SecretStr(",".join(f"{k}:{v}" for k, v in keys.items()))


# -- keys and settings ------------------------------------------------------------------------


def test_key_format_errors_name_the_variable_and_hide_the_key(monkeypatch) -> None:
    short = base64.b64encode(b"x" * 16).decode()
    monkeypatch.setenv("SYNCHUB_CODEC_KEYS", f"k1:{short}")
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    assert "SYNCHUB_CODEC_KEYS" in text and "16 bytes" in text and "32" in text
    assert short not in text

    good = b64key()
    monkeypatch.setenv("SYNCHUB_CODEC_KEYS", f"k1:{good},k2:{b64key()}")
    with pytest.raises(SettingsError, match=r"SYNCHUB_CODEC_ACTIVE_KEY.*name the active one"):
        load_settings()
    monkeypatch.setenv("SYNCHUB_CODEC_ACTIVE_KEY", "k3")
    with pytest.raises(SettingsError, match=r"SYNCHUB_CODEC_ACTIVE_KEY.*'k3' is not a key id"):
        load_settings()
    monkeypatch.setenv("SYNCHUB_CODEC_ACTIVE_KEY", "k2")
    keys, active = load_settings().temporal.codec()
    assert active == "k2" and set(keys) == {"k1", "k2"} and keys["k1"] == base64.b64decode(good)

    with pytest.raises(ValueError, match="expected id:base64key"):
        parse_keys(good)  # no id
    with pytest.raises(ValueError, match="appears twice"):
        parse_keys(f"a:{good},a:{good}")


def test_one_key_is_active_without_naming_it() -> None:
    settings = TemporalSettings(codec_keys=keys_setting(only=b64key()))
    assert settings.codec()[1] == "only"
    assert TemporalSettings().codec() == ({}, None)


@pytest.mark.asyncio(loop_scope="session")
async def test_roundtrip_rotation_and_clear_errors() -> None:
    old, new = os.urandom(32), os.urandom(32)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"kuerzel":"ZQXJ"}')
    writer_old = EncryptionCodec({"old": old}, "old")
    [sealed_old] = await writer_old.encode([plain])
    assert b"ZQXJ" not in sealed_old.SerializeToString()
    assert sealed_old.metadata["encryption-key-id"] == b"old"

    # rotation: a new active key, the old one kept for reading
    rotated = EncryptionCodec({"old": old, "new": new}, "new")
    [sealed_new] = await rotated.encode([plain])
    assert sealed_new.metadata["encryption-key-id"] == b"new"
    assert await rotated.decode([sealed_old, sealed_new, plain]) == [plain, plain, plain]

    # the old key retired too early
    with pytest.raises(CodecKeyError, match="key id 'old', which is not in SYNCHUB_CODEC_KEYS"):
        await EncryptionCodec({"new": new}, "new").decode([sealed_old])
    # same id, wrong key material
    with pytest.raises(CodecKeyError, match="does not decrypt with the key of that id"):
        await EncryptionCodec({"old": new}, "old").decode([sealed_old])
    # no key at all
    with pytest.raises(CodecKeyError, match="no key is configured: set SYNCHUB_CODEC_KEYS"):
        await EncryptionCodec({}, None).decode([sealed_old])
    # relabelled payload: the key id is authenticated
    forged = Payload()
    forged.CopyFrom(sealed_old)
    forged.metadata["encryption-key-id"] = b"new"
    with pytest.raises(CodecKeyError, match="does not decrypt"):
        await rotated.decode([forged])


# -- through Temporal -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[AdvowareState, ThreadedServer]]:
    state, app = make_sim_app()
    server = ThreadedServer(app).start()
    yield state, server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def engine(sim, temporal_address, kafka_brokers, redis_url) -> AsyncIterator[Engine]:
    state, server = sim
    settings = make_settings(
        temporal_address=temporal_address,
        kafka_brokers=kafka_brokers,
        redis_url=redis_url,
        redis_db=5,
        advoware=local_advoware_settings(state, server.url, days_back=5, days_ahead=20),
    )
    old = keys_setting(old=b64key())
    settings.temporal.codec_keys = old
    client = await Client.connect(temporal_address, data_converter=converter_for(settings.temporal))
    async with running_engine(client, settings, settings.kafka.advoware_topic) as eng:
        yield eng


def seed_calendars(state: AdvowareState) -> int:
    state.seed(0, 0, datetime.now().date(), datetime.now().date(), seed=1)
    state.add_employee(OK_KUERZEL, name="Quappenmeyer")
    state.add_employee(REFUSED_KUERZEL, name="Vogelkind")
    start = datetime.now().replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=1)
    frnr = state.add(OK_KUERZEL, start, start + timedelta(hours=1), text=SECRET_TEXT)
    state.set_knobs(fail_kuerzel=[REFUSED_KUERZEL], fail_kuerzel_status=403)
    return frnr


async def run(client: Client, eng: Engine) -> tuple[str, SyncAllResult]:
    wid = f"syncall/advoware/codec-{uuid.uuid4().hex[:8]}"
    result = await client.execute_workflow(
        SyncAllWorkflow.run,
        SyncAllInput(source="advoware"),
        id=wid,
        task_queue=eng.settings.temporal.task_queue,
    )
    return wid, result


async def raw_histories(client: Client, wid: str) -> dict[str, WorkflowHistory]:
    ids = [wid, *(partition_workflow_id("advoware", k) for k in (OK_KUERZEL, REFUSED_KUERZEL))]
    return {i: await client.get_workflow_handle(i).fetch_history() for i in ids}


def history_bytes(history: WorkflowHistory) -> bytes:
    # Workflow ids are Temporal's index, not payloads, and cannot be encrypted: the partition
    # workflow id sync/advoware/<Kürzel> is the one place a Kürzel stays readable (README).
    raw = b"".join(e.SerializeToString() for e in history.events)
    for k in (OK_KUERZEL, REFUSED_KUERZEL):
        raw = raw.replace(partition_workflow_id("advoware", k).encode(), b"<workflow-id>")
    return raw


async def decoded_bytes(history: WorkflowHistory, converter) -> bytes:
    out = []
    for event in history.events:
        for payloads in _payload_lists(event):
            for p in await converter.payload_codec.decode(list(payloads)):
                out.append(p.data)
        for failure in _failures(event):
            await converter.decode_failure(failure)
            out.append(failure.SerializeToString())
    return b"".join(out)


def _payload_lists(event):
    for attr in (
        "workflow_execution_started_event_attributes",
        "activity_task_scheduled_event_attributes",
        "activity_task_completed_event_attributes",
        "start_child_workflow_execution_initiated_event_attributes",
        "child_workflow_execution_completed_event_attributes",
        "workflow_execution_completed_event_attributes",
    ):
        if event.HasField(attr):
            section = getattr(event, attr)
            for name in ("input", "result"):
                if hasattr(section, name) and getattr(section, name).payloads:
                    yield getattr(section, name).payloads


def _failures(event):
    for attr in (
        "activity_task_failed_event_attributes",
        "child_workflow_execution_failed_event_attributes",
        "workflow_execution_failed_event_attributes",
    ):
        if event.HasField(attr):
            yield getattr(event, attr).failure


@pytest.mark.asyncio(loop_scope="session")
async def test_history_holds_no_plaintext_and_rotation_keeps_it_readable(sim, engine) -> None:
    state, _ = sim
    frnr = seed_calendars(state)
    wid, result = await run(engine.client, engine)
    assert result.partitions.done == 1 and len(result.failed) == 1, result
    assert REFUSED_KUERZEL in result.failed[0].error  # the quoted upstream text, decoded
    await read(engine.topic, expect=1)

    plain_client = await Client.connect(engine.settings.temporal.address)  # no codec at all
    histories = await raw_histories(plain_client, wid)
    secrets = [OK_KUERZEL, REFUSED_KUERZEL, SECRET_TEXT, "Quappenmeyer", str(frnr)]
    for wf, history in histories.items():
        raw = history_bytes(history)
        assert len(history.events) > 3
        for secret in secrets:
            assert secret.encode() not in raw, f"{secret!r} in plaintext in the history of {wf}"
        assert b"binary/encrypted" in raw

    # the same search over the decoded history finds them: the raw search above can fail
    converter = converter_for(engine.settings.temporal)
    decoded = b"".join([await decoded_bytes(h, converter) for h in histories.values()])
    assert OK_KUERZEL.encode() in decoded and REFUSED_KUERZEL.encode() in decoded

    # rotation: a new active key; runs written with the old key still read and replay
    old = engine.settings.temporal.codec_keys.get_secret_value()
    rotated = TemporalSettings(
        address=engine.settings.temporal.address,
        codec_keys=SecretStr(f"{old},new:{b64key()}"),
        codec_active_key="new",
    )
    reader = await Client.connect(rotated.address, data_converter=converter_for(rotated))
    again = await reader.get_workflow_handle(wid, result_type=SyncAllResult).result()
    assert again.failed[0].error == result.failed[0].error and again.state == result.state

    # wrong or missing key: a clear error, not garbage
    wrong = TemporalSettings(codec_keys=SecretStr(f"old:{b64key()}"))
    stranger = await Client.connect(rotated.address, data_converter=converter_for(wrong))
    with pytest.raises(CodecKeyError, match="key id 'old' does not decrypt"):
        await stranger.get_workflow_handle(wid).result()
    keyless = await Client.connect(rotated.address, data_converter=data_converter())
    with pytest.raises(CodecKeyError, match="set SYNCHUB_CODEC_KEYS"):
        await keyless.get_workflow_handle(wid).result()


@pytest.mark.asyncio(loop_scope="session")
async def test_schedules_store_encrypted_inputs(temporal_address) -> None:
    tag = uuid.uuid4().hex[:8]
    temporal = TemporalSettings(
        address=temporal_address, task_queue=f"codec-{tag}", codec_keys=keys_setting(s=b64key())
    )
    client = await Client.connect(temporal_address, data_converter=converter_for(temporal))
    sid = f"codec-test-{tag}"
    definition = ScheduleDef(sid, "advoware", timedelta(hours=6), params={"days_back": 3})
    await apply_schedules(client, Settings(temporal=temporal), [definition])
    handle = client.get_schedule_handle(sid)
    try:
        desc = await handle.describe()
        raw = desc.raw_description.schedule.action.start_workflow.input.payloads
        assert raw and all(p.metadata["encoding"] == b"binary/encrypted" for p in raw)
        assert b"days_back" not in b"".join(p.SerializeToString() for p in raw)
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        [arg] = await converter_for(temporal).decode(action.args, [SyncAllInput])
        assert arg.source == "advoware" and arg.params == {"days_back": 3}
    finally:
        await handle.delete()
