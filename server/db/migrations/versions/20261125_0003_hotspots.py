"""Hotspot snapshots and their cells, the dirty list that drives recomputes, and incident consent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db.base import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hotspot_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("aor_version_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("as_of", UtcDateTime(), nullable=False),
        sa.Column("computed_at", UtcDateTime(), nullable=False),
        sa.Column("universe_cells", sa.Integer(), nullable=False),
        sa.Column("incidents", sa.Integer(), nullable=False),
        sa.Column("bin_days", sa.Integer(), nullable=False),
        sa.Column("n_bins", sa.Integer(), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["aor_version_id"],
            ["aor_versions.id"],
            name=op.f("fk_hotspot_snapshots_aor_version_id_aor_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_hotspot_snapshots_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotspot_snapshots")),
        sa.UniqueConstraint(
            "aor_version_id",
            "resolution",
            "window_days",
            "audience",
            "as_of",
            name=op.f("uq_hotspot_snapshots_aor_version_id_resolution_window_days_audience_as_of"),
        ),
    )
    op.create_index("ix_hotspot_snapshots_aor_version_id", "hotspot_snapshots", ["aor_version_id"])
    op.create_index(
        "ix_hotspot_snapshots_lookup",
        "hotspot_snapshots",
        ["unit_id", "resolution", "window_days", "audience", "as_of"],
    )
    op.create_table(
        "hotspot_cells",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("intensity", sa.Float(), nullable=False),
        sa.Column("local_count", sa.Integer(), nullable=False),
        sa.Column("z_score", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("q_value", sa.Float(), nullable=False),
        sa.Column("confidence", sa.SmallInteger(), nullable=False),
        sa.Column("emerging", sa.String(length=32), nullable=False),
        sa.Column("trend_z", sa.Float(), nullable=True),
        sa.Column("trend_p", sa.Float(), nullable=True),
        sa.Column("surge_score", sa.Float(), nullable=False),
        sa.Column("surge_p", sa.Float(), nullable=False),
        sa.Column("surge_flag", sa.Boolean(), nullable=False),
        sa.Column("precursor_index", sa.Float(), nullable=False),
        sa.Column("precursor_flag", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["hotspot_snapshots.id"],
            name=op.f("fk_hotspot_cells_snapshot_id_hotspot_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "cell", name=op.f("pk_hotspot_cells")),
    )
    op.create_table(
        "hotspot_dirty",
        sa.Column("aor_version_id", sa.Integer(), nullable=False),
        sa.Column("marked_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["aor_version_id"],
            ["aor_versions.id"],
            name=op.f("fk_hotspot_dirty_aor_version_id_aor_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("aor_version_id", name=op.f("pk_hotspot_dirty")),
    )
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.add_column(
            sa.Column(
                "consent_aggregate_reporting",
                sa.Boolean(),
                nullable=False,
                server_default=sa.true(),
            )
        )
    # Existing incidents: consent holds only if every sensitive report of the incident gave it.
    op.execute(
        "UPDATE incidents SET consent_aggregate_reporting = false WHERE id IN ("
        " SELECT ir.incident_id FROM incident_reports ir JOIN reports r ON r.id = ir.report_id"
        " WHERE r.sensitivity <> 'normal' AND r.consent_aggregate_reporting = false)"
    )


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("consent_aggregate_reporting")
    op.drop_table("hotspot_dirty")
    op.drop_table("hotspot_cells")
    op.drop_index("ix_hotspot_snapshots_lookup", table_name="hotspot_snapshots")
    op.drop_index("ix_hotspot_snapshots_aor_version_id", table_name="hotspot_snapshots")
    op.drop_table("hotspot_snapshots")
