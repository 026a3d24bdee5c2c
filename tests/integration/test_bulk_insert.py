"""``server.db.bulk.insert_rows`` stores rows exactly as the ORM would (binary COPY on
PostgreSQL, executemany on SQLite): every column type Vigil uses, NULLs, Python-side defaults,
and errors as SQLAlchemy's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shapely
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from geo import LocationPrecision
from server.db import bulk
from server.db.base import Base
from server.reports.enums import (
    InformationCredibility,
    PerpetratorType,
    ReportOrigin,
    SourceReliability,
    SourceType,
    TimePrecision,
    VerificationState,
)
from server.reports.models import Report
from server.sync.models import SyncOp
from server.taxonomy.codes import Sensitivity

pytestmark = pytest.mark.integration


def _report_values(**overrides: Any) -> dict[str, Any]:
    now = datetime(2026, 11, 30, 8, 15, 42, 123456, tzinfo=UTC)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "version": 3,
        "category": "killing_of_civilians",
        "family": "violence_against_civilians",
        "occurred_at": now - timedelta(hours=5),
        "time_precision": TimePrecision.HOUR,
        "occurred_day_start": now.replace(hour=0, minute=0, second=0, microsecond=0),
        "list_sort_at": now - timedelta(hours=5),
        "location": shapely.Point(20.5731234, 5.7612345),
        "longitude": 20.5731234,
        "latitude": 5.7612345,
        "location_accuracy_m": 15,  # an int for a float column, as a client may send it
        "location_precision": LocationPrecision.EXACT,
        "place_name": "Bambari — marché central\t(tab)\\ and a backslash",
        "admin1": "Ouaka",
        "admin2": None,
        "coarse_longitude": 20.57,
        "coarse_latitude": 5.76,
        "source_type": SourceType.WITNESS,
        "source_reliability": SourceReliability.B,
        "information_credibility": InformationCredibility.PROBABLY_TRUE,
        "killed_best": 4,
        "injured": None,
        "victims_detail": [{"sex": "female", "age_group": "child", "killed": 1}],
        "perpetrator_type": PerpetratorType.NON_STATE_ARMED_GROUP,
        "narrative": "Line one.\nLine two: « quoted » 🙂",
        "sensitivity": Sensitivity.RESTRICTED,
        "protection_concern": True,
        "consent_aggregate_reporting": False,
        "verification_state": VerificationState.REPORTED,
        "origin": ReportOrigin.FIELD,
        "content_fingerprint": "f" * 64,
        "captured_at_device": now - timedelta(days=400),
        "captured_uptime_ms": 9_876_543_210,
        "capture_boot_id": uuid.uuid4(),
        "h3_res5": 0x85754E67FFFFFFF,
        "h3_res9": 0x89754E64993FFFF,
        "dataset_details": {"nested": {"list": [1, 2.5, None, "x"]}},
    }
    values.update(overrides)
    return values


def _columns(obj: Base) -> dict[str, Any]:
    return {attr.key: getattr(obj, attr.key) for attr in inspect(obj).mapper.column_attrs}


def _load(session: Session, report_id: uuid.UUID) -> dict[str, Any]:
    session.expire_all()
    report = session.get(Report, report_id)
    assert report is not None
    return _columns(report)


def test_rows_read_back_exactly_as_orm_rows(session: Session) -> None:
    by_copy = _report_values()
    by_orm = {**by_copy, "id": uuid.uuid4()}
    bulk.insert_rows(session, Report.__table__, [by_copy])
    session.add(Report(**by_orm))
    session.flush()
    copied, ormed = _load(session, by_copy["id"]), _load(session, by_orm["id"])
    assert copied.pop("id") != ormed.pop("id")
    # Both got their Python-side defaults (created_at, conflict_state…) at insert time.
    for name in ("created_at", "updated_at", "server_received_at"):
        assert abs(copied.pop(name) - ormed.pop(name)) < timedelta(seconds=30)
    location_copied, location_ormed = copied.pop("location"), ormed.pop("location")
    assert location_copied.equals_exact(location_ormed, 1e-9)
    assert location_copied.equals_exact(by_copy["location"], 1e-9)
    assert copied == ormed
    assert copied["conflict_state"] == "none"
    assert copied["sensitivity"] is Sensitivity.RESTRICTED
    assert copied["place_name"] == by_copy["place_name"]
    assert copied["narrative"] == by_copy["narrative"]
    assert copied["occurred_at"] == by_copy["occurred_at"]
    assert copied["dataset_details"] == by_copy["dataset_details"]


def test_many_rows_and_nulls(session: Session) -> None:
    nullable = {"narrative": None, "victims_detail": None, "capture_boot_id": None, "h3_res9": None}
    rows = [
        _report_values(location=shapely.Point(20.0 + i / 100, 5.5), **(nullable if i % 2 else {}))
        for i in range(250)
    ]
    bulk.insert_rows(session, Report.__table__, rows)
    stored = session.execute(
        select(Report.id, Report.location, *(getattr(Report, n) for n in nullable)).where(
            Report.id.in_([r["id"] for r in rows])
        )
    ).all()
    assert len(stored) == 250
    by_id = {row[0]: row for row in stored}
    for index, sent in enumerate(rows):
        got = by_id[sent["id"]]
        assert got[1].equals_exact(sent["location"], 1e-9)
        assert [value is None for value in got[2:]] == [index % 2 == 1] * len(nullable)


def test_a_taken_key_is_an_integrity_error_and_nothing_of_the_batch_stays(
    session: Session,
) -> None:
    kept = _report_values()
    bulk.insert_rows(session, Report.__table__, [kept])
    fresh = _report_values()
    with pytest.raises(IntegrityError), session.begin_nested():
        bulk.insert_rows(session, Report.__table__, [fresh, {**kept, "version": 9}])
    assert session.get(Report, fresh["id"]) is None
    assert _load(session, kept["id"])["version"] == 3  # the stored row is untouched


def test_rows_must_share_their_columns(session: Session) -> None:
    one = {"op_id": uuid.uuid4(), "device_id": uuid.uuid4(), "device_seq": 1}
    other = {"device_id": uuid.uuid4(), "op_id": uuid.uuid4(), "device_seq": 2}
    with pytest.raises(ValueError, match="same columns"):
        bulk.insert_rows(session, SyncOp.__table__, [one, other])


def test_a_naive_datetime_is_refused(session: Session) -> None:
    # PostgreSQL: refused by the COPY encoder; SQLite: by the column's bind processor.
    with pytest.raises((ValueError, StatementError), match=r"timezone-aware|naive"):
        bulk.insert_rows(
            session, Report.__table__, [_report_values(occurred_at=datetime(2026, 1, 1))]
        )


def test_an_enum_column_refuses_a_value_that_is_no_member(session: Session) -> None:
    with pytest.raises((ValueError, LookupError, StatementError), match="rumour_on_the_radio"):
        bulk.insert_rows(
            session, Report.__table__, [_report_values(source_type="rumour_on_the_radio")]
        )


def test_pairs_in_matches_whole_pairs_only(session: Session) -> None:
    rows = [_report_values(h3_res5=a, h3_res9=b) for a, b in [(1, 10), (2, 20), (3, 30)]]
    bulk.insert_rows(session, Report.__table__, rows)
    ids = [r["id"] for r in rows]
    columns = (Report.h3_res5, Report.h3_res9)
    # (1, 20) pairs one row's first value with another's second: no row has it.
    wanted = [(1, 10), (1, 20), (3, 30), (4, 40)]
    # Several times, so that psycopg prepares the statement and PostgreSQL's generic plan runs.
    for _ in range(7):
        found = session.scalars(
            select(Report.h3_res5).where(
                Report.id.in_(ids), bulk.pairs_in(session, columns, wanted)
            )
        ).all()
        assert sorted(found) == [1, 3]
    assert session.scalars(select(Report.id).where(bulk.pairs_in(session, columns, []))).all() == []
