"""``charstudio jobs ...`` end to end, and the worker/serve commands' help."""

from __future__ import annotations

import json
from pathlib import Path

from charstudio.config import load_settings
from charstudio.jobs import JobQueue, JobStore, submit_faces_extract
from charstudio.services import build_services
from tests.conftest import CliRunner
from tests.faces.conftest import DATA


def test_list_show_cancel(cli: CliRunner, home: Path) -> None:
    assert cli("character", "add", "obama", "--images", str(DATA / "obama_2009.jpg")).code == 0
    services = build_services(load_settings(home=home))
    queue = JobQueue(services)
    done = submit_faces_extract(services, queue, "obama")
    queue.run(done.id)
    waiting = submit_faces_extract(services, queue, "obama")
    listing = cli("jobs", "list", "--json")
    assert listing.code == 0, listing.err
    states = {j["id"]: j["state"] for j in json.loads(listing.out)["items"]}
    assert states == {done.id: "succeeded", waiting.id: "queued"}
    shown = cli("jobs", "show", done.id)
    assert shown.code == 0 and "succeeded" in shown.out and "faces_extract" in shown.out
    cancelled = cli("jobs", "cancel", waiting.id)
    assert cancelled.code == 0 and f"job {waiting.id} cancelled" in cancelled.err + cancelled.out
    again = cli("jobs", "cancel", waiting.id)
    assert again.code == 1 and "already cancelled; nothing to cancel" in again.err
    missing = cli("jobs", "show", "nope")
    assert missing.code == 1 and "no job with id 'nope'" in missing.err
    bad_state = cli("jobs", "list", "--state", "sleeping")
    assert bad_state.code == 2 and "unknown state 'sleeping'" in bad_state.err
    services.close()


def test_failed_jobs_show_their_error_in_the_list(cli: CliRunner, home: Path) -> None:
    # The message column used to be empty for failed jobs.
    assert cli("character", "add", "obama", "--images", str(DATA / "obama_2009.jpg")).code == 0
    services = build_services(load_settings(home=home))
    store = JobStore(services.db, services.store.home)
    job = store.create("faces_extract", character="obama", params={})
    assert store.claim(job.id, "test-worker")
    store.fail(job.id, "no reference of 'obama' has one usable face")
    services.close()
    listing = cli("jobs", "list")
    assert listing.code == 0, listing.err
    row = next(line for line in listing.out.splitlines() if job.id[:8] in line)
    assert "failed" in row and "no reference of" in row


def test_show_and_cancel_describe_job_id(cli: CliRunner) -> None:
    for command in ("show", "cancel"):
        result = cli("jobs", command, "--help")
        assert result.code == 0
        assert "JOB_ID" in result.out
        assert "The job's id, as `charstudio jobs list` shows it" in result.out


def test_serve_and_worker_help(cli: CliRunner) -> None:
    for command in ("serve", "worker"):
        result = cli(command, "--help")
        assert result.code == 0 and "Usage" in result.out
