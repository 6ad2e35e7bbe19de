"""The face stage's rows in the library: a character's reference images with their face
status and IP-Adapter choice, and its ``face_embeddings`` (one per usable image, one for
the identity).

:class:`~charstudio.faces.service.FaceService` opens the session or transaction; these
functions read and write inside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from charstudio.errors import NotFound
from charstudio.faces.service_types import FaceImageReport, image_report
from charstudio.faces.types import FaceEmbeddingVector, IdentityResult, ImageAnalysis
from charstudio.library.models import Character, FaceEmbedding, ReferenceImage

__all__ = [
    "character_row",
    "chosen_reference",
    "embedding_row",
    "identity_vector",
    "record_extraction",
    "reference_rows",
]


def character_row(session: Session, name: str) -> Character:
    """The character named ``name`` (its stored spelling).

    Raises:
        NotFound: no such character.
    """
    character = session.scalar(select(Character).where(Character.name == name))
    if character is None:
        raise NotFound(f"no character named {name!r}; see `charstudio character list`")
    return character


def reference_rows(session: Session, name: str) -> list[ReferenceImage]:
    """The character's reference images, in import order."""
    character = character_row(session, name)
    return list(
        session.scalars(
            select(ReferenceImage)
            .where(ReferenceImage.character_id == character.id)
            .order_by(ReferenceImage.id)
        )
    )


def chosen_reference(session: Session, name: str) -> ReferenceImage | None:
    """The reference chosen for IP-Adapter (by the user or automatically), if any."""
    return next(
        (r for r in reference_rows(session, name) if r.ipadapter_reference is not None), None
    )


def identity_vector(session: Session, name: str) -> FaceEmbeddingVector | None:
    """The character's identity embedding; ``None`` before its first ``faces extract``."""
    character = character_row(session, name)
    row = session.scalar(
        select(FaceEmbedding).where(
            FaceEmbedding.character_id == character.id, FaceEmbedding.kind == "identity"
        )
    )
    if row is None:
        return None
    return FaceEmbeddingVector.from_raw(
        backend=row.backend, model=row.model, values=np.frombuffer(row.vector, dtype="<f4")
    )


def record_extraction(
    session: Session,
    *,
    name: str,
    refs: list[ReferenceImage],
    paths: list[Path],
    analyses: list[ImageAnalysis],
    identity: IdentityResult,
    choice: tuple[int, str] | None,
    ranking: dict[str, float],
) -> None:
    """Replace the character's face records with one extraction's: each reference's face
    status and details (with its reference score from ``ranking``, by path), the
    IP-Adapter choice (index into ``refs`` and who chose it), and the embeddings.
    """
    character = character_row(session, name)
    session.execute(delete(FaceEmbedding).where(FaceEmbedding.character_id == character.id))
    by_id = {r.id: r for r in reference_rows(session, name)}
    for i, (ref, path, analysis, member) in enumerate(
        zip(refs, paths, analyses, identity.members, strict=True)
    ):
        row = by_id[ref.id]
        report = image_report(ref, path, analysis, member)
        row.face_status = report.status
        row.face_details = {
            **report.model_dump(mode="json", include={"box", "similarity", "reason"}),
            "faces": report.faces,
            "reference_score": ranking.get(str(path)),
        }
        row.ipadapter_reference = choice[1] if choice and choice[0] == i else None
        embedding = analysis.embedding
        if embedding is not None:
            session.add(embedding_row(character.id, ref.id, "image", embedding, report))
    session.add(embedding_row(character.id, None, "identity", identity.vector, None))


def embedding_row(
    character_id: int,
    reference_id: int | None,
    kind: str,
    vector: FaceEmbeddingVector,
    report: FaceImageReport | None,
) -> FaceEmbedding:
    """A ``face_embeddings`` row: an image's embedding (``kind="image"``, with its
    similarity to the identity) or the identity itself (``kind="identity"``)."""
    return FaceEmbedding(
        character_id=character_id,
        reference_image_id=reference_id,
        kind=kind,
        backend=vector.backend,
        model=vector.model,
        dim=vector.dim,
        vector=np.asarray(vector.vector, dtype="<f4").tobytes(),
        details={} if report is None else {"similarity": report.similarity},
    )
