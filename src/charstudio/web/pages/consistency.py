"""``/studio/characters/<name>/consistency``: the consistency lab for one character — the
measured report (from past scored generations), the latest tune grid as a heatmap with
"apply these strengths", and starting a tune (with its dry-run estimate) or a report."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from charstudio.errors import CharstudioError, InvalidParameter, NotFound
from charstudio.http import QueueDep, ServicesDep
from charstudio.jobs import submit_report, submit_tune
from charstudio.jobs.kinds import ReportParams, TuneParams
from charstudio.lab import TuneSpec, parse_strengths, read_provenance
from charstudio.lab.html import heatmap_png
from charstudio.services import Services
from charstudio.web.auth import require_session
from charstudio.web.errors import StudioRoute
from charstudio.web.render import render

router = APIRouter(
    prefix="/studio/characters/{name}/consistency",
    route_class=StudioRoute,
    dependencies=[Depends(require_session)],
)


def _page(
    request: Request, services: Services, name: str, *, status: int = 200, **extra: Any
) -> Response:
    lab = services.lab
    profile = services.library.profile(name)
    tune = lab.latest_tune(profile.name)
    try:
        report = lab.report_from_history(profile.name)
    except NotFound:
        report = None
    try:
        plan = lab.plan_tune(profile.name, TuneSpec(backend=_backend(services)))
        plan_error = None
    except CharstudioError as exc:  # no identity yet: the page says what to run
        plan, plan_error = None, str(exc)
    heatmap = None
    if tune is not None:
        heatmap = "data:image/png;base64," + base64.b64encode(heatmap_png(tune)).decode()
    return render(
        request,
        "consistency.html",
        status=status,
        nav="library",
        profile=profile,
        tune=tune,
        heatmap=heatmap,
        report=report,
        plan=plan,
        plan_error=plan_error,
        provenance=read_provenance(services.store, profile.name),
        job_id=request.query_params.get("job"),
        notice=request.query_params.get("notice"),
        **{"errors": {}, "values": {}, **extra},
    )


def _backend(services: Services) -> str:
    return "comfyui" if "comfyui" in services.generation.backends else "diffusers"


def _back(name: str, *, job: str | None = None, notice: str | None = None) -> Response:
    query = f"?job={quote(job)}" if job else (f"?notice={quote(notice)}" if notice else "")
    return RedirectResponse(f"/studio/characters/{quote(name)}/consistency{query}", 303)


# The tune form's strength fields and their labels (named in a field error).
_AXES = {"lora": "LoRA strengths", "ipadapter": "IP-Adapter strengths"}


@router.get("")
def consistency_page(request: Request, name: str, services: ServicesDep) -> Response:
    return _page(request, services, name)


@router.post("/tune")
async def start_tune(
    request: Request, name: str, services: ServicesDep, queue: QueueDep
) -> Response:
    """Queue a tune with the form's axes (blank: the defaults) and seeds."""
    async with request.form(max_files=0, max_fields=8) as form:
        values = {k: str(form.get(k) or "") for k in ("lora", "ipadapter", "seeds", "yes")}
    axes: dict[str, tuple[float, ...] | None] = {}
    errors: dict[str, str] = {}
    for field, label in _AXES.items():
        try:  # blank: the axis's default
            axes[field] = parse_strengths(values[field].strip() or None, label)
        except InvalidParameter as exc:
            errors[field] = str(exc)
    if errors:
        return await run_in_threadpool(
            _page, request, services, name, status=422, errors=errors, values=values
        )
    try:
        spec = TuneSpec(
            lora_strengths=axes["lora"],
            ipadapter_strengths=axes["ipadapter"],
            seeds=int(values["seeds"] or 2),
            backend=_backend(services),
        )
    except ValueError as exc:  # a pydantic ValidationError, or int() of a non-number
        raise InvalidParameter(f"invalid tune settings: {exc}") from exc
    params = TuneParams(spec=spec, yes=values["yes"] == "on")
    job = await run_in_threadpool(submit_tune, services, queue, name, params)
    return _back(job.character or name, job=job.id)


@router.post("/apply")
def apply(name: str, services: ServicesDep) -> Response:
    """Write the latest tune's choice to the profile (over hand-set values: the user asked)."""
    result = services.lab.apply_latest(name)
    words = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in result.applied.items())
    return _back(result.plan.character, notice=f"Applied: {words or 'nothing to change'}.")


@router.post("/report")
def start_report(name: str, services: ServicesDep, queue: QueueDep) -> Response:
    """Queue a measured report (one row per method) with the default prompts and seeds."""
    spec = TuneSpec(backend=_backend(services))
    job = submit_report(services, queue, name, ReportParams(spec=spec))
    return _back(job.character or name, job=job.id)
