"""The library's tables (SQLAlchemy 2 declarative models).

The schema changes only through Alembic revisions in ``library/migrations/versions``;
``tests/library/test_migrations.py`` checks that the revisions and these models agree.
Times are stored in UTC. Seeds reach 2**64-1, past SQL's signed 64-bit integers: they are
stored as a signed 64-bit integer shifted down by 2**63 (:class:`Seed`), so every seed fits,
order is kept, and Python sees the seed itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "Character",
    "FaceEmbedding",
    "Generation",
    "Job",
    "LibraryInfo",
    "LoraVersion",
    "ReferenceImage",
    "Score",
    "TrainingSet",
    "WorkerRecord",
    "utcnow",
]

# Stable constraint names keep Alembic's batch migrations on SQLite deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC timestamp that comes back timezone-aware on every database.

    SQLite has no time zones and returns naive values; they are stored in UTC, so UTC is
    attached on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Seed(TypeDecorator[int]):
    """A seed, 0 to 2**64-1, in a signed 64-bit column (SQLite INTEGER, PostgreSQL BIGINT):
    stored as ``seed - 2**63``, read back as the seed."""

    impl = BigInteger()
    cache_ok = True
    SHIFT = 2**63

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not 0 <= value < 2 * self.SHIFT:
            raise ValueError(f"seed {value} is outside 0 to 2**64-1")
        return value - self.SHIFT

    def process_result_value(self, value: int | None, dialect: Dialect) -> int | None:
        return None if value is None else value + self.SHIFT


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: UTCDateTime(),
    }


class Character(Base):
    """A recurring character and its per-character overrides of the generation defaults."""

    __tablename__ = "characters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # lower(name): names that differ only by case are the same character.
    name_key: Mapped[str] = mapped_column(String(64), unique=True)
    trigger_word: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    references: Mapped[list[ReferenceImage]] = relationship(
        back_populates="character",
        cascade="all, delete-orphan",
        order_by="ReferenceImage.id",
    )


class ReferenceImage(Base):
    """An original image, stored once per character under its content hash."""

    __tablename__ = "reference_images"
    __table_args__ = (UniqueConstraint("character_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str] = mapped_column(String(512))
    format: Mapped[str] = mapped_column(String(16))
    suffix: Mapped[str] = mapped_column(String(8))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Face analysis (revision 0002): ok | no_face | several_faces | face_too_small |
    # outlier, with the box, similarity to the identity and the reason in face_details.
    face_status: Mapped[str | None] = mapped_column(String(16))
    face_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The IP-Adapter reference: "auto" (chosen by the face engine) or "user"; NULL if not.
    ipadapter_reference: Mapped[str | None] = mapped_column(String(8))
    # A user's caption for this image in training sets (revision 0003); kept across
    # regeneration.
    caption_edit: Mapped[str | None] = mapped_column(Text)

    character: Mapped[Character] = relationship(back_populates="references")

    @property
    def file_name(self) -> str:
        """Name of the stored copy: ``<sha256>.<suffix>``."""
        return f"{self.sha256}.{self.suffix}"


class TrainingSet(Base):
    """A prepared, versioned training set; ``content_hash`` covers images, captions, settings."""

    __tablename__ = "training_sets"
    __table_args__ = (UniqueConstraint("character_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    num_images: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    path: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FaceEmbedding(Base):
    """A face identity vector: one per reference image, plus the character's identity."""

    __tablename__ = "face_embeddings"

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    # NULL for the character identity (the normalised mean of the inliers).
    reference_image_id: Mapped[int | None] = mapped_column(
        ForeignKey("reference_images.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))  # "image" | "identity"
    backend: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoraVersion(Base):
    """One trained LoRA file; ``promoted`` marks the version generation uses."""

    __tablename__ = "lora_versions"
    __table_args__ = (UniqueConstraint("character_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    training_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_sets.id", ondelete="SET NULL")
    )
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64), default="")
    base_model: Mapped[str] = mapped_column(String(512), default="")
    status: Mapped[str] = mapped_column(String(16), default="ready")  # training|ready|failed
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Revision 0005: the version this one succeeds, the training config that made it, and
    # the SHA-256 of its base model (loss curve and samples are in ``metrics``).
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("lora_versions.id", ondelete="SET NULL")
    )
    config: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    base_model_sha256: Mapped[str] = mapped_column(String(64), default="", server_default="")


class Job(Base):
    """Long work (training, generation, face extraction ...) with its state and progress."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    character_id: Mapped[int | None] = mapped_column(
        ForeignKey("characters.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # Revision 0004: which worker claimed it, how many times, its last sign of life, and
    # whether someone asked to cancel it (checked at every progress step).
    worker: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sa_false()
    )


class Generation(Base):
    """One generated image with the full parameters that made it."""

    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(primary_key=True)
    character_id: Mapped[int] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    lora_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("lora_versions.id", ondelete="SET NULL")
    )
    backend: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    prompt: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(Seed())  # 0 to 2**64-1, see Seed
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64), default="")
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Score(Base):
    """A quality-control measurement of one generation (e.g. face identity similarity)."""

    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    generation_id: Mapped[int] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LibraryInfo(Base):
    """The library's identity (revision 0010): one row, made with the database.

    The data root holds the same id in ``library.json``; ``serve`` and ``worker`` refuse a
    data root whose id differs, so a machine whose shared mount is missing (or that points
    at another library's folder) stops before it writes anywhere.
    """

    __tablename__ = "library"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkerRecord(Base):
    """A running ``charstudio worker`` (revision 0010): which job kinds it takes, and its
    last sign of life, so ``jobs show`` can say when no running worker takes a job's kind."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
