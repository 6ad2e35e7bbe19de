"""Issue 15, finding 8: every storage ``OSError`` of a writer outside the asset store (a full
disk or quota, a permission, a read-only mount, a name too long) is the storage error class —
exit 1 with the message in the CLI, 503/507 with it in the API, the job's error — never
"internal error … please report it" or an "unexpected OSError"."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from charstudio.errors import (
    DataDirNotWritable,
    DiskFull,
    StorageError,
    storage_errors,
)
from charstudio.jobs import JobQueue
from charstudio.services import Services
from tests.conftest import CliRunner
from tests.faces.conftest import DATA

PHOTOS = [str(DATA / f"obama_{y}.jpg") for y in (2009, 2010, 2012)]


def os_error(code: int, filename: str | None = None) -> OSError:
    return OSError(code, os.strerror(code), filename)


@pytest.mark.parametrize(
    ("code", "error", "says"),
    [
        (errno.ENOSPC, DiskFull, "no space left writing /d/x.png"),
        (errno.EDQUOT, DiskFull, "free disk space or raise the quota"),
        (errno.EACCES, DataDirNotWritable, "cannot write /d/x.png (Permission denied)"),
        (errno.EROFS, DataDirNotWritable, "fix the data root's permissions"),
        (errno.ENAMETOOLONG, StorageError, "a file name is too long for the file system"),
    ],
)
def test_storage_errnos_become_the_storage_class(code: int, error: type, says: str) -> None:
    with pytest.raises(StorageError) as caught, storage_errors("/d/folder"):
        raise os_error(code, "/d/x.png")  # the file the OSError names beats the folder
    assert type(caught.value) is error and says in str(caught.value)


def test_other_os_errors_pass_unchanged() -> None:
    with pytest.raises(FileNotFoundError), storage_errors("/d"):
        raise os_error(errno.ENOENT, "/d/x")


@pytest.fixture
def unwritable_pngs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saving any PNG under a ``.staging-`` folder (a training set) fails: permission denied."""
    save = Image.Image.save

    def denied(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        if ".staging-" in str(fp):
            raise os_error(errno.EACCES, str(fp))
        save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", denied)


def test_cli_dataset_prepare_on_a_denied_folder_exits_1_with_the_reason(
    cli: CliRunner, home: Path, unwritable_pngs: None
) -> None:
    assert cli("character", "add", "obama", "--images", *PHOTOS).code == 0
    result = cli("dataset", "prepare", "obama", "--resolution", "512", "--max-upscale", "2")
    assert result.code == 1, result.err
    assert "cannot write" in result.err and "Permission denied" in result.err
    assert "fix the data root's permissions" in result.err
    assert "internal error" not in result.err and "please report" not in result.err
    training_sets = home / "character_data" / "training_sets"
    assert [p.name for p in training_sets.iterdir()] == []  # the staging folder is gone


def test_a_job_whose_writer_is_denied_fails_with_the_reason(
    services: Services, unwritable_pngs: None
) -> None:
    from charstudio.dataset import DatasetConfig
    from charstudio.jobs import submit_dataset_prepare

    services.library.create("obama", [Path(p) for p in PHOTOS])
    queue = JobQueue(services)
    config = DatasetConfig(resolution=512, max_upscale=2.0)
    done = queue.run(submit_dataset_prepare(services, queue, "obama", config).id)
    assert done.state == "failed"
    assert done.error.startswith("cannot write") and "Permission denied" in done.error
    assert "unexpected" not in done.error


def test_a_training_checkpoint_on_a_full_disk_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charstudio.training import checkpoints

    def full(obj: Any, out: Any) -> None:
        raise os_error(errno.ENOSPC)

    monkeypatch.setattr(checkpoints.torch, "save", full)
    layer = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    with pytest.raises(DiskFull, match="no space left"):
        checkpoints.save_checkpoint(
            tmp_path,
            step=3,
            adapters={"unet": {"w": layer.weight}},
            optimizer=optimizer,
            schedule=schedule,
            scaler=None,
        )
    assert list((tmp_path / "checkpoints").iterdir()) == []  # no partial staging folder
    assert checkpoints.latest_checkpoint(tmp_path) is None


def test_rejected_images_on_a_denied_folder_are_the_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charstudio.qc import gate

    source = tmp_path / "outputs" / "obama" / "job" / "a.png"
    source.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(source)

    def denied(self: Path, *args: Any, **kwargs: Any) -> None:
        raise os_error(errno.EACCES, str(self))

    monkeypatch.setattr(Path, "mkdir", denied)

    class Item:  # what _reject reads of a checked image
        image = type("I", (), {"path": str(source), "generation_id": 1})()
        qc = type("Q", (), {"model_dump": lambda self, mode: {}})()

    with pytest.raises(DataDirNotWritable, match="rejected"):
        gate._reject(None, Item(), ["identity 0.1 < 0.5"])  # type: ignore[arg-type]
    assert source.is_file()  # nothing moved


def test_contact_sheets_and_identity_files_with_too_long_names(tmp_path: Path) -> None:
    from charstudio.faces.reference import write_png_atomic

    too_long = tmp_path / ("x" * 300 + ".png")
    with pytest.raises(StorageError, match="a file name is too long for the file system"):
        write_png_atomic(Image.new("RGB", (4, 4)), too_long)
    assert list(tmp_path.iterdir()) == []


def test_identity_files_on_a_full_disk_leave_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charstudio.faces import identity_files

    def full(out: Any, vector: Any) -> None:
        raise os_error(errno.ENOSPC)

    monkeypatch.setattr(identity_files.np, "save", full)
    from charstudio.faces.types import FaceEmbeddingVector, IdentityResult

    vector = FaceEmbeddingVector.from_raw(backend="dlib", model="m", values=[1.0, 0.0])
    identity = IdentityResult(vector=vector, threshold=0.5, members=())
    files = identity_files.identity_files(tmp_path / "e", "obama")
    with (
        pytest.raises(DiskFull),
        identity_files.write_identity_files(files, identity, sources=[], paths=[]),
    ):
        pass
    assert list((tmp_path / "e").iterdir()) == []  # no temporary file left behind
