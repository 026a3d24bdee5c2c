"""The device's local store: one SQLite file per (server, account, device), opened in WAL mode
with ``synchronous=FULL`` so a committed op survives a power cut.

Tables (see ``migrations.py`` for the exact schema):

- ``meta``: key/value: the account (server_url, username, device_id, token), next_device_seq,
  pull_cursor, epoch, the boot the clocks count from, the last clock exchange, sync outcome;
- ``outbox``: every op ever created here, its exact bytes, its state and the server's result;
- ``reports``: the local view: the server's record, its version, and the fields of unsent ops;
- ``attachments``: files waiting for (or done with) their resumable upload;
- ``replacement_seen``: reports re-delivered during a replacement sync.

Deleted bytes do not linger (a sealed op's ciphertext is wiped once the server applied it, see
``outbox.py``): the connection runs with ``secure_delete = ON``, so SQLite zeroes what a delete
or update frees, overflow pages on the freelist included (``FAST`` leaves those), and
:meth:`Store.truncate_wal` drops the WAL's older page images after a wipe and at every open.
``VACUUM`` would also do it, but rewrites the whole file under an exclusive lock each time.

Encryption at rest is a later issue (SQLCipher): it plugs in as a different
:data:`Connector`, which must set the key before returning the connection; nothing else here
changes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mobile_sync.client import migrations

__all__ = ["Connector", "Store", "connect_plain", "get_meta", "set_meta"]

_BUSY_TIMEOUT_MS = 30_000

#: Opens the database file. The SQLCipher seam: a connector that runs ``PRAGMA key`` first.
Connector = Callable[[Path], sqlite3.Connection]


def connect_plain(path: Path) -> sqlite3.Connection:
    """An unencrypted SQLite connection in autocommit mode (the store opens its own
    transactions), usable from the thread that holds the store's lock."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)


def get_meta(connection: sqlite3.Connection, key: str) -> str | None:
    row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(connection: sqlite3.Connection, key: str, value: str | int | None) -> None:
    if value is None:
        connection.execute("DELETE FROM meta WHERE key = ?", (key,))
    else:
        connection.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )


class Store:
    """An open store file, upgraded to the current schema (or refused: see ``migrations``)."""

    def __init__(self, path: Path | str, *, connector: Connector = connect_plain) -> None:
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        #: Attachment copies live beside the database, named by attachment id.
        self.files_dir = self.path.with_name(self.path.name + ".files")
        self._lock = threading.RLock()
        self._connection = connector(self.path)
        try:
            self._connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS:d}")
            self._connection.execute("PRAGMA secure_delete = ON")
            # Before anything writes to the file: a newer app's store is left exactly as it is.
            migrations.refuse_newer(self._connection, self.path)
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA synchronous = FULL")
            self._connection.execute("PRAGMA foreign_keys = ON")
            self.schema_version = migrations.upgrade(self._connection, self.path)
            # A crash after a wipe committed but before its WAL was truncated left old page
            # images (with the ciphertext) in the WAL: drop them now.
            self.truncate_wal()
        except BaseException:
            self._connection.close()
            raise

    def truncate_wal(self) -> bool:
        """Copy the WAL into the database and cut it to zero bytes, so the WAL keeps no older
        page images (a committed change leaves the previous version of each page it touched
        there until the WAL is reused). Best effort: False, and nothing waited for, if another
        connection is reading or writing the file; the next wipe or open tries again."""
        with self._lock:
            self._connection.execute("PRAGMA busy_timeout = 0")
            try:
                busy = self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError:
                busy = 1
            finally:
                self._connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS:d}")
            return int(busy) == 0

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all. Taken
        ``IMMEDIATE`` so two processes writing the same store queue instead of failing late.
        Never hold one across a network request."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read of several statements."""
        with self._lock:
            self._connection.execute("BEGIN")
            try:
                yield self._connection
            finally:
                self._connection.execute("COMMIT")

    def meta(self, key: str) -> str | None:
        with self.snapshot() as connection:
            return get_meta(connection, key)
