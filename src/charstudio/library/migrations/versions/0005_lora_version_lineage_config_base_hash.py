"""LoRA version lineage, training config and base-model hash

A LoRA version records the version it succeeds (``parent_id``), the training config that
made it (``config``) and the SHA-256 of the base model it was trained on
(``base_model_sha256``); the loss curve and samples go in ``metrics``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 11:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lora_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("config", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(
            sa.Column("base_model_sha256", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_lora_versions_parent_id_lora_versions"),
            "lora_versions",
            ["parent_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("lora_versions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_lora_versions_parent_id_lora_versions"), type_="foreignkey"
        )
        batch_op.drop_column("base_model_sha256")
        batch_op.drop_column("config")
        batch_op.drop_column("parent_id")
