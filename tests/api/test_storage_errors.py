"""Issue 15, finding 8, through the API: a storage error of a writer outside the asset store
(here the face crop a chosen reference writes) is 507 or 503 with the reason, never 500."""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest
from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue


def os_error(code: int, filename: str | None = None) -> OSError:
    return OSError(code, os.strerror(code), filename)


def test_api_face_crop_on_a_full_disk_is_507(
    obama: TestClient, queue: JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    import charstudio.faces.reference as reference

    queue.run(obama.post("/api/v1/characters/obama/faces/extract").json()["id"])

    def full(*args: Any, **kwargs: Any) -> tuple[int, str]:
        raise os_error(errno.ENOSPC, "/data/crop.png")

    monkeypatch.setattr(reference.tempfile, "mkstemp", full)
    answer = obama.put("/api/v1/characters/obama/faces/reference", json={"image": "obama_2009.jpg"})
    assert answer.status_code == 507, answer.text
    assert answer.json()["type"] == "DiskFull" and "free disk space" in answer.json()["detail"]


def test_api_face_crop_on_a_denied_folder_is_503_with_the_reason(
    obama: TestClient, queue: JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    import charstudio.faces.reference as reference

    queue.run(obama.post("/api/v1/characters/obama/faces/extract").json()["id"])

    def denied(*args: Any, **kwargs: Any) -> tuple[int, str]:
        raise os_error(errno.EACCES, "/data/crop.png")

    monkeypatch.setattr(reference.tempfile, "mkstemp", denied)
    answer = obama.put("/api/v1/characters/obama/faces/reference", json={"image": "obama_2009.jpg"})
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "DataDirNotWritable"
    assert "cannot write /data/crop.png (Permission denied)" in answer.json()["detail"]
