"""The identity files of the original design, made honest: ``<name>_face.{pt,npy,json}``.

``.pt`` holds the identity vector as a float32 torch tensor (what the original system
saved), ``.npy`` the same vector for tools without torch, and ``.json`` says what it is:
backend, model, dimension, the same-person threshold, and the reference images (by
SHA-256) that went into it and were left out.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from charstudio.errors import storage_errors
from charstudio.faces.types import IdentityResult

__all__ = ["IdentityFiles", "identity_files", "write_identity_files"]


@dataclass(frozen=True)
class IdentityFiles:
    pt: Path
    npy: Path
    json: Path


def identity_files(folder: Path, name: str) -> IdentityFiles:
    """Where a character's identity files live."""
    stem = folder / f"{name}_face"
    return IdentityFiles(
        pt=stem.with_suffix(".pt"), npy=stem.with_suffix(".npy"), json=stem.with_suffix(".json")
    )


@contextlib.contextmanager
def write_identity_files(
    files: IdentityFiles, identity: IdentityResult, *, sources: list[str], paths: list[str]
) -> Iterator[Callable[[], None]]:
    """Write the three files under temporary names; the yielded function renames them in.

    Call the function only once the library records are committed; if it is never
    called (an error in between), the temporary files are removed and the previous
    identity files stay as they were.

    Args:
        files: the destinations.
        identity: the identity to save.
        sources: SHA-256 of every reference image, in the order of ``identity.members``.
        paths: the stored path of every reference image, same order.
    """
    import torch  # heavy; only needed here

    folder = files.pt.parent
    with storage_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    vector = np.asarray(identity.vector.vector, dtype=np.float32)
    by_path = dict(zip(paths, sources, strict=True))
    meta = {
        "backend": identity.vector.backend,
        "model": identity.vector.model,
        "dim": identity.vector.dim,
        "threshold": identity.threshold,
        "metric": "cosine similarity of L2-normalised embeddings",
        "created_at": datetime.now(UTC).isoformat(),
        "inliers": [by_path[m.source] for m in identity.inliers],
        "left_out": [
            {"sha256": by_path[m.source], "status": m.status, "reason": m.reason}
            for m in identity.members
            if not m.inlier
        ],
    }
    temps: dict[Path, Path] = {}
    try:
        for final in (files.pt, files.npy, files.json):
            with storage_errors(final):
                handle, name = tempfile.mkstemp(prefix=".tmp-", suffix=final.suffix, dir=folder)
                temps[final] = Path(name)
                with os.fdopen(handle, "wb") as out:
                    if final.suffix == ".pt":
                        torch.save(torch.from_numpy(vector.copy()), out)
                    elif final.suffix == ".npy":
                        np.save(out, vector)
                    else:
                        out.write((json.dumps(meta, indent=2) + "\n").encode())

        def commit() -> None:
            with storage_errors(folder):
                for final, temp in temps.items():
                    temp.replace(final)
            temps.clear()

        yield commit
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
