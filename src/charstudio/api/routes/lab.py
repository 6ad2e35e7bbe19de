"""The consistency lab: tune a character's strengths (a job, or its plan at once), apply
the latest choice, and its measured report (a job, or read from history at once)."""

from __future__ import annotations

from fastapi import APIRouter, status

from charstudio.errors import NotFound
from charstudio.http import QueueDep, ServicesDep
from charstudio.jobs import JobInfo, submit_report, submit_tune
from charstudio.jobs.kinds import ReportParams, TuneParams
from charstudio.lab import ConsistencyReport, TunePlan, TuneResult, TuneSpec

router = APIRouter(prefix="/characters/{name}", tags=["lab"])


@router.post("/tune", status_code=status.HTTP_202_ACCEPTED)
def tune(name: str, body: TuneParams, services: ServicesDep, queue: QueueDep) -> JobInfo:
    """Queue a tune run (planned now: a bad axis, no identity, or a grid over the limit
    without ``yes`` is a 400 that says what it would cost)."""
    return submit_tune(services, queue, name, body)


@router.post("/tune/plan")
def plan_tune(name: str, body: TuneSpec, services: ServicesDep) -> TunePlan:
    """The dry run: cells, images, cells measured before, and a time estimate."""
    return services.lab.plan_tune(name, body)


@router.get("/tune")
def latest_tune(name: str, services: ServicesDep) -> TuneResult:
    """The newest finished tune run: every cell's rates, the choice, what was applied."""
    found = services.lab.latest_tune(name)
    if found is None:
        raise NotFound(f"no tune run of {name} yet: POST /api/v1/characters/{name}/tune")
    return found


@router.post("/tune/apply")
def apply_tune(name: str, services: ServicesDep) -> TuneResult:
    """Write the newest run's chosen strengths to the profile (over hand-set values too)."""
    return services.lab.apply_latest(name)


@router.post("/report", status_code=status.HTTP_202_ACCEPTED)
def report(name: str, body: ReportParams, services: ServicesDep, queue: QueueDep) -> JobInfo:
    """Queue a measured report (one row per method, per LoRA version) and its HTML page."""
    return submit_report(services, queue, name, body)


@router.get("/report")
def history_report(name: str, services: ServicesDep) -> ConsistencyReport:
    """The report read from every QC-scored generation, at once (no images generated; 404
    says what to run when there are none). A measured report is a job: ``POST``."""
    return services.lab.report_from_history(name)
