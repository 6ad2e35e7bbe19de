"""Accepting a generated image: its workflow saved to ``workflows/generated/`` to reproduce it.

The stored PNG already carries the graph that ran and the full parameters
(:mod:`charstudio.backends.outputs`); accepting rebuilds the graph builders' request from
those parameters, saves request, graph and result with
:func:`~charstudio.workflows.save_generated`, and marks the ``generations`` row accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from charstudio.backends.outputs import read_parameters
from charstudio.errors import DatabaseError, NotFound
from charstudio.library import AssetStore, Database, from_stored
from charstudio.library.models import Character, Generation
from charstudio.library.profile import GenerationParams
from charstudio.workflows import AcceptedResult, WorkflowRequest, save_generated

__all__ = ["accept_generated"]


def accept_generated(
    store: AssetStore,
    db: Database,
    *,
    generation_id: int,
    identity_similarity: float | None = None,
) -> Path:
    """Save the workflow of generation ``generation_id`` and mark it accepted.

    Args:
        store: The data root (``workflows/generated/``).
        db: The database holding the ``generations`` row.
        generation_id: The row's id (``GeneratedImage.generation_id``).
        identity_similarity: The image's identity score, if it was measured.

    Returns:
        The saved ``workflows/generated/<character>_<job>_<seed>.json``.

    Raises:
        NotFound: no such generation, or its image file is gone.
        StorageError: the folder cannot be written.
    """
    try:
        with db.sessions.begin() as session:
            # Ids are INTEGER columns: 32-bit on PostgreSQL, so a larger id is nobody's.
            fits = 1 <= generation_id <= 2**31 - 1
            row = session.get(Generation, generation_id) if fits else None
            if row is None:
                raise NotFound(f"no generated image with id {generation_id}")
            character = session.get(Character, row.character_id)
            assert character is not None  # the foreign key cascades deletes
            image = from_stored(store.home, row.path)
            if not image.is_file():
                raise NotFound(f"the image {image} is gone: generate it again to accept it")
            stored = read_parameters(image)
            request = _request(stored["parameters"], trigger_word=character.trigger_word)
            result = AcceptedResult(
                prompt_id=str(stored["parameters"].get("prompt_id") or ""),
                server=str(stored["parameters"].get("server") or ""),
                images=[str(image)],
                identity_similarity=identity_similarity,
            )
            path = save_generated(
                store.generated_workflows_dir,
                request=request,
                graph=stored["prompt"],
                result=result,
            )
            row.accepted = True
    except SQLAlchemyError as exc:
        raise DatabaseError(f"database error: {exc}; check the data directory") from exc
    return path


def _request(p: dict[str, Any], *, trigger_word: str) -> WorkflowRequest:
    width, height = p.get("size") or (None, None)
    # Images stored before the controls joined the parameters keep them beside them.
    params = {
        **{key: p[key] for key in ("negative_prompt", "sampler", "scheduler") if p.get(key)},
        **p["params"],
    }
    optional = {"ipadapter_preset": p["ipadapter_preset"]} if p.get("ipadapter_preset") else {}
    return WorkflowRequest(
        character=p["character"],
        job=p["job"],
        trigger_word=trigger_word,
        prompt=p["prompt"],
        variation=p.get("variation"),
        method=p["method"],
        params=GenerationParams.model_validate(params),
        seed=int(p["seed"]),
        checkpoint=p["checkpoint"],
        family=p.get("family", "sd15"),
        width=width,
        height=height,
        lora=p.get("lora"),
        reference_image=Path(p["reference"]).name if p.get("reference") else None,
        **optional,
    )
