"""Throttle sign-ins by attempted username (known or not) instead of per user row.

Lockouts kept on the user row showed which usernames exist: only real accounts ever locked.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.db.base import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("username_key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", UtcDateTime(), nullable=False),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("username_key", name=op.f("pk_login_throttle")),
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("failed_login_count")
        batch_op.drop_column("first_failed_login_at")
        batch_op.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("locked_until", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("first_failed_login_at", UtcDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("failed_login_count", sa.Integer(), nullable=False, server_default="0")
        )
    op.drop_table("login_throttle")
