"""The lab's test world: ``obama`` with his real face identity (dlib on the real photos), two
ready LoRA versions, and a generator of real photographs whose outcome depends on the
strengths, so that the best cell and every rate are known in advance:

============================== =====================================================
the graph has                  the image is the character's photo when
============================== =====================================================
LoRA and IP-Adapter            LoRA >= 0.7 and IP-Adapter >= 0.55 (else a stranger)
IP-Adapter only                the seed is even
LoRA only                      the seed is a multiple of 4
neither (img2img)              never
LoRA version 2's file          the seed is a multiple of 4, whatever the strengths
============================== =====================================================

Everything else is real: the generation service stores and records the images, and QC
judges them with the real dlib models.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from charstudio.backends import GenerationService
from charstudio.backends.service_types import GenerationDefaults
from charstudio.backends.types import BackendImage, CancelToken, GenerationRequest, ProgressSink
from charstudio.config import Settings, load_settings
from charstudio.lab import LabService
from charstudio.library import to_stored
from charstudio.library.models import Character, LoraVersion
from charstudio.services import Services, build_services
from tests.backends.photo_backend import PhotoBackend
from tests.backends.photo_outputs import Kind, PhotoScenario
from tests.qc.conftest import make_character
from tests.servers import Servers


def kind_for(request: GenerationRequest, seed: int) -> Kind:
    """The table in the module's docstring."""
    lora, ipa = request.params.lora_strength, request.params.ipadapter_strength
    if request.lora_file is not None and "_v2" in request.lora_file.name:
        return "own" if seed % 4 == 0 else "stranger"
    if lora is not None and ipa is not None:
        return "own" if lora >= 0.7 and ipa >= 0.55 else "stranger"
    if ipa is not None:
        return "own" if seed % 2 == 0 else "stranger"
    if lora is not None:
        return "own" if seed % 4 == 0 else "stranger"
    return "stranger"


@dataclass
class StrengthBackend:
    """:class:`PhotoBackend` with the kind of every seed decided by :func:`kind_for`;
    counts the images it made (a resumed run must make none for measured cells)."""

    name: str = "photos"
    made: list[tuple[GenerationRequest, int]] = field(default_factory=list)
    cancel_after: int | None = None  # cancel once this many requests were served

    def generate(
        self,
        request: GenerationRequest,
        *,
        progress: ProgressSink | None = None,
        cancel: CancelToken | None = None,
    ) -> list[BackendImage]:
        scenario = PhotoScenario().script({s: kind_for(request, s) for s in request.seeds})
        images = PhotoBackend(scenario).generate(request, progress=progress, cancel=cancel)
        self.made += [(request, s) for s in request.seeds]
        served = len({id(r) for r, _ in self.made})
        if cancel is not None and self.cancel_after is not None and served >= self.cancel_after:
            cancel.cancel()
        return images


@dataclass
class Lab:
    services: Services
    lab: LabService
    backend: StrengthBackend


def add_lora(services: Services, version: int, *, promoted: bool) -> Path:
    path = services.store.lora_dir / f"obama_v{version}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a real LoRA; the generator is a test double")
    with services.db.sessions.begin() as session:
        character = session.query(Character).filter_by(name_key="obama").one()
        session.add(
            LoraVersion(
                character_id=character.id,
                version=version,
                path=to_stored(services.store.home, path),  # as training records it
                promoted=promoted,
            )
        )
    return path


def make_lab(home: Path, *, loras: bool = True, settings: Settings | None = None) -> Lab:
    services = build_services(settings or load_settings(home=home))
    make_character(services)
    if loras:
        add_lora(services, 1, promoted=True)
        add_lora(services, 2, promoted=False)
    return lab_over(services)


def lab_over(services: Services) -> Lab:
    """The lab over ``services``, generating with a new :class:`StrengthBackend`."""
    backend = StrengthBackend()
    generation = GenerationService(
        library=services.library,
        store=services.store,
        db=services.db,
        defaults=GenerationDefaults(checkpoint="rand_sd15.safetensors"),
        backends={"photos": lambda: backend},
    )
    lab = LabService(
        library=services.library,
        store=services.store,
        db=services.db,
        generation=generation,
        qc=services.qc,
    )
    return Lab(services, lab, backend)


def sqlite_inside(home: Path) -> Settings:
    """Settings of ``home`` with the database the SQLite file inside it, whatever the run:
    a data root that is copied whole, database included."""
    return load_settings(home=home, database_url=f"sqlite:///{home.absolute() / 'charstudio.db'}")


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root as :func:`make_lab` leaves it (SQLite inside), made once a session."""
    home = tmp_path_factory.mktemp("lab") / "home"
    home.mkdir()
    make_lab(home, settings=sqlite_inside(home)).services.close()
    return home


def copy_of_lab_root(lab_root: Path, home: Path) -> Lab:
    """The lab over a copy of ``lab_root`` at ``home`` (its SQLite database included)."""
    shutil.copytree(lab_root, home)
    return lab_over(build_services(sqlite_inside(home)))


@pytest.fixture
def world(tmp_path: Path, servers: Servers | None, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """:func:`make_lab` in the test's data root. On SQLite, a copy of ``lab_root`` (the
    real dlib analysis of obama's photographs takes seconds; copying the folder,
    milliseconds); on PostgreSQL, where the database is not in the folder, built anew."""
    home = tmp_path / "home"
    if servers is None:
        built = copy_of_lab_root(request.getfixturevalue("lab_root"), home)
    else:
        built = make_lab(home)
    yield built
    built.services.close()
