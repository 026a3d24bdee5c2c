"""Initial schema: units and AORs with cells, users, devices, reports, incidents, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:11:51.853933
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db.base import UtcDateTime
from server.db.types import GeometryColumn

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


#: Spatial indexes, PostgreSQL only (SQLite stores WKB and answers from lon/lat and H3 columns).
GIST_INDEXES = (
    ("ix_units_base_location", "units", "base_location"),
    ("ix_aor_versions_geometry", "aor_versions", "geometry"),
    ("ix_incidents_location", "incidents", "location"),
    ("ix_reports_location", "reports", "location"),
)

#: The audit log is append-only: the database itself refuses UPDATE and DELETE.
SQLITE_AUDIT_TRIGGERS = (
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
       BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
)
POSTGRES_AUDIT_TRIGGERS = (
    """CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$""",
    """CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
       FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
       FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_username", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=True),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_events_actor_user_id"), ["actor_user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_events_object_id"), ["object_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_audit_events_occurred_at"), ["occurred_at"], unique=False
        )

    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "mission_hq",
                "force_hq",
                "sector",
                "battalion",
                "company",
                "police_hq",
                "police_unit",
                "civilian_section",
                "field_office",
                "operations_centre",
                name="unitkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "component",
            sa.Enum(
                "military", "police", "civilian", name="component", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("base_location", GeometryColumn("POINT"), nullable=True),
        sa.Column("sees_whole_mission", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["units.id"], name=op.f("fk_units_parent_id_units"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("code", name=op.f("uq_units_code")),
    )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_units_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index("ix_units_path", ["path"], unique=False)

    op.create_table(
        "incidents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "merged", name="incidentstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("severity_weight", sa.Float(), nullable=False),
        sa.Column(
            "sensitivity",
            sa.Enum(
                "normal",
                "restricted",
                "strictly_confidential",
                name="sensitivity",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "verification_state",
            sa.Enum(
                "reported",
                "under_verification",
                "verified",
                "discredited",
                name="verificationstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column(
            "time_precision",
            sa.Enum(
                "exact",
                "hour",
                "day",
                "week",
                "month",
                "year",
                name="timeprecision",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("occurred_day_start", UtcDateTime(), nullable=False),
        sa.Column("list_sort_at", UtcDateTime(), nullable=False),
        sa.Column("location", GeometryColumn("POINT"), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column(
            "location_precision",
            sa.Enum(
                "exact",
                "settlement",
                "area",
                "district",
                "province",
                "country",
                name="locationprecision",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("location_accuracy_m", sa.Float(), nullable=True),
        sa.Column("coarse_longitude", sa.Float(), nullable=True),
        sa.Column("coarse_latitude", sa.Float(), nullable=True),
        sa.Column("aor_unit_id", sa.Integer(), nullable=True),
        sa.Column("killed_best", sa.Integer(), nullable=True),
        sa.Column("report_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("h3_res4", sa.BigInteger(), nullable=True),
        sa.Column("h3_res5", sa.BigInteger(), nullable=True),
        sa.Column("h3_res6", sa.BigInteger(), nullable=True),
        sa.Column("h3_res7", sa.BigInteger(), nullable=True),
        sa.Column("h3_res8", sa.BigInteger(), nullable=True),
        sa.Column("h3_res9", sa.BigInteger(), nullable=True),
        sa.Column("h3_res10", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["aor_unit_id"],
            ["units.id"],
            name=op.f("fk_incidents_aor_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["incidents.id"],
            name=op.f("fk_incidents_merged_into_id_incidents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_aor_unit_id"), ["aor_unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_family"), ["family"], unique=False)
        batch_op.create_index("ix_incidents_h3_res10", ["h3_res10"], unique=False)
        batch_op.create_index("ix_incidents_h3_res4", ["h3_res4"], unique=False)
        batch_op.create_index("ix_incidents_h3_res5", ["h3_res5"], unique=False)
        batch_op.create_index("ix_incidents_h3_res6", ["h3_res6"], unique=False)
        batch_op.create_index("ix_incidents_h3_res7", ["h3_res7"], unique=False)
        batch_op.create_index("ix_incidents_h3_res8", ["h3_res8"], unique=False)
        batch_op.create_index("ix_incidents_h3_res9", ["h3_res9"], unique=False)
        batch_op.create_index("ix_incidents_list_order", ["list_sort_at", "id"], unique=False)
        batch_op.create_index(
            "ix_incidents_status_occurred", ["status", "occurred_at"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "field_officer",
                "analyst",
                "commander",
                "protection_officer",
                "admin",
                name="role",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("failed_login_count", sa.Integer(), nullable=False),
        sa.Column("first_failed_login_at", UtcDateTime(), nullable=True),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("last_login_at", UtcDateTime(), nullable=True),
        sa.Column("password_changed_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_users_unit_id_units"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "aor_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("geometry", GeometryColumn("MULTIPOLYGON"), nullable=False),
        sa.Column("area_km2", sa.Float(), nullable=False),
        sa.Column("valid_from", UtcDateTime(), nullable=False),
        sa.Column("valid_to", UtcDateTime(), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("resolutions", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_aor_versions_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_aor_versions_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aor_versions")),
        sa.UniqueConstraint("unit_id", "version", name=op.f("uq_aor_versions_unit_id_version")),
    )
    with op.batch_alter_table("aor_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_aor_versions_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index(
            "uq_aor_versions_current_per_unit",
            ["unit_id"],
            unique=True,
            sqlite_where=sa.text("valid_to IS NULL"),
            postgresql_where=sa.text("valid_to IS NULL"),
        )

    op.create_table(
        "devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("platform", sa.String(length=60), nullable=False),
        sa.Column("registered_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_by_user_id", sa.Integer(), nullable=True),
        sa.Column("revoke_reason", sa.String(length=500), nullable=True),
        sa.Column("credential_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["revoked_by_user_id"],
            ["users.id"],
            name=op.f("fk_devices_revoked_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_user_id"), ["user_id"], unique=False)

    op.create_table(
        "aor_cells",
        sa.Column("aor_version_id", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["aor_version_id"],
            ["aor_versions.id"],
            name=op.f("fk_aor_cells_aor_version_id_aor_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("aor_version_id", "resolution", "cell", name=op.f("pk_aor_cells")),
    )
    with op.batch_alter_table("aor_cells", schema=None) as batch_op:
        batch_op.create_index("ix_aor_cells_resolution_cell", ["resolution", "cell"], unique=False)

    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column(
            "time_precision",
            sa.Enum(
                "exact",
                "hour",
                "day",
                "week",
                "month",
                "year",
                name="timeprecision",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("occurred_day_start", UtcDateTime(), nullable=False),
        sa.Column("list_sort_at", UtcDateTime(), nullable=False),
        sa.Column("location", GeometryColumn("POINT"), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("location_accuracy_m", sa.Float(), nullable=True),
        sa.Column(
            "location_precision",
            sa.Enum(
                "exact",
                "settlement",
                "area",
                "district",
                "province",
                "country",
                name="locationprecision",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("place_name", sa.String(length=500), nullable=True),
        sa.Column("admin1", sa.String(length=120), nullable=True),
        sa.Column("admin2", sa.String(length=120), nullable=True),
        sa.Column("coarse_longitude", sa.Float(), nullable=True),
        sa.Column("coarse_latitude", sa.Float(), nullable=True),
        sa.Column("reporting_unit_id", sa.Integer(), nullable=True),
        sa.Column("aor_unit_id", sa.Integer(), nullable=True),
        sa.Column(
            "component",
            sa.Enum(
                "military", "police", "civilian", name="component", native_enum=False, length=16
            ),
            nullable=True,
        ),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_by_device_id", sa.Uuid(), nullable=True),
        sa.Column(
            "source_type",
            sa.Enum(
                "direct_observation",
                "victim",
                "witness",
                "community_alert_network",
                "partner",
                "media",
                "confidential_informant",
                "dataset",
                name="sourcetype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "source_reliability",
            sa.Enum("A", "B", "C", "D", "E", "F", name="sourcereliability", native_enum=False),
            nullable=False,
        ),
        sa.Column(
            "information_credibility",
            sa.Enum("1", "2", "3", "4", "5", "6", name="informationcredibility", native_enum=False),
            nullable=False,
        ),
        sa.Column("killed_best", sa.Integer(), nullable=True),
        sa.Column("killed_low", sa.Integer(), nullable=True),
        sa.Column("killed_high", sa.Integer(), nullable=True),
        sa.Column("injured", sa.Integer(), nullable=True),
        sa.Column("abducted", sa.Integer(), nullable=True),
        sa.Column("displaced", sa.Integer(), nullable=True),
        sa.Column(
            "victims_detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "perpetrator_type",
            sa.Enum(
                "state_forces",
                "non_state_armed_group",
                "militia_community_defence",
                "criminal",
                "peacekeepers",
                "unknown",
                name="perpetratortype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("perpetrator_name", sa.String(length=200), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column(
            "sensitivity",
            sa.Enum(
                "normal",
                "restricted",
                "strictly_confidential",
                name="sensitivity",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("protection_concern", sa.Boolean(), nullable=False),
        sa.Column("consent_aggregate_reporting", sa.Boolean(), nullable=False),
        sa.Column("consent_referral", sa.Boolean(), nullable=False),
        sa.Column(
            "verification_state",
            sa.Enum(
                "reported",
                "under_verification",
                "verified",
                "discredited",
                name="verificationstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "origin",
            sa.Enum("field", "import", name="reportorigin", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("dataset", sa.String(length=32), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column(
            "dataset_details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("content_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("server_received_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("h3_res4", sa.BigInteger(), nullable=True),
        sa.Column("h3_res5", sa.BigInteger(), nullable=True),
        sa.Column("h3_res6", sa.BigInteger(), nullable=True),
        sa.Column("h3_res7", sa.BigInteger(), nullable=True),
        sa.Column("h3_res8", sa.BigInteger(), nullable=True),
        sa.Column("h3_res9", sa.BigInteger(), nullable=True),
        sa.Column("h3_res10", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["aor_unit_id"],
            ["units.id"],
            name=op.f("fk_reports_aor_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_device_id"],
            ["devices.id"],
            name=op.f("fk_reports_created_by_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_reports_created_by_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reporting_unit_id"],
            ["units.id"],
            name=op.f("fk_reports_reporting_unit_id_units"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("dataset", "external_id", name=op.f("uq_reports_dataset_external_id")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reports_aor_unit_id"), ["aor_unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reports_category"), ["category"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reports_created_by_user_id"), ["created_by_user_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reports_family"), ["family"], unique=False)
        batch_op.create_index("ix_reports_h3_res10", ["h3_res10"], unique=False)
        batch_op.create_index("ix_reports_h3_res4", ["h3_res4"], unique=False)
        batch_op.create_index("ix_reports_h3_res5", ["h3_res5"], unique=False)
        batch_op.create_index("ix_reports_h3_res6", ["h3_res6"], unique=False)
        batch_op.create_index("ix_reports_h3_res7", ["h3_res7"], unique=False)
        batch_op.create_index("ix_reports_h3_res8", ["h3_res8"], unique=False)
        batch_op.create_index("ix_reports_h3_res9", ["h3_res9"], unique=False)
        batch_op.create_index("ix_reports_list_order", ["list_sort_at", "id"], unique=False)
        batch_op.create_index("ix_reports_lon_lat", ["longitude", "latitude"], unique=False)
        batch_op.create_index("ix_reports_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reports_occurred_day_start"), ["occurred_day_start"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reports_reporting_unit_id"), ["reporting_unit_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reports_sensitivity"), ["sensitivity"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reports_verification_state"), ["verification_state"], unique=False
        )

    op.create_table(
        "attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "photo",
                "audio",
                "video",
                "document",
                "original",
                name="attachmentrole",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "expected",
                "partial",
                "complete",
                name="attachmentstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("received_bytes", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_attachments_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachments_report_id"), ["report_id"], unique=False)

    op.create_table(
        "incident_reports",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("linked_at", UtcDateTime(), nullable=False),
        sa.Column("linked_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_reports_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["linked_by_user_id"],
            ["users.id"],
            name=op.f("fk_incident_reports_linked_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_incident_reports_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_incident_reports")),
    )
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_incident_reports_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "report_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column(
            "previous_values",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_report_revisions_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_revisions_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_revisions")),
        sa.UniqueConstraint(
            "report_id", "version", name=op.f("uq_report_revisions_report_id_version")
        ),
    )
    op.create_table(
        "report_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column(
            "from_state",
            sa.Enum(
                "reported",
                "under_verification",
                "verified",
                "discredited",
                name="verificationstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "reported",
                "under_verification",
                "verified",
                "discredited",
                name="verificationstate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_report_verifications_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_verifications_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_verifications")),
    )
    with op.batch_alter_table("report_verifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_report_verifications_report_id"), ["report_id"], unique=False
        )

    if dialect == "postgresql":
        for name, table, column in GIST_INDEXES:
            op.create_index(name, table, [column], postgresql_using="gist")
        for statement in POSTGRES_AUDIT_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_AUDIT_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
        for name, table, _column in GIST_INDEXES:
            op.drop_index(name, table_name=table)
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    with op.batch_alter_table("report_verifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_verifications_report_id"))

    op.drop_table("report_verifications")
    op.drop_table("report_revisions")
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_reports_incident_id"))

    op.drop_table("incident_reports")
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_report_id"))

    op.drop_table("attachments")
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_verification_state"))
        batch_op.drop_index(batch_op.f("ix_reports_sensitivity"))
        batch_op.drop_index(batch_op.f("ix_reports_reporting_unit_id"))
        batch_op.drop_index(batch_op.f("ix_reports_occurred_day_start"))
        batch_op.drop_index("ix_reports_occurred_at")
        batch_op.drop_index("ix_reports_lon_lat")
        batch_op.drop_index("ix_reports_list_order")
        batch_op.drop_index("ix_reports_h3_res9")
        batch_op.drop_index("ix_reports_h3_res8")
        batch_op.drop_index("ix_reports_h3_res7")
        batch_op.drop_index("ix_reports_h3_res6")
        batch_op.drop_index("ix_reports_h3_res5")
        batch_op.drop_index("ix_reports_h3_res4")
        batch_op.drop_index("ix_reports_h3_res10")
        batch_op.drop_index(batch_op.f("ix_reports_family"))
        batch_op.drop_index(batch_op.f("ix_reports_created_by_user_id"))
        batch_op.drop_index(batch_op.f("ix_reports_category"))
        batch_op.drop_index(batch_op.f("ix_reports_aor_unit_id"))

    op.drop_table("reports")
    with op.batch_alter_table("aor_cells", schema=None) as batch_op:
        batch_op.drop_index("ix_aor_cells_resolution_cell")

    op.drop_table("aor_cells")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_user_id"))

    op.drop_table("devices")
    with op.batch_alter_table("aor_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_aor_versions_current_per_unit",
            sqlite_where=sa.text("valid_to IS NULL"),
            postgresql_where=sa.text("valid_to IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_aor_versions_unit_id"))

    op.drop_table("aor_versions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_unit_id"))

    op.drop_table("users")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_status_occurred")
        batch_op.drop_index("ix_incidents_list_order")
        batch_op.drop_index("ix_incidents_h3_res9")
        batch_op.drop_index("ix_incidents_h3_res8")
        batch_op.drop_index("ix_incidents_h3_res7")
        batch_op.drop_index("ix_incidents_h3_res6")
        batch_op.drop_index("ix_incidents_h3_res5")
        batch_op.drop_index("ix_incidents_h3_res4")
        batch_op.drop_index("ix_incidents_h3_res10")
        batch_op.drop_index(batch_op.f("ix_incidents_family"))
        batch_op.drop_index(batch_op.f("ix_incidents_category"))
        batch_op.drop_index(batch_op.f("ix_incidents_aor_unit_id"))

    op.drop_table("incidents")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index("ix_units_path")
        batch_op.drop_index(batch_op.f("ix_units_parent_id"))

    op.drop_table("units")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_object_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_actor_user_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))

    op.drop_table("audit_events")
    op.drop_table("audit_chain_head")
