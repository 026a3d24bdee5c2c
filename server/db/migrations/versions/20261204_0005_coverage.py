"""Patrol plans and tracks, patrol coverage cells, last presence per cell, protected sites.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.db.base import UtcDateTime
from server.db.types import GeometryColumn

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GIST = (
    ("ix_patrols_track", "patrols", "track"),
    ("ix_protected_sites_location", "protected_sites", "location"),
    ("ix_protected_sites_area", "protected_sites", "area"),
)


def upgrade() -> None:
    with op.batch_alter_table("patrols") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("sensing_radius_m", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("planned_start", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("planned_end", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("planned_route", GeometryColumn("LINESTRING"), nullable=True))
        batch_op.add_column(sa.Column("ended_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("track", GeometryColumn("LINESTRING"), nullable=True))
        batch_op.add_column(
            sa.Column("track_km", sa.Float(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("track_minutes", sa.Float(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("fix_count", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column(
                "excluded_fix_count", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
        batch_op.add_column(sa.Column("coverage_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", UtcDateTime(), nullable=True))
        batch_op.create_index("ix_patrols_status", ["status"], unique=False)
    op.execute("UPDATE patrols SET updated_at = created_at")
    with op.batch_alter_table("patrols") as batch_op:
        batch_op.alter_column("updated_at", existing_type=UtcDateTime(), nullable=False)

    op.create_table(
        "patrol_cells",
        sa.Column("patrol_id", sa.Uuid(), nullable=False),
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("km", sa.Float(), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.Column("first_presence_at", UtcDateTime(), nullable=False),
        sa.Column("last_presence_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patrol_id"],
            ["patrols.id"],
            name=op.f("fk_patrol_cells_patrol_id_patrols"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("patrol_id", "resolution", "cell", name=op.f("pk_patrol_cells")),
    )
    op.create_index("ix_patrol_cells_resolution_cell", "patrol_cells", ["resolution", "cell"])
    op.create_index(
        "ix_patrol_cells_resolution_last", "patrol_cells", ["resolution", "last_presence_at"]
    )
    op.create_table(
        "cell_last_presence",
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("last_presence_at", UtcDateTime(), nullable=False),
        sa.Column("patrol_id", sa.Uuid(), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patrol_id"],
            ["patrols.id"],
            name=op.f("fk_cell_last_presence_patrol_id_patrols"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_cell_last_presence_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("resolution", "cell", name=op.f("pk_cell_last_presence")),
    )
    op.create_table(
        "coverage_dirty",
        sa.Column("patrol_id", sa.Uuid(), nullable=False),
        sa.Column("marked_at", UtcDateTime(), nullable=False),
        sa.Column("marks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("patrol_id", name=op.f("pk_coverage_dirty")),
    )
    # Patrols that sync stored before this revision need their first coverage.
    op.execute(
        "INSERT INTO coverage_dirty (patrol_id, marked_at, marks) "
        "SELECT id, created_at, 1 FROM patrols"
    )
    op.create_table(
        "protected_sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "idp_camp",
                "refugee_site",
                "poc_site",
                "market",
                "water_point",
                name="sitekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("location", GeometryColumn("POINT"), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("area", GeometryColumn("MULTIPOLYGON"), nullable=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("aor_unit_id", sa.Integer(), nullable=True),
        sa.Column("notes", sa.String(length=2000), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["aor_unit_id"],
            ["units.id"],
            name=op.f("fk_protected_sites_aor_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_protected_sites_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_protected_sites")),
    )
    op.create_index("ix_protected_sites_aor_unit_id", "protected_sites", ["aor_unit_id"])
    op.create_table(
        "protected_site_cells",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("resolution", sa.SmallInteger(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["protected_sites.id"],
            name=op.f("fk_protected_site_cells_site_id_protected_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "site_id", "resolution", "cell", name=op.f("pk_protected_site_cells")
        ),
    )
    op.create_index(
        "ix_protected_site_cells_resolution_cell", "protected_site_cells", ["resolution", "cell"]
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, table, column in _GIST:
            op.create_index(name, table, [column], postgresql_using="gist")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table, _column in _GIST:
            op.drop_index(name, table_name=table)
    op.drop_index("ix_protected_site_cells_resolution_cell", table_name="protected_site_cells")
    op.drop_table("protected_site_cells")
    op.drop_index("ix_protected_sites_aor_unit_id", table_name="protected_sites")
    op.drop_table("protected_sites")
    op.drop_table("coverage_dirty")
    op.drop_table("cell_last_presence")
    op.drop_index("ix_patrol_cells_resolution_last", table_name="patrol_cells")
    op.drop_index("ix_patrol_cells_resolution_cell", table_name="patrol_cells")
    op.drop_table("patrol_cells")
    with op.batch_alter_table("patrols") as batch_op:
        batch_op.drop_index("ix_patrols_status")
        for column in (
            "updated_at",
            "coverage_at",
            "excluded_fix_count",
            "fix_count",
            "track_minutes",
            "track_km",
            "track",
            "ended_at",
            "planned_route",
            "planned_end",
            "planned_start",
            "sensing_radius_m",
            "name",
        ):
            batch_op.drop_column(column)
