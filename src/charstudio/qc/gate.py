"""Gated generation: generate, check every image, regenerate the failures.

:func:`generate_checked` is one recipe:

1. record the job (unless the queue did) under one job id for every round;
2. generate ``count x candidates`` images (seeds as the request says: given or drawn);
3. check each image; per requested image keep the best *passing* candidate by the
   **combined score** ``(identity similarity, adherence)`` compared in that order (a
   score not measured counts as lowest), so identity decides and adherence breaks ties;
4. while requested images are missing and the extra-attempt budget is left, generate one
   image per missing one with the **next unused seeds** (the seed after the highest used)
   and check it; the budget is ``policy.extra_attempts`` images per requested image;
5. move every image not kept to ``outputs/<name>/<job>/rejected/`` (the PNG as generated,
   unchanged, so its sha256 still matches) with its QC result beside it in a sidecar
   ``<file stem>.qc.json``; every image's QC result is also stored in its ``generations``
   row (``params["qc"]``), kept or not;
6. close the job with the :class:`CheckedResult`: state ``partial`` when the budget ran out.

**File names across rounds.** Every round runs under the same job id, so every image lies
in the job's one folder; the service names files ``<name>_<job>_<NN>_<seed>.png`` with
``NN`` the index within its round, and later rounds only ever use seeds above every seed
used before, so no two images of a job share a name. The service is not extended.

**Job state.** A job whose budget ran out ends ``partial`` (its result has ``partial: true``
and lists what was kept and rejected), not ``succeeded``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from charstudio.backends import GenerateRequest, GenerationResult, GenerationService
from charstudio.backends.records import finish_job, start_job, update_generation
from charstudio.backends.service_types import GeneratedImage
from charstudio.backends.types import MAX_COUNT, CancelToken, ProgressSink
from charstudio.errors import GenerationCancelled, InvalidParameter, storage_errors
from charstudio.qc.checker import QualityChecker
from charstudio.qc.types import QCRequest, QCResult
from charstudio.workflows.request import SEED_MAX

__all__ = [
    "CheckedImage",
    "CheckedResult",
    "RejectedImage",
    "combined_score",
    "generate_checked",
    "generate_gated",
    "next_seeds",
]

NOT_BEST = "candidate: a better-scoring candidate was kept for this image"


class CheckedImage(BaseModel):
    """A kept image and its QC result."""

    model_config = ConfigDict(frozen=True)

    image: GeneratedImage
    qc: QCResult


class RejectedImage(BaseModel):
    """An image not kept: where it lies now (``rejected/``), why, and its QC result."""

    model_config = ConfigDict(frozen=True)

    image: GeneratedImage
    reasons: list[str]
    qc: QCResult
    qc_file: str


class CheckedResult(GenerationResult):
    """What a gated ``generate`` made: a :class:`GenerationResult` whose ``images`` are the
    kept ones, plus the QC story.

    Attributes:
        qc: ``True`` (the ``--no-qc`` path returns a plain :class:`GenerationResult`).
        kept: the kept images with their QC results (same order as ``images``).
        rejected: every image not kept, with reasons.
        requested: images asked for.
        attempts: images generated in all (first round and every retry).
        extra_attempts: images generated beyond the first round.
        partial: fewer than ``requested`` images passed before the budget ran out.
        face_consistency: share of checked images whose identity check passed; ``None``
            when identity was not checked (no face identity, only an adherence model).
        prompt_adherence: share of adherence-checked images whose adherence passed;
            ``None`` when no adherence model is set.
    """

    qc: bool = True
    kept: list[CheckedImage]
    rejected: list[RejectedImage]
    requested: int
    attempts: int
    extra_attempts: int
    partial: bool
    face_consistency: float | None
    prompt_adherence: float | None


def combined_score(result: QCResult) -> tuple[float, float]:
    """Best-of-N order: identity similarity first, adherence second (unmeasured lowest)."""
    low = float("-inf")
    identity = result.identity
    adherence = result.adherence
    return (low if identity is None else identity, low if adherence is None else adherence)


@dataclass
class _Round:
    """What the rounds so far made: each image with its QC, and the kept ones by slot."""

    request: GenerateRequest
    slots: list[CheckedImage | None]
    checked: list[CheckedImage]
    seeds: list[int]
    first: GenerationResult | None = None

    @property
    def missing(self) -> int:
        return sum(slot is None for slot in self.slots)


def generate_checked(
    generation: GenerationService,
    checker: QualityChecker,
    name: str,
    request: GenerateRequest,
    *,
    progress: ProgressSink | None = None,
    cancel: CancelToken | None = None,
    job_id: str | None = None,
) -> CheckedResult:
    """Generate ``request.count`` images of ``name`` that pass ``checker`` (see the module).

    Args:
        job_id: The queued job this runs under; without one the gate records its own job.

    Raises:
        UsageError: bad input (see :meth:`GenerationService.plan`).
        BackendError: the backend failed.
        GenerationCancelled: cancelled (the job is marked so when the gate owns it).
    """
    # 1. One job id for every round (after the checks).
    _check_round_size(request, checker.policy.candidates)
    owns_job = job_id is None
    job = job_id or f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    planned = generation.plan(name, request, job_id=job)
    if owns_job:
        summary = {"prompt": request.prompt, "variation": request.variation, "count": request.count}
        start_job(generation.db, job_id=job, character=planned.request.character, params=summary)
    try:
        result = _rounds(generation, checker, name, request, progress, cancel, job)
    except GenerationCancelled as exc:
        if owns_job:
            finish_job(generation.db, job_id=job, state="cancelled", error=str(exc))
        raise
    except KeyboardInterrupt:
        if owns_job:
            finish_job(generation.db, job_id=job, state="cancelled", error="interrupted")
        raise
    except Exception as exc:
        if owns_job:
            finish_job(generation.db, job_id=job, state="failed", error=str(exc))
        raise
    # 6. Close the job.
    if owns_job:
        dumped = result.model_dump(mode="json")
        state = "partial" if result.partial else "succeeded"
        finish_job(generation.db, job_id=job, state=state, result=dumped)
    return result


def generate_gated(
    generation: GenerationService,
    gate: Callable[[str], QualityChecker | None],
    name: str,
    request: GenerateRequest,
    *,
    progress: ProgressSink | None = None,
    cancel: CancelToken | None = None,
    job_id: str | None = None,
) -> GenerationResult:
    """What ``generate`` (CLI, jobs) runs: :func:`generate_checked` when ``request.qc`` and
    there is something to check against (``gate``: ``services.qc.gate``, a checker when the
    character has a face identity or an adherence model is set), else the plain generation
    (every image kept, a :class:`GenerationResult`)."""
    checker = None
    if request.qc:
        generation.plan(name, request)  # bad input is reported as such, not as "no identity"
        checker = gate(name)
    if checker is None:
        return generation.generate(name, request, progress=progress, cancel=cancel, job_id=job_id)
    return generate_checked(
        generation, checker, name, request, progress=progress, cancel=cancel, job_id=job_id
    )


def _check_round_size(request: GenerateRequest, candidates: int) -> None:
    """The first round makes ``count x candidates`` images: at most MAX_COUNT."""
    if request.count * candidates > MAX_COUNT:
        raise InvalidParameter(
            f"count {request.count} x {candidates} candidate(s) per image is "
            f"{request.count * candidates} images in one round, more than {MAX_COUNT}; ask "
            f"for at most {MAX_COUNT // candidates} image(s), or lower the character's "
            "qc_candidates (charstudio character set NAME --qc-candidates N)"
        )


def next_seeds(used: Sequence[int], take: int) -> int:
    """The first of ``take`` consecutive unused seeds for a retry: just above every seed
    used, or, when that would pass SEED_MAX, just below every seed used."""
    start = max(used) + 1
    if start + take - 1 <= SEED_MAX:
        return start
    return min(used) - take  # the first round's seeds are consecutive, count <= MAX_COUNT


def _rounds(
    generation: GenerationService,
    checker: QualityChecker,
    name: str,
    request: GenerateRequest,
    progress: ProgressSink | None,
    cancel: CancelToken | None,
    job: str,
) -> CheckedResult:
    """Steps 2-5: the first round, the retries, the rejected folder."""
    policy = checker.policy
    ask = QCRequest(
        character=name, prompt=request.prompt, variation=request.variation, subject=request.prompt
    )
    state = _Round(request=request, slots=[None] * request.count, checked=[], seeds=[])
    rejected: list[tuple[CheckedImage, list[str]]] = []
    # 2-3. The first round: N candidates per requested image, the best passing one kept.
    n = policy.candidates
    first = request.model_copy(update={"count": request.count * n})
    made = generation.generate(name, first, progress=progress, cancel=cancel, job_id=job)
    state.first = made
    checked = _check(generation, checker, made.images, ask, state)
    for slot in range(request.count):
        group = checked[slot * n : (slot + 1) * n]
        passing = [c for c in group if c.qc.passed]
        best = max(passing, key=lambda c: combined_score(c.qc), default=None)
        state.slots[slot] = best
        rejected += [(c, list(c.qc.reasons) or [NOT_BEST]) for c in group if c is not best]
    # 4. Retries with the next unused seeds.
    budget = policy.extra_attempts * request.count
    extra = 0
    while state.missing and budget > 0:
        take = min(state.missing, budget)
        more = request.model_copy(update={"seed": next_seeds(state.seeds, take), "count": take})
        again = generation.generate(name, more, progress=progress, cancel=cancel, job_id=job)
        budget, extra = budget - take, extra + take
        for item in _check(generation, checker, again.images, ask, state):
            if item.qc.passed:
                state.slots[state.slots.index(None)] = item
            else:
                rejected.append((item, list(item.qc.reasons)))
    # 5. The rejected folder.
    moved = [_reject(generation, item, reasons) for item, reasons in rejected]
    return _result(state, moved, extra)


def _check(
    generation: GenerationService,
    checker: QualityChecker,
    images: Sequence[GeneratedImage],
    ask: QCRequest,
    state: _Round,
) -> list[CheckedImage]:
    """Check each image; its QC result goes into its ``generations`` row too."""
    found = []
    for image in images:
        item = CheckedImage(image=image, qc=checker.check(Path(image.path), ask))
        qc = item.qc.model_dump(mode="json")
        update_generation(generation.db, image.generation_id, qc=qc)
        state.checked.append(item)
        state.seeds.append(image.seed)
        found.append(item)
    return found


def _reject(generation: GenerationService, item: CheckedImage, reasons: list[str]) -> RejectedImage:
    """Move the PNG to ``rejected/`` and write its QC result beside it."""
    source = Path(item.image.path)
    folder = source.parent / "rejected"
    target = folder / source.name
    sidecar = target.with_name(target.stem + ".qc.json")
    record = {"reasons": reasons, "qc": item.qc.model_dump(mode="json")}
    with storage_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        source.replace(target)
        sidecar.write_text(json.dumps(record, indent=2), encoding="utf-8")
    update_generation(
        generation.db, item.image.generation_id, moved_to=(generation.store.home, target)
    )
    image = item.image.model_copy(update={"path": str(target)})
    return RejectedImage(image=image, reasons=reasons, qc=item.qc, qc_file=str(sidecar))


def _result(state: _Round, rejected: list[RejectedImage], extra: int) -> CheckedResult:
    assert state.first is not None
    kept = [slot for slot in state.slots if slot is not None]
    checked = state.checked
    identity = [c.qc.get("identity") for c in checked]
    measured_identity = [e for e in identity if e is not None and e.status != "not_checked"]
    consistency = (
        round(sum(1 for e in identity if e is not None and e.passed) / len(checked), 4)
        if measured_identity
        else None
    )
    measured = [c.qc for c in checked if c.qc.adherence_checked]
    adherence = [
        all(e.status != "fail" for e in q.checks if e.check.startswith("adherence"))
        for q in measured
    ]
    base = state.first.model_dump(exclude={"images"})
    return CheckedResult(
        **base,
        images=[k.image for k in kept],
        kept=kept,
        rejected=rejected,
        requested=state.request.count,
        attempts=len(checked),
        extra_attempts=extra,
        partial=len(kept) < state.request.count,
        face_consistency=consistency,
        prompt_adherence=round(sum(adherence) / len(adherence), 4) if adherence else None,
    )
