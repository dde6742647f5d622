"""The embedded Temporal dev server writes its SQLite history without an fsync per commit.

Issue 11: a sync-all run's workflow tasks run one after another, and each one's
``RespondWorkflowTaskCompleted`` (and every child start and close recorded on the parent)
is a SQLite transaction on the dev server. In SQLite's default rollback-journal mode every
commit syncs the file to disk twice, so the fan-out waited on the disk: 261 unchanged
employees took 19-27 s (0.3-0.4 parent workflow tasks per employee more than needed,
because slow commits split what one task could have batched). ``DevStack`` starts the
server in WAL mode with ``synchronous=NORMAL``: commits append to the write-ahead log and
only checkpoints sync, which survives a crash of the server process (a power loss may drop
the last commits, acceptable for a development store).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from devstack.services import TEMPORAL, DevStack


def test_the_dev_server_history_is_in_wal_mode(stack: DevStack) -> None:
    # journal_mode=WAL is stored in the database file itself: read it back from there
    with sqlite3.connect(f"file:{stack.temporal_db}?mode=ro", uri=True) as db:
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"


def test_the_dev_server_does_not_sync_every_commit(stack: DevStack) -> None:
    # synchronous is per connection: only the server's command line shows it
    pid = stack.processes[TEMPORAL].pid
    assert pid is not None
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    given = {argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--sqlite-pragma"}
    assert "synchronous=NORMAL" in given
