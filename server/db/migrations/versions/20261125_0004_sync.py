"""Offline sync: op ledger, device order, commit-ordered changes, epoch, clock samples, notes,
sealed blobs, quarantine, patrol tracks; device credentials and report capture/conflict fields.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:58:10.115739
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from server.db.base import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Change seqs are drawn from it under an advisory lock taken just before commit.
        op.execute("CREATE SEQUENCE change_seq")
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("committed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_changes")),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_changes_committed_at"), ["committed_at"], unique=False)
        batch_op.create_index("ix_changes_report_id", ["report_id"], unique=False)

    op.create_table(
        "clock_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("boot_id", sa.Uuid(), nullable=False),
        sa.Column("offset_ms", sa.BigInteger(), nullable=False),
        sa.Column("rtt_ms", sa.BigInteger(), nullable=False),
        sa.Column("server_rx_ms", sa.BigInteger(), nullable=False),
        sa.Column("device_tx_ms", sa.BigInteger(), nullable=False),
        sa.Column("device_uptime_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clock_samples")),
    )
    with op.batch_alter_table("clock_samples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clock_samples_device_boot", ["device_id", "boot_id"], unique=False
        )

    op.create_table(
        "device_cursors",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_cursors")),
    )
    op.create_table(
        "device_report_views",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=16), nullable=False),
        sa.Column("revoked_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "report_id", name=op.f("pk_device_report_views")),
    )
    op.create_table(
        "quarantined_ops",
        sa.Column("op_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("resolved_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("op_id", name=op.f("pk_quarantined_ops")),
    )
    with op.batch_alter_table("quarantined_ops", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantined_ops_report_id"), ["report_id"], unique=False
        )

    op.create_table(
        "sync_batches",
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_sync_batches")),
    )
    with op.batch_alter_table("sync_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_batches_device_id"), ["device_id"], unique=False)

    op.create_table(
        "sync_ops",
        sa.Column("op_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("device_seq", sa.BigInteger(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("op_id", name=op.f("pk_sync_ops")),
        sa.UniqueConstraint(
            "device_id", "device_seq", name=op.f("uq_sync_ops_device_id_device_seq")
        ),
    )
    with op.batch_alter_table("sync_ops", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_ops_report_id"), ["report_id"], unique=False)

    op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Uuid(), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.Column("last_change_seq", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_state")),
    )
    sync_state = sa.table(
        "sync_state",
        sa.column("id", sa.Integer),
        sa.column("epoch", sa.Uuid),
        sa.column("changed_at", UtcDateTime()),
        sa.column("last_change_seq", sa.BigInteger),
    )
    op.bulk_insert(
        sync_state,
        [{"id": 1, "epoch": uuid.uuid4(), "changed_at": datetime.now(UTC), "last_change_seq": 0}],
    )
    op.create_table(
        "patrols",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "foot",
                "mobile",
                "night",
                "long_range",
                "escort_firewood",
                "escort_market",
                "escort_water",
                "joint_police",
                "air",
                name="patroltype",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "planned",
                "underway",
                "completed",
                "aborted",
                name="patrolstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_by_device_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_patrols_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_patrols_unit_id_units"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrols")),
    )
    with op.batch_alter_table("patrols", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patrols_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "patrol_track_points",
        sa.Column("patrol_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("excluded", sa.Boolean(), nullable=False),
        sa.Column("exclusion_reason", sa.String(length=120), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patrol_id"],
            ["patrols.id"],
            name=op.f("fk_patrol_track_points_patrol_id_patrols"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("patrol_id", "recorded_at", name=op.f("pk_patrol_track_points")),
    )
    op.create_table(
        "report_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_report_notes_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_notes_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_notes")),
    )
    with op.batch_alter_table("report_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_notes_report_id"), ["report_id"], unique=False)

    op.create_table(
        "sealed_blobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("payload_version", sa.Integer(), nullable=False),
        sa.Column("parent_version", sa.Integer(), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column(
            "manifest",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("op_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_sealed_blobs_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sealed_blobs")),
        sa.UniqueConstraint(
            "report_id", "payload_version", name=op.f("uq_sealed_blobs_report_id_payload_version")
        ),
    )
    with op.batch_alter_table("sealed_blobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sealed_blobs_report_id"), ["report_id"], unique=False)

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credential_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("credential_issued_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("clock_offset_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("clock_boot_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("clock_sampled_at", UtcDateTime(), nullable=True))

    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("captured_at_device", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("captured_uptime_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("capture_boot_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("captured_at_corrected", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("capture_time_flag", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("capture_uncertainty_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("conflict_state", sa.String(length=16), nullable=False, server_default="none")
        )
        batch_op.add_column(sa.Column("deleted_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("deleted_reason", sa.Text(), nullable=True))

    with op.batch_alter_table("report_verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))

    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("upload_expires_at", UtcDateTime(), nullable=True))

    _backfill_changes()


def _backfill_changes() -> None:
    """Field reports filed before sync existed get a change row each, so a device's first pull
    sees them (oldest first)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, version FROM reports WHERE origin = 'field' "
            "ORDER BY server_received_at, id"
        )
    ).all()
    if not rows:
        return
    changes = sa.table(
        "changes",
        sa.column("seq", sa.BigInteger),
        sa.column("report_id", sa.Uuid),
        sa.column("version", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("committed_at", UtcDateTime()),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        changes,
        [
            {"seq": n, "report_id": uuid.UUID(str(row.id)), "version": row.version, "kind": "upsert",
             "committed_at": now}
            for n, row in enumerate(rows, start=1)
        ],
    )
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("SELECT setval('change_seq', :n)"), {"n": len(rows)})
    bind.execute(sa.text("UPDATE sync_state SET last_change_seq = :n"), {"n": len(rows)})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS change_seq")

    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_column("upload_expires_at")

    with op.batch_alter_table("report_verifications", schema=None) as batch_op:
        batch_op.drop_column("version")

    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("deleted_reason")
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("conflict_state")
        batch_op.drop_column("capture_uncertainty_ms")
        batch_op.drop_column("capture_time_flag")
        batch_op.drop_column("captured_at_corrected")
        batch_op.drop_column("capture_boot_id")
        batch_op.drop_column("captured_uptime_ms")
        batch_op.drop_column("captured_at_device")

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("clock_sampled_at")
        batch_op.drop_column("clock_boot_id")
        batch_op.drop_column("clock_offset_ms")
        batch_op.drop_column("credential_issued_at")
        batch_op.drop_column("credential_hash")

    with op.batch_alter_table("sealed_blobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sealed_blobs_report_id"))

    op.drop_table("sealed_blobs")
    with op.batch_alter_table("report_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_notes_report_id"))

    op.drop_table("report_notes")
    op.drop_table("patrol_track_points")
    with op.batch_alter_table("patrols", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patrols_unit_id"))

    op.drop_table("patrols")
    op.drop_table("sync_state")
    with op.batch_alter_table("sync_ops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_ops_report_id"))

    op.drop_table("sync_ops")
    with op.batch_alter_table("sync_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_batches_device_id"))

    op.drop_table("sync_batches")
    with op.batch_alter_table("quarantined_ops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantined_ops_report_id"))

    op.drop_table("quarantined_ops")
    op.drop_table("device_report_views")
    op.drop_table("device_cursors")
    with op.batch_alter_table("clock_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_clock_samples_device_boot")

    op.drop_table("clock_samples")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_report_id")
        batch_op.drop_index(batch_op.f("ix_changes_committed_at"))

    op.drop_table("changes")
