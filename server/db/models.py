"""Imports every ORM model so the metadata is complete (for Alembic and for tests)."""

from server.alerts_inbox.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertGroupState,
    AlertNotification,
    AlertOutbox,
    AlertRule,
    AlertSilence,
    AlertSubject,
)
from server.audit.models import AuditChainHead, AuditEvent
from server.auth.models import LoginThrottle
from server.coverage.models import CellLastPresence, CoverageDirty, PatrolCell
from server.db.base import Base
from server.devices.models import Device
from server.hotspots.models import HotspotCell, HotspotDirty, HotspotSnapshot
from server.incidents.models import Incident, IncidentReport
from server.patrols.models import Patrol, PatrolTrackPoint
from server.reports.models import Attachment, Report, ReportRevision, ReportVerification
from server.sites.models import ProtectedSite, ProtectedSiteCell
from server.sync.models import (
    Change,
    ClockSample,
    DeviceCursor,
    DeviceReportView,
    QuarantinedOp,
    ReportNote,
    SealedBlob,
    SyncBatch,
    SyncOp,
    SyncState,
)
from server.units.models import AorCell, AorVersion, Unit
from server.users.models import User

__all__ = [
    "Alert",
    "AlertChannel",
    "AlertDelivery",
    "AlertEvent",
    "AlertGroupState",
    "AlertNotification",
    "AlertOutbox",
    "AlertRule",
    "AlertSilence",
    "AlertSubject",
    "AorCell",
    "AorVersion",
    "Attachment",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "CellLastPresence",
    "Change",
    "ClockSample",
    "CoverageDirty",
    "Device",
    "DeviceCursor",
    "DeviceReportView",
    "HotspotCell",
    "HotspotDirty",
    "HotspotSnapshot",
    "Incident",
    "IncidentReport",
    "LoginThrottle",
    "Patrol",
    "PatrolCell",
    "PatrolTrackPoint",
    "ProtectedSite",
    "ProtectedSiteCell",
    "QuarantinedOp",
    "Report",
    "ReportNote",
    "ReportRevision",
    "ReportVerification",
    "SealedBlob",
    "SyncBatch",
    "SyncOp",
    "SyncState",
    "Unit",
    "User",
]
