"""Generation seeds as integers

``generations.seed`` was decimal text (seeds reach 2**64-1, past a signed 64-bit integer);
it becomes a BIGINT holding ``seed - 2**63`` (``library.models.Seed``), so seeds compare and
sort as numbers and PostgreSQL stores them natively. Existing rows are converted here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SHIFT = 2**63


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seed_shifted", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, seed FROM generations")).all()
    for row_id, seed in rows:
        bind.execute(
            sa.text("UPDATE generations SET seed_shifted = :value WHERE id = :id"),
            {"value": int(seed) - _SHIFT, "id": row_id},
        )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_column("seed")
        batch_op.alter_column(
            "seed_shifted", new_column_name="seed", existing_type=sa.BigInteger(), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seed_text", sa.String(length=20), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, seed FROM generations")).all()
    for row_id, shifted in rows:
        bind.execute(
            sa.text("UPDATE generations SET seed_text = :value WHERE id = :id"),
            {"value": str(int(shifted) + _SHIFT), "id": row_id},
        )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_column("seed")
        batch_op.alter_column(
            "seed_text", new_column_name="seed", existing_type=sa.String(length=20), nullable=False
        )
