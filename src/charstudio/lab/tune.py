"""``charstudio tune``: a grid over LoRA strength x IP-Adapter strength, measured.

**The choice rule.** Among the cells whose prompt adherence is at least the floor (every
cell, when no adherence model is set: adherence is then "not checked" and the report says
so), the cell with the highest face consistency wins; ties go to the lower strengths (the
smaller sum of the two, then the smaller LoRA strength, then the character weight nearest
its default 0.5), because lower strengths leave the prompt more room for the same identity.
The character weight (identity vs outfit) is an axis only when asked for.

**Applying.** The chosen strengths are written to the character's overrides, with their
provenance (run, LoRA version, date, rates) in ``reports/<name>/tuned.json``, except over a
value the user set by hand (an override that is not the last tuned value): that one is kept
and named, and ``--apply`` overwrites it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from charstudio.errors import InvalidParameter
from charstudio.lab.prompts import DEFAULT_PROMPTS
from charstudio.lab.types import Cell, CellResult, LabPrompt
from charstudio.library import Library
from charstudio.library.profile import Method
from charstudio.library.store import AssetStore
from charstudio.workflows.request import SEED_MAX

__all__ = [
    "DEFAULT_IPADAPTER_STRENGTHS",
    "DEFAULT_LORA_STRENGTHS",
    "MAX_TUNE_IMAGES",
    "Provenance",
    "TunePlan",
    "TuneResult",
    "TuneSpec",
    "apply_choice",
    "choose",
    "parse_strengths",
    "read_provenance",
    "run_folder",
]

# Around the original design's "balanced strengths: LoRA 0.6-0.8, IP-Adapter 0.5-0.7".
DEFAULT_LORA_STRENGTHS = (0.5, 0.6, 0.7, 0.8)
DEFAULT_IPADAPTER_STRENGTHS = (0.4, 0.5, 0.6, 0.7)
# A bigger grid is refused unless confirmed (``--yes``): it says what it would cost.
MAX_TUNE_IMAGES = 200
DEFAULT_ADHERENCE_FLOOR = 0.8


class TuneSpec(BaseModel):
    """What to tune: the axes, prompts, seeds per cell, backend and the adherence floor.

    An axis left ``None`` takes its default when the method uses it; an axis the method
    cannot use (a LoRA axis without a LoRA) is refused, naming what is missing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    lora_strengths: tuple[float, ...] | None = None
    ipadapter_strengths: tuple[float, ...] | None = None
    character_weights: tuple[float, ...] | None = None
    prompts: tuple[LabPrompt, ...] = DEFAULT_PROMPTS
    seeds: int = Field(default=2, ge=1, le=16)
    base_seed: int = Field(default=1000, ge=0, le=SEED_MAX - 10_000)
    backend: str = Field(default="comfyui", min_length=1, max_length=32)
    adherence_floor: float = Field(default=DEFAULT_ADHERENCE_FLOOR, ge=0.0, le=1.0)

    @field_validator("lora_strengths", "ipadapter_strengths", "character_weights")
    @classmethod
    def _strengths(
        cls, values: tuple[float, ...] | None, info: ValidationInfo
    ) -> tuple[float, ...] | None:
        if values is None:
            return None
        if not values:
            raise ValueError("give at least one value (e.g. 0.5,0.6,0.7)")
        if len(values) > 12:
            raise ValueError(f"at most 12 values per axis, got {len(values)}")
        high = 1.0 if info.field_name == "character_weights" else 2.0
        for value in values:
            if not 0.0 <= value <= high:
                what = "a character weight" if high == 1.0 else "a strength"
                raise ValueError(f"{what} must be within 0-{high:g}, got {value}")
        return tuple(sorted({round(v, 4) for v in values}))

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, values: tuple[LabPrompt, ...]) -> tuple[LabPrompt, ...]:
        if not values:
            raise ValueError("give at least one prompt")
        return values


def parse_strengths(text: str | None, label: str) -> tuple[float, ...] | None:
    """A tune axis as the CLI and the studio take it: numbers separated by commas
    (``None``: not given, the axis's default). The range is :class:`TuneSpec`'s to check.

    Raises:
        InvalidParameter: a value that is not a number, or no value at all (``label``, the
            option or field, is named).
    """
    if text is None:
        return None
    values: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            values.append(float(part))
        except ValueError:
            raise InvalidParameter(
                f"{label} takes numbers separated by commas, such as 0.5,0.6,0.7; "
                f"{part!r} is not a number"
            ) from None
    if not values:
        raise InvalidParameter(f"{label} is empty: give strengths such as 0.5,0.6,0.7")
    return tuple(values)


class TunePlan(BaseModel):
    """What a tune run will do, before it does it (``--dry-run``)."""

    model_config = ConfigDict(frozen=True)

    character: str
    method: Method
    lora_version: int | None
    spec: TuneSpec
    run: str
    run_dir: str
    cells: list[Cell]
    images_per_cell: int
    images: int
    cells_done: int
    seconds_per_image: float | None
    estimate_s: float | None
    estimate_basis: str


class Provenance(BaseModel):
    """Where the tuned strengths in a profile came from."""

    model_config = ConfigDict(frozen=True)

    run: str
    lora_version: int | None
    date: datetime
    lora_strength: float | None
    ipadapter_strength: float | None
    face_consistency: float
    character_weight: float | None = None
    prompt_adherence: float | None


