"""Vocabularies of a report: the closed sets a field officer picks from."""

from __future__ import annotations

from enum import StrEnum


class TimePrecision(StrEnum):
    """How precisely ``occurred_at`` is known; the event lies in that period starting there."""

    EXACT = "exact"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class SourceType(StrEnum):
    """Who or what the information comes from."""

    DIRECT_OBSERVATION = "direct_observation"
    VICTIM = "victim"
    WITNESS = "witness"
    COMMUNITY_ALERT_NETWORK = "community_alert_network"
    PARTNER = "partner"
    MEDIA = "media"
    CONFIDENTIAL_INFORMANT = "confidential_informant"
    DATASET = "dataset"


class SourceReliability(StrEnum):
    """Admiralty grading of the source: A completely reliable … F cannot be judged."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"


class InformationCredibility(StrEnum):
    """Admiralty grading of the information: 1 confirmed … 6 cannot be judged."""

    CONFIRMED = "1"
    PROBABLY_TRUE = "2"
    POSSIBLY_TRUE = "3"
    DOUBTFUL = "4"
    IMPROBABLE = "5"
    CANNOT_BE_JUDGED = "6"


class PerpetratorType(StrEnum):
    STATE_FORCES = "state_forces"
    NON_STATE_ARMED_GROUP = "non_state_armed_group"
    MILITIA_COMMUNITY_DEFENCE = "militia_community_defence"
    CRIMINAL = "criminal"
    PEACEKEEPERS = "peacekeepers"
    UNKNOWN = "unknown"


class VerificationState(StrEnum):
    """Where a report stands in verification (see ``server.reports.verification``)."""

    REPORTED = "reported"
    UNDER_VERIFICATION = "under_verification"
    VERIFIED = "verified"
    DISCREDITED = "discredited"
    #: Withdrawn by its author before a decision (sync's ``withdraw`` op).
    WITHDRAWN = "withdrawn"


class ReportOrigin(StrEnum):
    """How the report entered Vigil."""

    FIELD = "field"
    IMPORT = "import"


class AttachmentRole(StrEnum):
    PHOTO = "photo"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    ORIGINAL = "original"


class AttachmentState(StrEnum):
    """``expected``: announced in the report's manifest; ``partial``: upload under way;
    ``complete``: every byte received and the sha256 checked (immutable from then on)."""

    EXPECTED = "expected"
    PARTIAL = "partial"
    COMPLETE = "complete"
