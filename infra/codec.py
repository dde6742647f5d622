"""Payload codec: AES-256-GCM over every Temporal payload, with key ids for rotation.

Workflow inputs, results, heartbeats and failure messages can carry personal data (an
employee's Kürzel as partition id, upstream text quoted in an error). With a key set, every
payload leaves the process encrypted, so Temporal's history (and its database, and anyone
with read access to the namespace) holds only ciphertext; the worker, the starter, schedules
and the codec server (for the Web UI) decrypt with the same keys.

Wire format of an encrypted payload (the layout of Temporal's encryption sample):

- ``metadata["encoding"] = b"binary/encrypted"``
- ``metadata["encryption-key-id"]`` = the id of the key that encrypted it
- ``metadata["encryption-cipher"] = b"AES256-GCM"``
- ``data`` = 12-byte random nonce + ciphertext of the serialized inner ``Payload`` + GCM tag;
  the key id is the associated data, so a payload relabelled with another id fails to decrypt.

Payloads without that encoding pass through decoding unchanged: history written before a key
was set stays readable.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
"""``encoding`` metadata of an encrypted payload."""
KEY_ID = "encryption-key-id"
"""Metadata entry naming the key that encrypted the payload."""
CIPHER_META = "encryption-cipher"
"""Metadata entry naming the cipher."""
CIPHER = b"AES256-GCM"
NONCE_BYTES = 12
KEYS_ENV = "SYNCHUB_CODEC_KEYS"
ACTIVE_ENV = "SYNCHUB_CODEC_ACTIVE_KEY"
DEV_KEY_ID = "dev"
"""Id of the key the embedded default generates under its state folder."""

_KEY_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CodecKeyError(ValueError):
    """A payload cannot be decrypted with the configured keys; says which key id is needed.

    Not retryable by nature: the fix is the keys in ``SYNCHUB_CODEC_KEYS``, not another try.
    """


def parse_keys(text: str) -> dict[str, bytes]:
    """Parse ``id:base64key,id2:base64key`` into key id → 32 key bytes.

    Key material never appears in the error messages.

    Raises:
        ValueError: an entry is malformed, an id repeats, or a key is not 32 bytes.

    """
    keys: dict[str, bytes] = {}
    entries = [e.strip() for e in text.split(",") if e.strip()]
    if not entries:
        raise ValueError("no keys: expected id:base64key[,id2:base64key...]")
    for n, entry in enumerate(entries, 1):
        key_id, sep, b64 = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID_RE.match(key_id):
            raise ValueError(
                f"entry {n}: expected id:base64key with an id of letters, digits, '.', '_', '-'"
            )
        if key_id in keys:
            raise ValueError(f"key id {key_id!r} appears twice")
        try:
            raw = base64.b64decode(b64.strip().encode(), altchars=b"-_", validate=False)
        except (binascii.Error, ValueError):
            raise ValueError(f"key {key_id!r} is not valid base64") from None
        if len(raw) != 32:
            raise ValueError(
                f"key {key_id!r} is {len(raw)} bytes, AES-256 needs 32 "
                "(make one with: python -c 'import os,base64;"
                "print(base64.b64encode(os.urandom(32)).decode())')"
            )
        keys[key_id] = raw
    return keys


def new_key_entry(key_id: str) -> str:
    """A fresh ``id:base64key`` entry for ``SYNCHUB_CODEC_KEYS``."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def dev_key_entry(state_dir: Path) -> str:
    """The embedded default's key: read from ``state_dir/codec.key``, created on first use.

    Persisted so that history written by an earlier ``make run`` still decodes after a
    restart; the file is readable by its owner only.
    """
    path = state_dir / "codec.key"
    if path.is_file():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    entry = new_key_entry(DEV_KEY_ID)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(entry + "\n")
    return entry


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM codec; encrypts with the active key, decrypts with any known key.

    Args:
        keys: Key id → 32 key bytes; every id that may appear in history.
        active: Id of the key new payloads are encrypted with; None writes plaintext (and
            still decrypts, or explains, encrypted payloads it meets).

    """

    def __init__(self, keys: Mapping[str, bytes], active: str | None) -> None:
        if active is not None and active not in keys:
            raise ValueError(f"active key {active!r} is not among the keys ({ACTIVE_ENV})")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self._active = active

    @property
    def active(self) -> str | None:
        """Id of the key new payloads are encrypted with (None: no encryption)."""
        return self._active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the active key (unchanged when there is none)."""
        if self._active is None:
            return list(payloads)
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads; pass plaintext ones through.

        Raises:
            CodecKeyError: the key id is unknown or its key does not decrypt the payload.

        """
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted with the active key."""
        assert self._active is not None
        key_id = self._active.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id, CIPHER_META: CIPHER},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted if it is encrypted.

        Raises:
            CodecKeyError: naming the key id and the setting to fix.

        """
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            if not self._ciphers:
                raise CodecKeyError(
                    f"payload is encrypted with key id {key_id!r} but no key is configured: "
                    f"set {KEYS_ENV} (and {ACTIVE_ENV}) to the keys the worker uses"
                )
            raise CodecKeyError(
                f"payload is encrypted with key id {key_id!r}, which is not in {KEYS_ENV} "
                f"(known ids: {', '.join(sorted(self._ciphers))}); keep retired keys there "
                "while history written with them is still read"
            )
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise CodecKeyError(
                f"payload encrypted with key id {key_id!r} does not decrypt with the key of "
                f"that id in {KEYS_ENV}: the key is wrong (or the payload was altered)"
            ) from None
        return Payload.FromString(plain)


def data_converter(
    keys: Mapping[str, bytes] | None = None, active: str | None = None
) -> DataConverter:
    """The one data converter of the worker, the starter, schedules and tests.

    Pydantic models in and out; with an active key every payload is encrypted and failure
    messages and stack traces move into an (encrypted) payload too, because they can quote
    upstream text. Without keys, payloads are plaintext, but encrypted ones met in history
    fail with a ``CodecKeyError`` that names the setting instead of undecodable bytes.
    """
    codec = EncryptionCodec(keys or {}, active)
    if active is None:
        return dataclasses.replace(pydantic_data_converter, payload_codec=codec)
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
