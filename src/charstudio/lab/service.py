"""The consistency lab: tune a character's strengths, and measure its Expected Results.

It joins the generation service (images through the normal backends), the QC stage (every
image checked) and the library (profiles, LoRA versions); see ``tune`` and ``report`` for
the rules, ``measure`` for how one cell or row is measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from charstudio.backends import GenerationService
from charstudio.backends.types import CancelToken
from charstudio.errors import InvalidParameter, NotFound
from charstudio.lab.measure import Measure, load_result, save_result
from charstudio.lab.report import (
    EXPECTED,
    ConsistencyReport,
    ReportRow,
    history_rows,
    now,
    suggest_version,
)
from charstudio.lab.tune import (
    MAX_TUNE_IMAGES,
    TunePlan,
    TuneResult,
    TuneSpec,
    apply_choice,
    check_axes,
    choose,
    read_provenance,
    run_folder,
)
from charstudio.lab.types import Cell, CellResult
from charstudio.library import Library
from charstudio.library.assets import ready_lora_files
from charstudio.library.database import Database
from charstudio.library.models import Generation, Job
from charstudio.library.profile import CharacterConsistencyProfile, Method
from charstudio.library.store import AssetStore
from charstudio.qc import QCService

__all__ = ["LabService", "Progress", "busy_seconds"]

Progress = Callable[[int, int, str], None]
# QC's cost per image on the 2-core CPU (bench/qc.py), added to the generation estimate.
QC_SECONDS_PER_IMAGE = 0.3


@dataclass
class LabService:
    """Tune runs and reports of the characters of one library."""

    library: Library
    store: AssetStore
    db: Database
    generation: GenerationService
    qc: QCService

    # -- tune ---------------------------------------------------------------------------
    def plan_tune(self, name: str, spec: TuneSpec) -> TunePlan:
        """What ``tune`` would do: cells, images, cells already measured, time estimate.

        Raises:
            NotFound: no such character, or no face identity (nothing to score with).
            InvalidParameter: an axis the character's method cannot use.
        """
        self.qc.checker(name)  # NotFound: "run faces extract" before anything else
        profile = self.library.profile(name)
        method: Method = "lora_ipadapter" if profile.has_lora else "ipadapter_only"
        cells = check_axes(method, spec, profile.name)
        version = profile.lora_version if profile.has_lora else None
        folder = run_folder(self.store, profile.name, method, version, spec)
        done = sum(load_result(_cell_file(folder, c)) is not None for c in cells)
        per_cell = len(spec.prompts) * spec.seeds
        speed, basis = self._speed(spec.backend)
        remaining = (len(cells) - done) * per_cell
        return TunePlan(
            character=profile.name,
            method=method,
            lora_version=version,
            spec=spec,
            run=folder.name,
            run_dir=str(folder),
            cells=cells,
            images_per_cell=per_cell,
            images=len(cells) * per_cell,
            cells_done=done,
            seconds_per_image=speed,
            estimate_s=None if speed is None else round(remaining * (speed + QC_SECONDS_PER_IMAGE)),
            estimate_basis=basis,
        )

    def tune(
        self,
        name: str,
        spec: TuneSpec,
        *,
        yes: bool = False,
        apply: bool = True,
        force: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> TuneResult:
        """Measure every cell (keeping those measured before), choose, and apply.

        Steps:
            1. Plan; refuse a grid over :data:`MAX_TUNE_IMAGES` images unless ``yes``.
            2. Measure each cell not measured yet; save it at once (a kill keeps it).
            3. Choose by the rule (``charstudio.lab.tune``); apply unless ``apply`` is off,
               over a hand-set value only with ``force``.

        Raises:
            InvalidParameter: a grid over the limit without ``yes``; bad axes.
            NotFound: no character or identity.
            GenerationCancelled: cancelled (finished cells are kept).
        """
        # 1. Plan.
        plan = self.plan_tune(name, spec)
        if plan.images > MAX_TUNE_IMAGES and not yes:
            cost = "" if plan.estimate_s is None else f", about {plan.estimate_s / 60:.0f} min"
            raise InvalidParameter(
                f"this grid is {len(plan.cells)} cells x {plan.images_per_cell} images = "
                f"{plan.images} images{cost}, over {MAX_TUNE_IMAGES}; confirm with --yes, or "
                "use fewer strengths, prompts or --seeds"
            )
        folder = Path(plan.run_dir)
        self.store.write_bytes(folder / "plan.json", plan.model_dump_json(indent=2).encode())
        # 2. Measure.
        measure = self._measure(plan.character, spec, plan.method, plan.lora_version)
        results = []
        for index, cell in enumerate(plan.cells):
            if progress is not None:
                progress(index, len(plan.cells), f"cell {cell.label()}")
            found = load_result(_cell_file(folder, cell))
            if found is None:
                found = measure(cell, cancel=cancel)
                save_result(self.store, _cell_file(folder, cell), found)
            results.append(found)
        if progress is not None:
            progress(len(plan.cells), len(plan.cells), "measured")
        # 3. Choose and apply.
        chosen, rule = choose(results, spec.adherence_floor)
        result = TuneResult(plan=plan, results=results, chosen=chosen, rule=rule)
        if chosen is not None and apply:
            best = next(r for r in results if r.cell == chosen)
            applied, kept, provenance = apply_choice(
                self.library, self.store, plan.character, plan, best, force=force
            )
            result = result.model_copy(
                update={"applied": applied, "kept_by_hand": kept, "provenance": provenance}
            )
        self.store.write_bytes(folder / "result.json", result.model_dump_json(indent=2).encode())
        return result

    def latest_tune(self, name: str) -> TuneResult | None:
        """The newest finished tune run of ``name``, if any."""
        stored = self.library.get_name(name)
        found = sorted(
            self.store.reports_dir(stored).glob("tune-*/result.json"),
            key=lambda p: p.stat().st_mtime,
        )
        for path in reversed(found):
            try:
                return TuneResult.model_validate_json(path.read_bytes())
            except (OSError, ValueError):
                continue
        return None

    def apply_latest(self, name: str) -> TuneResult:
        """Apply the newest run's choice, over hand-set values too (the studio's button).

        Raises:
            NotFound: no finished tune run, or it chose nothing.
        """
        result = self.latest_tune(name)
        if result is None or result.chosen is None:
            raise NotFound(f"no tune result to apply for {name}: run `charstudio tune {name}`")
        best = next(r for r in result.results if r.cell == result.chosen)
        applied, kept, provenance = apply_choice(
            self.library, self.store, result.plan.character, result.plan, best, force=True
        )
        return result.model_copy(
            update={"applied": applied, "kept_by_hand": kept, "provenance": provenance}
        )

    # -- report -------------------------------------------------------------------------
    def report(
        self,
        name: str,
        spec: TuneSpec,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> ConsistencyReport:
        """Measure one row per method (and the tuned strengths, and each LoRA version).

        Raises:
            NotFound: no character or identity.
            GenerationCancelled: cancelled (finished rows are kept for the next run).
        """
        self.qc.checker(name)
        profile = self.library.profile(name)
        rows_wanted = self._rows(profile)
        folder = run_folder(self.store, profile.name, "img2img", None, spec, kind="report")
        measured: list[ReportRow] = []
        versions: list[ReportRow] = []
        for index, (label, method, version, cell, is_version) in enumerate(rows_wanted):
            if progress is not None:
                progress(index, len(rows_wanted), label)
            # Keyed by what makes the images: a new tune or a new promoted LoRA is measured.
            used = version or (profile.lora_version if method.startswith("lora") else None)
            path = folder / "rows" / f"{method}_v{used or 0}_{cell.key}.json"
            found = load_result(path)
            if found is None:
                found = self._measure(profile.name, spec, method, version)(cell, cancel=cancel)
                save_result(self.store, path, found)
            row = _row(label, found)
            (versions if is_version else measured).append(row)
        if progress is not None:
            progress(len(rows_wanted), len(rows_wanted), "measured")
        suggestion, notes = suggest_version(versions, profile.lora_version, profile.name)
        return ConsistencyReport(
            character=profile.name,
            source="measured",
            created=now(),
            prompts=list(spec.prompts),
            seeds=spec.seeds,
            rows=measured,
            versions=versions,
            suggestion=suggestion,
            notes=notes + _adherence_note(measured),
            tune=self.latest_tune(profile.name),
        )

    def report_from_history(self, name: str) -> ConsistencyReport:
        """The report read from every QC-scored generation, generating nothing.

        Raises:
            NotFound: no such character, or no scored generation (says what to run).
        """
        stored = self.library.get_name(name)
        _, rows = history_rows(self.db, self.store.home, stored)
        if not rows:
            raise NotFound(
                f"no QC-scored generations of {stored} yet: generate with QC "
                f"(`charstudio generate {stored} ...`), `charstudio tune {stored}` or "
                f"`charstudio report {stored}` (which generates)"
            )
        versions = [r for r in rows if r.lora_version is not None]
        best_per_version: dict[int, ReportRow] = {}
        for row in versions:
            version = row.lora_version or 0
            if (
                version not in best_per_version
                or row.rates.images > best_per_version[version].rates.images
            ):
                best_per_version[version] = row
        suggestion, notes = suggest_version(
            list(best_per_version.values()), self.library.profile(stored).lora_version, stored
        )
        return ConsistencyReport(
            character=stored,
            source="history",
            created=now(),
            prompts=[],
            seeds=None,
            rows=rows,
            versions=sorted(best_per_version.values(), key=lambda r: r.lora_version or 0),
            suggestion=suggestion,
            notes=notes + _adherence_note(rows),
            tune=self.latest_tune(stored),
        )

    # -- helpers ------------------------------------------------------------------------
    def _measure(self, name: str, spec: TuneSpec, method: Method, version: int | None) -> Measure:
        return Measure(
            generation=self.generation,
            checker=self.qc.checker(name),
            name=name,
            backend=spec.backend,
            prompts=spec.prompts,
            seeds=spec.seeds,
            base_seed=spec.base_seed,
            method=method,
            lora_version=version,
        )

    def _rows(
        self, profile: CharacterConsistencyProfile
    ) -> list[tuple[str, Method, int | None, Cell, bool]]:
        """(label, method, LoRA version, strengths, is a version row) of every row."""
        name, assets_methods = profile.name, profile.available_methods
        rows: list[tuple[str, Method, int | None, Cell, bool]] = [
            (method, method, None, Cell(), False) for method in reversed(assets_methods)
        ]
        tuned = read_provenance(self.store, name)
        if tuned is not None:
            method: Method = (
                "lora_ipadapter" if tuned.lora_strength is not None else "ipadapter_only"
            )
            if method in assets_methods:
                cell = Cell(
                    lora_strength=tuned.lora_strength, ipadapter_strength=tuned.ipadapter_strength
                )
                rows.append(("tuned", method, None, cell, False))
        ready = self._ready_versions(name)
        if len(ready) > 1:
            method = "lora_ipadapter" if profile.has_embedding else "lora_only"
            rows += [(f"{method} v{v}", method, v, Cell(), True) for v in ready]
        return rows

    def _ready_versions(self, name: str) -> list[int]:
        """The LoRA versions a report can measure: ready, with their file."""
        with self.db.sessions() as session:
            return [version for version, _ in ready_lora_files(session, self.store, name)]

    def _speed(self, backend: str) -> tuple[float | None, str]:
        """Seconds per image of the backend's recent generations (the newest 20 jobs): the
        time some of those jobs were running, overlaps counted once, over their images.

        Summing each job's own span would count a wait behind another job (for a worker
        thread or a ComfyUI server) as time spent on its images, so jobs run side by side
        would look slower than they were."""
        with self.db.sessions() as session:
            rows = session.execute(
                select(Job.started_at, Job.finished_at, func.count(Generation.id))
                .join(Generation, Generation.job_id == Job.id)
                .where(
                    Job.kind == "generate", Job.state == "succeeded", Generation.backend == backend
                )
                .group_by(Job.id)
                .order_by(Job.finished_at.desc())
                .limit(20)
            ).all()
        spans = [(start, end, count) for start, end, count in rows if start and end and count]
        images = sum(count for _, _, count in spans)
        if not images:
            return None, f"unknown: no finished generation on {backend} yet"
        speed = busy_seconds([(start, end) for start, end, _ in spans]) / images
        return round(speed, 3), (
            f"{speed:.2f} s per image over the last {images} on {backend} (the time their "
            "jobs ran, overlaps counted once)"
        )


def busy_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    """How long at least one of ``spans`` was running: the length of their union."""
    total, reach = 0.0, None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            total += (end - start).total_seconds()
            reach = end
        elif end > reach:
            total += (end - reach).total_seconds()
            reach = end
    return total


def _cell_file(folder: Path, cell: Cell) -> Path:
    return folder / "cells" / f"{cell.key}.json"


def _row(label: str, found: CellResult) -> ReportRow:
    return ReportRow(
        label=label,
        method=found.method,
        lora_version=found.lora_version,
        cell=found.cell,
        rates=found.rates,
        per_variation=found.per_variation,
        expected=EXPECTED.get("tuned" if label == "tuned" else found.method),
        images=found.images,
    )


def _adherence_note(rows: list[ReportRow]) -> list[str]:
    if rows and all(r.rates.prompt_adherence is None for r in rows):
        return [
            "prompt adherence not checked: no adherence model is set "
            "(CHARSTUDIO_QC_CLIP_MODEL or CHARSTUDIO_QC_TAGGER)"
        ]
    return []