class TuneResult(BaseModel):
    """A finished (or resumed) tune run: every cell measured, the choice, what was applied."""

    model_config = ConfigDict(frozen=True)

    plan: TunePlan
    results: list[CellResult]
    chosen: Cell | None
    rule: str
    applied: dict[str, float] = Field(default_factory=dict)
    kept_by_hand: dict[str, float] = Field(default_factory=dict)
    provenance: Provenance | None = None


def run_folder(
    store: AssetStore,
    name: str,
    method: Method,
    version: int | None,
    spec: TuneSpec,
    *,
    kind: str = "tune",
) -> Path:
    """``reports/<name>/<kind>-<hash>``: the same spec, method and LoRA version resume
    there (``kind``: ``tune`` or ``report``)."""
    key = json.dumps(
        {"spec": spec.model_dump(mode="json"), "method": method, "lora_version": version},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return store.reports_dir(name) / f"{kind}-{digest}"


def choose(results: list[CellResult], floor: float) -> tuple[Cell | None, str]:
    """The winning cell by the module's rule, and the rule as applied, in words."""
    measured = [r for r in results if r.rates.prompt_adherence is not None]
    if measured:
        eligible = [r for r in measured if (r.rates.prompt_adherence or 0.0) >= floor]
        rule = (
            f"highest face consistency among cells with prompt adherence >= {floor:.0%}; "
            "ties to the lower strengths"
        )
    else:
        eligible = list(results)
        rule = (
            "highest face consistency (prompt adherence not checked: no adherence model "
            "set); ties to the lower strengths"
        )
    if not eligible:
        return None, f"no cell reached prompt adherence {floor:.0%}: nothing chosen"
    best = min(
        eligible,
        key=lambda r: (
            -r.rates.face_consistency,
            (r.cell.lora_strength or 0.0) + (r.cell.ipadapter_strength or 0.0),
            r.cell.lora_strength or 0.0,
            abs((r.cell.character_weight or 0.5) - 0.5),  # then nearest the default weight
        ),
    )
    return best.cell, rule


def read_provenance(store: AssetStore, name: str) -> Provenance | None:
    """The provenance of the character's tuned strengths, if a tune applied some."""
    path = store.reports_dir(name) / "tuned.json"
    try:
        return Provenance.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def apply_choice(
    library: Library,
    store: AssetStore,
    name: str,
    plan: TunePlan,
    best: CellResult,
    *,
    force: bool,
) -> tuple[dict[str, float], dict[str, float], Provenance | None]:
    """Write the chosen strengths (see the module); returns (applied, kept by hand,
    provenance written)."""
    overrides = library.profile(name).overrides
    before = read_provenance(store, name)
    applied: dict[str, float] = {}
    kept: dict[str, float] = {}
    for key in ("lora_strength", "ipadapter_strength", "character_weight"):
        value = getattr(best.cell, key)
        if value is None:
            continue
        current = overrides.get(key)
        tuned_before = None if before is None else getattr(before, key)
        if current is not None and current != tuned_before and not force:
            kept[key] = float(current)
            continue
        applied[key] = value
    if not applied:
        return applied, kept, None
    library.update(name, overrides=dict(applied))
    provenance = Provenance(
        run=plan.run,
        lora_version=plan.lora_version,
        date=datetime.now(UTC),
        lora_strength=applied.get("lora_strength", before.lora_strength if before else None),
        ipadapter_strength=applied.get(
            "ipadapter_strength", before.ipadapter_strength if before else None
        ),
        character_weight=applied.get(
            "character_weight", before.character_weight if before else None
        ),
        face_consistency=best.rates.face_consistency,
        prompt_adherence=best.rates.prompt_adherence,
    )
    path = store.reports_dir(name) / "tuned.json"
    store.write_bytes(path, provenance.model_dump_json(indent=2).encode("utf-8"))
    return applied, kept, provenance


def check_axes(method: Method, spec: TuneSpec, name: str) -> list[Cell]:
    """The grid's cells for ``method``.

    Raises:
        InvalidParameter: an axis the method cannot use (named, with what is missing).
    """
    uses_lora = method in ("lora_ipadapter", "lora_only")
    uses_ipa = method in ("lora_ipadapter", "ipadapter_only")
    if spec.lora_strengths is not None and not uses_lora:
        raise InvalidParameter(
            f"tuning the LoRA strength needs a LoRA: {name} has none ({method}); train one "
            f"with `charstudio train {name}`, or leave out --lora-strengths"
        )
    if spec.ipadapter_strengths is not None and not uses_ipa:
        raise InvalidParameter(
            f"tuning the IP-Adapter strength needs a face identity ({method}); run "
            f"`charstudio faces extract {name}`, or leave out --ipadapter-strengths"
        )
    loras: tuple[float | None, ...] = (
        (spec.lora_strengths or DEFAULT_LORA_STRENGTHS) if uses_lora else (None,)
    )
    ipas: tuple[float | None, ...] = (
        (spec.ipadapter_strengths or DEFAULT_IPADAPTER_STRENGTHS) if uses_ipa else (None,)
    )
    if spec.character_weights is not None and not uses_ipa:
        raise InvalidParameter(
            f"the character weight moves the IP-Adapter ({method} has none); run "
            f"`charstudio faces extract {name}`, or leave out --character-weights"
        )
    weights: tuple[float | None, ...] = spec.character_weights or (None,)
    return [
        Cell(lora_strength=lo, ipadapter_strength=ip, character_weight=cw)
        for lo in loras
        for ip in ipas
        for cw in weights
    ]
