"""A finished job's result names its files relative to the data root (jobs/store.py).

A worker that mounts the shared root at one path runs the jobs; a machine that mounts the
same root at another path reads them: the API (and its event stream), ``charstudio jobs
show`` and the studio show the files under the reader's own root, never the worker's. A
row stored before results were relative (absolute paths, no list of relative ones) still
reads as it was written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from charstudio.backends import GenerateRequest
from charstudio.config import load_settings
from charstudio.dataset import DatasetConfig
from charstudio.jobs import (
    JobQueue,
    JobStore,
    submit_dataset_prepare,
    submit_faces_extract,
    submit_faces_score,
)
from charstudio.jobs.submit import submit_generate
from charstudio.library.jobs_table import update_job
from charstudio.library.models import Job
from charstudio.library.stored_paths import RELATIVE_KEY
from charstudio.server import create_app
from charstudio.services import Services, build_services
from tests.api.conftest import PHOTOS, TOKEN
from tests.backends.fake_comfyui import FakeComfyUI
from tests.backends.photo_outputs import PhotoScenario
from tests.conftest import CliRunner
from tests.web.conftest import csrf_of


@dataclass(frozen=True)
class Ran:
    """The jobs a worker ran at ``worker_root``, read at ``home`` (the same files)."""

    worker_root: Path
    home: Path
    extract: str
    generate: str
    score: str
    prepare: str

    @property
    def ids(self) -> tuple[str, str, str, str]:
        return (self.extract, self.generate, self.score, self.prepare)


def absolute(value: Any) -> list[str]:
    """Every string in ``value`` (decoded JSON) that is an absolute path."""
    if isinstance(value, str):
        return [value] if value.startswith("/") else []
    if isinstance(value, dict):
        return [s for item in value.values() for s in absolute(item)]
    if isinstance(value, list):
        return [s for item in value for s in absolute(item)]
    return []


def raw_result(services: Services, job_id: str) -> dict[str, Any]:
    with services.db.sessions() as session:
        stored = session.scalar(select(Job.result).where(Job.id == job_id))
    assert isinstance(stored, dict)
    return stored


@pytest.fixture
def ran(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ran]:
    """faces_extract, a QC-gated generate (one image kept, one rejected), faces_score and
    dataset_prepare, run by a worker whose data root is ``tmp_path/worker``; that root then
    copied whole to ``home`` (the reader's mount) and removed, so no path of the worker's
    opens here."""
    # One database for both machines: PostgreSQL on the servers' run, else a SQLite file
    # outside either data root; the CLI reads it from the environment too.
    database = os.environ.get("CHARSTUDIO_DATABASE_URL") or f"sqlite:///{tmp_path / 'lib.db'}"
    monkeypatch.setenv("CHARSTUDIO_DATABASE_URL", database)
    worker_root = tmp_path / "worker"
    comfy = FakeComfyUI(photos=PhotoScenario()).start()
    worker = build_services(
        load_settings(
            home=worker_root,
            database_url=database,
            comfyui_urls=[comfy.url],
            comfyui_checkpoint="rand_sd15.safetensors",
        )
    )
    try:
        worker.init()
        worker.library.create("obama", PHOTOS)
        queue = JobQueue(worker)
        extract = queue.run(submit_faces_extract(worker, queue, "obama").id)
        assert extract.state == "succeeded", extract.error
        request = GenerateRequest(prompt="a red coat", seed=43)  # 43 fails identity, 44 passes
        generate = queue.run(submit_generate(worker, queue, "obama", request).id)
        assert generate.state == "succeeded", generate.error
        assert len(generate.result["kept"]) == len(generate.result["rejected"]) == 1
        kept = Path(generate.result["images"][0]["path"])
        score = queue.run(submit_faces_score(worker, queue, "obama", [kept]).id)
        assert score.state == "succeeded", score.error
        config = DatasetConfig.parse(resolution=256, min_images=3)
        prepare = queue.run(submit_dataset_prepare(worker, queue, "obama", config).id)
        assert prepare.state == "succeeded", prepare.error
    finally:
        worker.close()
        comfy.stop()
    shutil.copytree(worker_root, home, symlinks=True)
    shutil.rmtree(worker_root)
    yield Ran(worker_root, home, extract.id, generate.id, score.id, prepare.id)


@pytest.fixture
def reader(ran: Ran) -> Iterator[Services]:
    """The reading machine's services, over the same database, at its own mount."""
    services = build_services(load_settings(home=ran.home, api_token=TOKEN))
    services.migrate = "never"  # as `charstudio serve` on a second machine opens it
    services.start()
    yield services
    services.close()


def test_results_are_stored_relative_and_read_under_this_machines_root(
    ran: Ran, reader: Services
) -> None:
    store = JobStore(reader.db, reader.store.home)
    for job_id in ran.ids:
        stored = raw_result(reader, job_id)
        assert str(ran.worker_root) not in json.dumps(stored), job_id
        assert stored[RELATIVE_KEY], job_id
        paths = absolute(store.get(job_id).result)
        assert paths and all(Path(p).is_relative_to(ran.home) for p in paths), job_id
    generate = store.get(ran.generate).result
    [rejected] = generate["rejected"]
    # Every file the results name is here; the one exception names where the rejected
    # image was when QC checked it, before QC moved it to rejected/.
    missing = [p for job_id in ran.ids for p in absolute(store.get(job_id).result)]
    missing = [p for p in missing if not Path(p).exists()]
    assert missing == [rejected["qc"]["source"]]
    assert Path(rejected["image"]["path"]).parent.name == "rejected"
    assert Path(rejected["qc_file"]).is_file()
    assert Path(generate["output_dir"]) == ran.home / "outputs" / "obama" / ran.generate
    extract = store.get(ran.extract).result
    assert Path(extract["reference"]["face_crop"]).is_file()
    assert all(Path(image["path"]).is_file() for image in extract["images"])
    score = store.get(ran.score).result
    assert Path(score["contact_sheet"]).is_file()
    assert Path(score["images"][0]["source"]) == Path(generate["images"][0]["path"])
    prepare = store.get(ran.prepare).result
    assert Path(prepare["path"]) == ran.home / "character_data" / "training_sets" / "obama"
    assert Path(prepare["path"]).is_dir() and Path(prepare["contact_sheet"]).is_file()
    listed = store.page(character="obama").items
    assert {job.id: job.result for job in listed} == {
        job_id: store.get(job_id).result for job_id in ran.ids
    }


def test_the_api_and_its_event_stream_name_files_under_the_root(ran: Ran, reader: Services) -> None:
    with TestClient(create_app(reader), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for job_id in ran.ids:
            shown = client.get(f"/api/v1/jobs/{job_id}")
            assert shown.status_code == 200, shown.text
            assert str(ran.worker_root) not in shown.text and RELATIVE_KEY not in shown.text
            events = client.get(f"/api/v1/jobs/{job_id}/events")
            assert events.status_code == 200 and "event: end" in events.text
            assert str(ran.worker_root) not in events.text
        result = client.get(f"/api/v1/jobs/{ran.generate}").json()["result"]
        [kept], [rejected] = result["kept"], result["rejected"]
        for path in (kept["image"]["path"], rejected["image"]["path"], rejected["qc_file"]):
            relative = PurePosixPath(path)
            assert not relative.is_absolute() and relative.parts[:2] == ("outputs", "obama")
            assert (ran.home / relative).is_file()
        assert result["output_dir"] == f"outputs/obama/{ran.generate}"


def test_jobs_show_prints_files_under_this_machines_root(ran: Ran, cli: CliRunner) -> None:
    shown = cli("jobs", "show", ran.generate, "--json")
    assert shown.code == 0, shown.err
    result = json.loads(shown.out)["result"]
    assert str(ran.worker_root) not in shown.out
    paths = [result["images"][0]["path"], *(r["image"]["path"] for r in result["rejected"])]
    assert all(Path(p).is_relative_to(ran.home) and Path(p).is_file() for p in paths)


def test_the_studio_shows_and_accepts_the_results_under_the_root(
    ran: Ran, reader: Services
) -> None:
    with TestClient(create_app(reader), base_url="https://testserver") as browser:
        login = browser.post(
            "/studio/login",
            data={"password": TOKEN, "next": "/studio"},
            follow_redirects=False,
        )
        assert login.status_code == 303, login.text
        browser.headers["X-CSRF-Token"] = csrf_of(browser.get("/studio").text)
        grid = browser.get(f"/studio/jobs/{ran.generate}/results?show=all")
        assert grid.status_code == 200, grid.text
        assert 'alt="Result 1, seed 44"' in grid.text and 'alt="Rejected 2, seed 43"' in grid.text
        assert str(ran.worker_root) not in grid.text
        shown = re.findall(r'<img src="([^"]+)" alt=', grid.text)
        assert len(shown) == 2
        for url in shown:
            served = browser.get(url)
            assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        stream = browser.get(f"/studio/jobs/{ran.generate}/events")
        assert "event: end" in stream.text and str(ran.worker_root) not in stream.text
        assert str(ran.home / "outputs" / "obama" / ran.generate) in stream.text
        rejected = JobStore(reader.db, reader.store.home).get(ran.generate).result["rejected"]
        generation_id = rejected[0]["image"]["generation_id"]
        accepted = browser.post(
            f"/studio/jobs/{ran.generate}/accept/{generation_id}", follow_redirects=False
        )
        assert accepted.status_code == 303, accepted.text
    [saved] = reader.store.generated_workflows_dir.glob("obama_*_43.json")
    assert saved.is_relative_to(ran.home)


def test_a_row_stored_with_absolute_paths_still_reads(ran: Ran, reader: Services) -> None:
    """What a worker stored before results were relative: the paths as it saw them."""
    store = JobStore(reader.db, reader.store.home)
    written = store.get(ran.generate).result  # absolute, under this machine's root
    assert RELATIVE_KEY not in written
    with reader.db.sessions.begin() as session:
        assert update_job(session, ran.generate, result=written)
    assert raw_result(reader, ran.generate) == written
    assert store.get(ran.generate).result == written
    with TestClient(create_app(reader), headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        result = client.get(f"/api/v1/jobs/{ran.generate}").json()["result"]
    assert result["rejected"][0]["qc_file"] == str(
        PurePosixPath(Path(written["rejected"][0]["qc_file"]).relative_to(ran.home))
    )
    assert absolute(result) == []
