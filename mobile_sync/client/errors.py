"""What can go wrong on the device, as exceptions the CLI and an app can show as they are.

FieldClientError
├── StoreError                    the local store cannot be used
│   ├── MigrationError                a schema upgrade failed; the store was left as it was
│   └── StoreTooNewError              written by a newer app; this one refuses to touch it
├── NotSignedInError              no account yet: ``vigil field init``
├── AccountSwitchRefusedError     another account still has unsent work in this store
├── DeviceRevokedError            the server revoked this device; only status and wipe work
├── SignInError                   sign-in or device registration was refused
├── OpTooLargeError               an operation would not fit in any push batch
├── UnknownReportError            no such report on this device (or HQ removed it)
├── InvalidTrackError             GPS fixes (or a GPX/GeoJSON file) the server could not take
└── UploadError                   an attachment upload gave up (carries the HTTP status/code)
"""

from __future__ import annotations

__all__ = [
    "AccountSwitchRefusedError",
    "DeviceRevokedError",
    "FieldClientError",
    "InvalidTrackError",
    "MigrationError",
    "NotSignedInError",
    "OpTooLargeError",
    "SignInError",
    "StoreError",
    "StoreTooNewError",
    "UnknownReportError",
    "UploadError",
]


class FieldClientError(Exception):
    """Base of every error the field client raises on purpose."""


class StoreError(FieldClientError):
    pass


class MigrationError(StoreError):
    """A schema migration failed. The store is at the version it had before (each migration runs
    in one transaction) and a backup copy was taken first; nothing was cleared."""


class StoreTooNewError(StoreError):
    pass


class NotSignedInError(FieldClientError):
    pass


class AccountSwitchRefusedError(FieldClientError):
    pass


class DeviceRevokedError(FieldClientError):
    pass


class SignInError(FieldClientError):
    pass


class OpTooLargeError(FieldClientError):
    pass


class UnknownReportError(FieldClientError, LookupError):
    """The report is not on this device (never written or pulled here, or from another
    account), or HQ removed it: an op on it could only be answered rejected or gone."""


class InvalidTrackError(FieldClientError, ValueError):
    """Fixes the server would refuse or quarantine (no time zone, out of range, two at one
    time), or a track file that cannot be read as GPX or GeoJSON; the message says where."""


class UploadError(FieldClientError):
    """An upload stopped. ``retryable`` says whether a later sync may succeed as it is."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable
