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
    } <= columns
    assert {
        "ix_reports_location",
        "ix_incidents_location",
        "ix_aor_versions_geometry",
        "ix_units_base_location",
    } <= gist


def test_cell_columns_are_64_bit_integers(engine) -> None:
    columns = {c["name"]: c for c in inspect(engine).get_columns("reports")}
    for resolution in range(4, 11):
        assert str(columns[f"h3_res{resolution}"]["type"]).upper() == "BIGINT"


def test_upgrade_downgrade_upgrade_on_a_fresh_database(tmp_path) -> None:
    """The whole migration chain runs forward, back to empty, and forward again."""
    url = os.environ.get("VIGIL_TEST_DATABASE_URL")
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
        migrate.upgrade(engine)
        assert "reports" in inspect(engine).get_table_names()
        migrate.downgrade(engine, "base")
        tables = set(inspect(engine).get_table_names()) - {"alembic_version", "spatial_ref_sys"}
        assert tables == set()
        migrate.upgrade(engine)
        assert migrate.is_at_head(engine)
    finally:
        engine.dispose()
        if url:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}"'))
            admin.dispose()
