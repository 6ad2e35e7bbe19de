"""A job queued on one machine runs on a worker that mounts the data root elsewhere: the
job names its files relative to the root (jobs/submit.py), the worker finds them under its
own ``home``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from charstudio.config import load_settings
from charstudio.jobs import JobQueue, submit_faces_score
from charstudio.services import build_services
from tests.faces.conftest import DATA

PHOTOS = [DATA / f"obama_{y}.jpg" for y in (2009, 2010, 2012)]


def test_a_worker_with_the_root_elsewhere_scores_the_images_a_job_names(tmp_path: Path) -> None:
    # One database for both machines: PostgreSQL on the servers' run, else a SQLite file
    # outside either data root.
    database = os.environ.get("CHARSTUDIO_DATABASE_URL") or f"sqlite:///{tmp_path / 'lib.db'}"
    first, second = tmp_path / "first", tmp_path / "second"
    submitter = build_services(load_settings(home=first, database_url=database))
    try:
        submitter.init()
        submitter.library.create("obama", PHOTOS)
        submitter.faces.extract("obama")
        upload = first / "uploads" / "scores" / "batch" / "0000-obama.jpg"
        upload.parent.mkdir(parents=True)
        shutil.copyfile(PHOTOS[2], upload)
        job = submit_faces_score(submitter, JobQueue(submitter), "obama", [upload])
        assert job.params["paths"] == ["uploads/scores/batch/0000-obama.jpg"]
    finally:
        submitter.close()
    # The other machine's mount: the same files at another path, the first path gone.
    shutil.copytree(first, second, symlinks=True)
    shutil.rmtree(first)
    worker = build_services(load_settings(home=second, database_url=database))
    worker.migrate = "never"  # as `charstudio worker` opens it
    try:
        worker.start()
        done = JobQueue(worker).run(job.id)
        assert done.state == "succeeded", done.error
        [image] = done.result["images"]
        assert Path(image["source"]) == second / "uploads" / "scores" / "batch" / "0000-obama.jpg"
        assert image["similarity"] is not None
    finally:
        worker.close()
