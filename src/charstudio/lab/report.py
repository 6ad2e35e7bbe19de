"""``charstudio report``: the original design's "Expected Results" table, measured.

One row per method the character's assets allow (img2img, ipadapter_only, lora_only,
lora_ipadapter) plus the tuned strengths when a tune applied some, each generated from the
same prompts and seeds (``charstudio.lab.measure``) and checked by QC; one row per ready
LoRA version when there are several, with a suggestion of which to promote. Or, with
``--from-history``, the same table read from every generation QC has scored (gated jobs,
tune runs, earlier reports), grouped by method, LoRA version and strengths.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select

from charstudio.lab.measure import scored_image, summarise
from charstudio.lab.tune import TuneResult
from charstudio.lab.types import Cell, LabPrompt, Rates, ScoredImage
from charstudio.library.database import Database
from charstudio.library.models import Character, Generation
from charstudio.library.names import name_key
from charstudio.library.profile import Method
from charstudio.library.stored_paths import from_stored
from charstudio.qc.types import QCResult

__all__ = ["ConsistencyReport", "ReportRow", "history_rows", "suggest_version"]

# The design's table, for the rows' "expected" column.
EXPECTED: dict[str, str] = {
    "img2img": "20-40 %",
    "lora_only": "70-80 %",
    "ipadapter_only": "70-80 %",
    "lora_ipadapter": "90-95 %",
    "tuned": "95 %+",
}


class ReportRow(BaseModel):
    """One measured row: a method (and LoRA version, strengths) with its rates."""

    model_config = ConfigDict(frozen=True)

    label: str
    method: Method
    lora_version: int | None
    cell: Cell
    rates: Rates
    per_variation: dict[str, Rates]
    expected: str | None = None
    images: list[ScoredImage]


class ConsistencyReport(BaseModel):
    """The measured "Expected Results" of one character."""

    model_config = ConfigDict(frozen=True)

    character: str
    source: Literal["measured", "history"]
    created: datetime
    prompts: list[LabPrompt]
    seeds: int | None
    rows: list[ReportRow]
    versions: list[ReportRow]
    suggestion: str | None
    notes: list[str]
    tune: TuneResult | None = None
    html: str | None = None


def suggest_version(
    versions: list[ReportRow], promoted: int | None, name: str
) -> tuple[str | None, list[str]]:
    """Which LoRA version to promote (best face consistency, then adherence; a tie keeps
    the promoted one, then the newer), and a note for every newer version that measures
    worse than the one before it."""
    if len(versions) < 2:
        return None, []
    ranked = sorted(
        versions,
        key=lambda r: (
            r.rates.face_consistency,
            r.rates.prompt_adherence or 0.0,
            r.lora_version == promoted,
            r.lora_version or 0,
        ),
        reverse=True,
    )
    best = ranked[0]
    notes = []
    by_version = sorted(versions, key=lambda r: r.lora_version or 0)
    for older, newer in pairwise(by_version):
        if newer.rates.face_consistency < older.rates.face_consistency:
            notes.append(
                f"LoRA v{newer.lora_version} is worse than v{older.lora_version}: face "
                f"consistency {newer.rates.face_consistency:.0%} vs "
                f"{older.rates.face_consistency:.0%}"
            )
    if best.lora_version == promoted:
        return f"keep v{promoted} promoted: it measures best", notes
    return (
        f"promote v{best.lora_version} (`charstudio lora promote {name} {best.lora_version}`): "
        f"face consistency {best.rates.face_consistency:.0%}",
        notes,
    )


def history_rows(db: Database, home: Path, name: str) -> tuple[str, list[ReportRow]]:
    """Every QC-scored generation of ``name``, grouped by method, LoRA version and strengths
    (the character's stored name, and its rows, best first); images are files under the
    data root ``home``."""
    groups: dict[tuple[Any, ...], list[ScoredImage]] = defaultdict(list)
    with db.sessions() as session:
        character = session.scalar(select(Character).where(Character.name_key == name_key(name)))
        stored = character.name if character is not None else name
        rows = (
            []
            if character is None
            else session.scalars(
                select(Generation).where(Generation.character_id == character.id)
            ).all()
        )
        for row in rows:
            params = row.params or {}
            try:
                qc = QCResult.model_validate(params["qc"])
            except (KeyError, ValidationError):
                continue  # never checked (--no-qc, or generated before QC)
            strengths = params.get("params") or {}
            key = (
                row.method,
                params.get("lora_version"),
                strengths.get("lora_strength"),
                strengths.get("ipadapter_strength"),
                strengths.get("character_weight"),
            )
            groups[key].append(_from_history(row, from_stored(home, row.path), params, qc))
    found = []
    for (method, version, lora, ipa, weight), images in groups.items():
        cell = Cell(lora_strength=lora, ipadapter_strength=ipa, character_weight=weight)
        label = method + (f" v{version}" if version else "") + f" ({cell.label()})"
        rates, per_variation = summarise(images)
        found.append(
            ReportRow(
                label=label,
                method=method,
                lora_version=version,
                cell=cell,
                rates=rates,
                per_variation=per_variation,
                expected=EXPECTED.get(method),
                images=images,
            )
        )
    found.sort(key=lambda r: (-r.rates.face_consistency, r.label))
    return stored, found


def _from_history(
    row: Generation, image: Path, params: dict[str, Any], qc: QCResult
) -> ScoredImage:
    return scored_image(str(image), row.seed, 0, params.get("variation"), row.id, qc)


def now() -> datetime:
    return datetime.now(UTC)
