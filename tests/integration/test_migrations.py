"""The schema the migrations build is the schema the models describe, on both backends."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from server.db import migrate
from server.db.models import Base
from server.db.session import create_engine_for
from server.settings import Settings

pytestmark = pytest.mark.integration


def _include(obj, name, type_, reflected, compare_to):
    if type_ == "table" and name == "spatial_ref_sys":  # PostGIS's own table
        return False
    # GiST indexes exist only on PostgreSQL by design (ddl_if); SQLite never has them.
    return not (
        type_ == "index"
        and name
        and name
        in {
            "ix_units_base_location",
            "ix_aor_versions_geometry",
            "ix_incidents_location",
            "ix_reports_location",
            "ix_patrols_track",
            "ix_protected_sites_location",
            "ix_protected_sites_area",
        }
    )


def test_models_and_migrations_agree(engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": _include, "compare_type": False}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_database_is_at_head(engine) -> None:
    assert migrate.is_at_head(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()


@pytest.mark.postgres_only
def test_postgis_geometry_columns_and_gist_indexes(engine) -> None:
    with engine.connect() as connection:
        columns = set(
            connection.execute(
                text("SELECT f_table_name, f_geometry_column, type, srid FROM geometry_columns")
            ).all()
        )
        gist = {
            row[0]
            for row in connection.execute(
                text("SELECT indexname FROM pg_indexes WHERE indexdef ILIKE '%USING gist%'")
            )
        }
    assert {
        ("reports", "location", "POINT", 4326),
        ("incidents", "location", "POINT", 4326),
        ("aor_versions", "geometry", "MULTIPOLYGON", 4326),
        ("units", "base_location", "POINT", 4326),
        ("patrols", "track", "LINESTRING", 4326),
        ("patrols", "planned_route", "LINESTRING", 4326),
        ("protected_sites", "location", "POINT", 4326),
        ("protected_sites", "area", "MULTIPOLYGON", 4326),
    } <= columns
    assert {
        "ix_reports_location",
        "ix_incidents_location",
        "ix_aor_versions_geometry",
        "ix_units_base_location",
        "ix_patrols_track",
        "ix_protected_sites_location",
    } <= gist


def test_cell_columns_are_64_bit_integers(engine) -> None:
    columns = {c["name"]: c for c in inspect(engine).get_columns("reports")}
    for resolution in range(4, 11):
        assert str(columns[f"h3_res{resolution}"]["type"]).upper() == "BIGINT"


@pytest.fixture
def fresh_engine(tmp_path):
    """An engine on a new, empty database of the backend under test."""
    url = os.environ.get("VIGIL_TEST_DATABASE_URL")
    admin = None
    if url:
        name = f"vigil_mig_{uuid.uuid4().hex[:8]}"
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        fresh_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    else:
        fresh_url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    settings = Settings.load(data_dir=tmp_path, database={"url": fresh_url})
    engine = create_engine_for(settings)
    try:
        yield engine
    finally:
        engine.dispose()
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}"'))
            admin.dispose()


def test_upgrade_downgrade_upgrade_on_a_fresh_database(fresh_engine) -> None:
    """The whole migration chain runs forward, back to empty, and forward again."""
    migrate.upgrade(fresh_engine)
    assert "reports" in inspect(fresh_engine).get_table_names()
    migrate.downgrade(fresh_engine, "base")
    tables = set(inspect(fresh_engine).get_table_names()) - {"alembic_version", "spatial_ref_sys"}
    assert tables == set()
    migrate.upgrade(fresh_engine)
    assert migrate.is_at_head(fresh_engine)


def test_upgrading_keeps_every_row(fresh_engine) -> None:
    """Rows written under the first schema survive every later migration (on SQLite a table
    rebuild with foreign keys enforced would cascade-delete a user's devices)."""
    migrate.upgrade(fresh_engine, "0001")
    rows = {
        "units": "(id, code, name, kind, component, path, depth, sees_whole_mission, created_at,"
        " updated_at) VALUES (1, 'hq', 'HQ', 'mission_hq', 'civilian', '/1/', 0, true, :t, :t)",
        "users": "(id, username, full_name, role, unit_id, password_hash, is_active,"
        " token_version, failed_login_count, password_changed_at, created_at, updated_at)"
        " VALUES (1, 'a', 'A', 'admin', 1, 'x', true, 0, 0, :t, :t, :t)",
        "devices": "(id, user_id, name, platform, registered_at, credential_version)"
        " VALUES ('11111111-1111-1111-1111-111111111111', 1, 'phone', 'android', :t, 0)",
    }
    with fresh_engine.begin() as connection:
        for table, values in rows.items():
            connection.execute(text(f"INSERT INTO {table} {values}"), {"t": "2026-01-01T00:00:00"})
    migrate.upgrade(fresh_engine)
    with fresh_engine.connect() as connection:
        counts = [
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("units", "users", "devices")
        ]
    assert counts == [1, 1, 1]
