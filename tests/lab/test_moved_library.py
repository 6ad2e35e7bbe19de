"""A library moved (or mounted) at another path keeps every file it knows.

Paths in the database are relative to the data root (library/stored_paths.py), so a data
root copied whole to another folder, its old folder gone, and opened there (on PostgreSQL:
the same database, another machine's mount) still serves its outputs, rejected images,
training set and LoRAs, through the services, the API and the studio."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from charstudio.backends import GenerateRequest, GenerationService
from charstudio.backends.accepted import accept_generated
from charstudio.backends.service_types import GenerationDefaults
from charstudio.config import load_settings
from charstudio.dataset import DatasetConfig
from charstudio.library.models import Generation, LoraVersion, TrainingSet
from charstudio.qc.gate import CheckedResult, generate_checked
from charstudio.server import create_app
from charstudio.services import Services, build_services
from charstudio.training import load_config
from tests.api.conftest import TOKEN
from tests.backends.photo_backend import PhotoBackend
from tests.backends.photo_outputs import Kind, PhotoScenario
from tests.lab.conftest import make_lab
from tests.lab.test_report import SPEC
from tests.servers import Servers

CONFIG = DatasetConfig.parse(resolution=256, min_images=3)


def stored_paths(services: Services) -> dict[str, list[str]]:
    with services.db.sessions() as session:
        return {
            "generations": list(session.scalars(select(Generation.path).order_by(Generation.id))),
            "training_sets": list(session.scalars(select(TrainingSet.path))),
            "lora_versions": list(
                session.scalars(select(LoraVersion.path).order_by(LoraVersion.version))
            ),
        }


def gate_once(services: Services, script: dict[int, Kind]) -> CheckedResult:
    """One QC-gated generation of real photographs (tests/qc/test_gate.py)."""
    generation = GenerationService(
        library=services.library,
        store=services.store,
        db=services.db,
        defaults=GenerationDefaults(checkpoint="rand_sd15.safetensors"),
        backends={"photos": lambda: PhotoBackend(PhotoScenario().script(script))},
    )
    request = GenerateRequest(
        prompt="a red dress", seed=min(script), count=1, backend="photos", width=512, height=512
    )
    checker = services.qc.checker("obama")
    return generate_checked(generation, checker, "obama", request)


def make_library(first: Path) -> dict[str, list[str]]:
    """A library made at ``first/`` (generations with QC, some rejected; a training set; two
    LoRA versions); returns the paths its database holds."""
    world = make_lab(first)
    try:
        world.services.init()  # writes library.json, as `charstudio init` does
        world.lab.report("obama", SPEC)
        gated = gate_once(world.services, {500: "stranger", 501: "own"})
        assert len(gated.rejected) == 1  # QC moved one image to rejected/
        world.services.datasets.prepare("obama", CONFIG)
        return stored_paths(world.services)
    finally:
        world.services.close()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    """:func:`make_library` once for the module (SQLite: the database is in the folder)."""
    first = tmp_path_factory.mktemp("made") / "first"
    return first, make_library(first)


@pytest.fixture
def moved(
    tmp_path: Path, servers: Servers | None, request: pytest.FixtureRequest
) -> tuple[Services, dict[str, list[str]]]:
    """A library made at ``first/`` (see :func:`make_library`), copied whole to
    ``second/``, ``first/`` deleted, opened at ``second/``. Returns the moved library's
    services and the paths its database held before the move. On SQLite ``first/`` is a
    copy of the module's ``made`` library; on PostgreSQL (the database is not in the
    folder) it is made anew."""
    first, second = tmp_path / "first", tmp_path / "second"
    if servers is None:
        source, before = request.getfixturevalue("made")
        shutil.copytree(source, first, symlinks=True)
    else:
        before = make_library(first)
    shutil.copytree(first, second, symlinks=True)
    shutil.rmtree(first)
    services = build_services(load_settings(home=second))
    services.start()  # the marker moved with the root: it is still this library's
    return services, before


def test_the_database_holds_paths_relative_to_the_data_root(
    moved: tuple[Services, dict[str, list[str]]],
) -> None:
    services, before = moved
    assert before == stored_paths(services)
    generations = before["generations"]
    assert generations and all(p.startswith("outputs/obama/") for p in generations)
    assert any("/rejected/" in p for p in generations)  # QC moved some, and said where
    assert before["training_sets"] == ["character_data/training_sets/obama"]
    assert before["lora_versions"] == [
        "character_data/lora_models/obama_v1.safetensors",
        "character_data/lora_models/obama_v2.safetensors",
    ]
    for paths in before.values():
        assert all((services.store.home / p).exists() for p in paths)


def test_the_moved_library_serves_its_outputs_sets_and_loras(
    moved: tuple[Services, dict[str, list[str]]],
) -> None:
    services, _ = moved
    home = services.store.home
    try:
        # QC history (the lab's report) reads every scored image where it now is.
        history = services.lab.report_from_history("obama")
        images = [Path(i.path) for row in history.rows for i in row.images]
        assert images and all(p.is_relative_to(home) and p.is_file() for p in images)
        # Accepting an image reads its PNG's parameters.
        with services.db.sessions() as session:
            kept = session.scalars(
                select(Generation).where(Generation.path.not_like("%/rejected/%"))
            ).first()
        assert kept is not None
        workflow = accept_generated(services.store, services.db, generation_id=kept.id)
        assert workflow.is_relative_to(home) and workflow.is_file()
        # The LoRA versions, and the one generation uses.
        versions = services.training.list_versions("obama")
        assert [Path(v.path) for v in versions] == [
            home / "character_data" / "lora_models" / f"obama_v{n}.safetensors" for n in (1, 2)
        ]
        assert all(v.file_exists for v in versions)
        profile = services.library.profile("obama")
        assert profile.lora_path == str(home / "character_data/lora_models/obama_v1.safetensors")
        assert services.training.promote("obama", "v2").promoted
        # Training reads the set where it now is (the kohya export lays it out from there).
        base = home / "base.safetensors"
        base.write_bytes(b"a base model's name is all the export needs")
        export = services.training.export_kohya(
            "obama", config=load_config(overrides=[f"model.base_checkpoint={base}"])
        )
        laid_out = sorted(p.name for p in (Path(export.dataset_toml).parent / "img").rglob("*.txt"))
        captions = home / "character_data" / "training_sets" / "obama" / "captions"
        assert laid_out and laid_out == sorted(p.name for p in captions.iterdir())
    finally:
        services.close()


def test_the_api_and_studio_serve_the_moved_files(
    moved: tuple[Services, dict[str, list[str]]],
) -> None:
    services, before = moved
    services.settings = services.settings.model_copy(update={"api_token": TOKEN})
    app = create_app(services)
    kept = next(p for p in before["generations"] if "/rejected/" not in p)
    rejected = next(p for p in before["generations"] if "/rejected/" in p)
    try:
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
            api = {"Authorization": f"Bearer {TOKEN}"}
            report = client.get("/api/v1/characters/obama/report", headers=api)
            assert report.status_code == 200, report.text
            served = {i["path"] for row in report.json()["rows"] for i in row["images"]}
            assert served and served <= set(before["generations"])
            loras = client.get("/api/v1/characters/obama/loras", headers=api)
            assert loras.status_code == 200, loras.text
            assert [(v["path"], v["file_exists"]) for v in loras.json()] == [
                (p, True) for p in before["lora_versions"]
            ]
            login = client.post("/studio/login", data={"password": TOKEN, "next": "/studio"})
            assert login.status_code == 303, login.text
            for path in (kept, rejected):
                image = client.get(f"/studio/files/{path}")
                assert image.status_code == 200, path
                assert image.headers["content-type"] == "image/png"
                assert image.content == (services.store.home / path).read_bytes()
    finally:
        services.close()
