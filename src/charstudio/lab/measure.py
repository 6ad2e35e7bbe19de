"""Measure one grid cell or report row: generate the fixed prompts x seeds through the
normal generation service, check every image with the QC stage, and keep the result.

:func:`measure` is one recipe:

1. for each prompt (index ``i``), generate ``seeds`` images with seeds
   ``base_seed + i * seeds`` and up, the cell's strengths, the row's method and LoRA
   version, QC gating off (the lab measures, it does not filter); each call is a normal
   ``generate`` job with its own id, so its files and rows are the generation service's;
2. check each image (identity, soundness, adherence) and keep the QC result in its
   ``generations`` row (``params.qc``), as gated generation does;
3. count the rates, overall and per variation.

Every cell and row uses the same prompts and seeds, so they compare. A result is saved as
JSON (atomically) so that a run killed half-way keeps every finished cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from charstudio.backends import GenerateRequest, GenerationService
from charstudio.backends.records import update_generation
from charstudio.backends.types import CancelToken
from charstudio.errors import GenerationCancelled
from charstudio.lab.types import Cell, CellResult, LabPrompt, Rates, ScoredImage, rates_of
from charstudio.library.profile import Method
from charstudio.library.store import AssetStore
from charstudio.qc.checker import QualityChecker
from charstudio.qc.types import QCRequest, QCResult
from charstudio.workflows import Variation

__all__ = ["Measure", "load_result", "save_result", "scored_image", "summarise"]


@dataclass(frozen=True)
class Measure:
    """What every cell of a run shares: the character, backend, prompts and seeds."""

    generation: GenerationService
    checker: QualityChecker
    name: str
    backend: str
    prompts: tuple[LabPrompt, ...]
    seeds: int
    base_seed: int
    method: Method | None = None
    lora_version: int | None = None

    @property
    def images_per_cell(self) -> int:
        return len(self.prompts) * self.seeds

    def __call__(self, cell: Cell, *, cancel: CancelToken | None = None) -> CellResult:
        """Steps 1-3 for one cell.

        Raises:
            GenerationCancelled: cancelled between images.
            UsageError: a request the character cannot take (a strength its method does
                not use, a method its assets do not allow).
            BackendError: the backend failed.
        """
        scored: list[ScoredImage] = []
        method: Method | None = None
        version: int | None = None
        for index, prompt in enumerate(self.prompts):
            if cancel is not None and cancel.cancelled:
                raise GenerationCancelled(f"measuring {self.name} was cancelled")
            request = GenerateRequest(
                prompt=prompt.text,
                variation=prompt.variation,
                seed=self.base_seed + index * self.seeds,
                count=self.seeds,
                backend=self.backend,
                qc=False,
                method=self.method,
                lora_version=self.lora_version,
                lora_strength=cell.lora_strength,
                ipadapter_strength=cell.ipadapter_strength,
                character_weight=cell.character_weight,
            )
            made = self.generation.generate(self.name, request, cancel=cancel)
            method, version = made.method, made.lora_version
            ask = QCRequest(
                character=self.name,
                prompt=prompt.text,
                variation=prompt.variation,
                subject=prompt.text,
            )
            for image in made.images:
                result = self.checker.check(Path(image.path), ask)
                qc = result.model_dump(mode="json")
                update_generation(self.generation.db, image.generation_id, qc=qc)
                scored.append(
                    scored_image(
                        image.path,
                        image.seed,
                        index,
                        prompt.variation,
                        image.generation_id,
                        result,
                    )
                )
        assert method is not None  # prompts are never empty
        return _result(cell, method, version, scored)


def scored_image(
    path: str,
    seed: int,
    index: int,
    variation: Variation | None,
    generation_id: int,
    result: QCResult,
) -> ScoredImage:
    """One image's QC result as the lab counts it (identity passed; adherence passed, or
    ``None`` when no adherence scorer measured it)."""
    identity = result.get("identity")
    entries = [result.get("adherence_clip"), result.get("adherence_tags")]
    checked = [e for e in entries if e is not None and e.status != "not_checked"]
    return ScoredImage(
        path=path,
        seed=seed,
        prompt=index,
        variation=variation,
        generation_id=generation_id,
        identity=result.identity,
        identity_passed=identity is not None and identity.passed,
        adherence=result.adherence,
        adherence_passed=all(e.passed for e in checked) if checked else None,
        passed=result.passed,
        reasons=list(result.reasons),
    )


def summarise(images: list[ScoredImage]) -> tuple[Rates, dict[str, Rates]]:
    """The rates of ``images``, overall and per variation (``plain``: no variation)."""
    variations: list[str] = sorted({i.variation or "plain" for i in images})
    per_variation = {
        v: rates_of([i for i in images if (i.variation or "plain") == v]) for v in variations
    }
    return rates_of(images), per_variation


def _result(
    cell: Cell, method: Method, version: int | None, scored: list[ScoredImage]
) -> CellResult:
    rates, per_variation = summarise(scored)
    return CellResult(
        cell=cell,
        method=method,
        lora_version=version,
        images=scored,
        rates=rates,
        per_variation=per_variation,
        finished_at=datetime.now(UTC),
    )


def save_result(store: AssetStore, path: Path, result: CellResult) -> None:
    """Write a measured cell atomically (a kill leaves the old file or none)."""
    store.write_bytes(path, result.model_dump_json(indent=2).encode("utf-8"))


def load_result(path: Path) -> CellResult | None:
    """A saved cell, or ``None`` when absent or unreadable (then it is measured again)."""
    try:
        return CellResult.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None
