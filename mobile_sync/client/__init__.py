"""The reference field client of the sync protocol: an offline outbox in SQLite that syncs with
Vigil when a link is up (SYNC.md §4.4). See README.md in this folder.

    client = FieldClient("~/vigil/store.sqlite3")
    client.sign_in("https://vigil.example", "officer", password)
    report_id = client.create_report({...}, attachments=[Path("photo.jpg")])   # offline
    result = client.sync()                                                     # when online
"""

from mobile_sync.client.client import (
    Account,
    AttachmentFile,
    FieldClient,
    FieldStatus,
    UnsentItem,
)
from mobile_sync.client.errors import (
    AccountSwitchRefusedError,
    DeviceRevokedError,
    FieldClientError,
    InvalidTrackError,
    MigrationError,
    NotSignedInError,
    OpTooLargeError,
    SignInError,
    StoreError,
    StoreTooNewError,
    UnknownReportError,
    UploadError,
)
from mobile_sync.client.outbox import AttentionItem, OutboxEntry
from mobile_sync.client.store import Connector, Store, connect_plain
from mobile_sync.client.sync import SyncOutcome, SyncResult, UploadOutcome
from mobile_sync.client.tracks import Fix, read_track_file
from mobile_sync.client.uploads import ResumableUpload, UploadStats

__all__ = [
    "Account",
    "AccountSwitchRefusedError",
    "AttachmentFile",
    "AttentionItem",
    "Connector",
    "DeviceRevokedError",
    "FieldClient",
    "FieldClientError",
    "FieldStatus",
    "Fix",
    "InvalidTrackError",
    "MigrationError",
    "NotSignedInError",
    "OpTooLargeError",
    "OutboxEntry",
    "ResumableUpload",
    "SignInError",
    "Store",
    "StoreError",
    "StoreTooNewError",
    "SyncOutcome",
    "SyncResult",
    "UnknownReportError",
    "UnsentItem",
    "UploadError",
    "UploadOutcome",
    "UploadStats",
    "connect_plain",
    "read_track_file",
]
