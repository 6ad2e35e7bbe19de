"""Fixtures for the backend tests: fake ComfyUI servers on free loopback ports, a character."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from charstudio.backends import ClientOptions, GenerationRequest, PoolOptions
from charstudio.library.models import Character, FaceEmbedding, LoraVersion
from charstudio.library.profile import METHOD_DEFAULTS, Method
from charstudio.services import Services
from tests.backends.fake_comfyui import FakeComfyUI
from tests.conftest import write_image

# Short timeouts: every fault shows within a second or two. Except one HTTP answer: the
# first /object_info (580 KB of JSON built, sent and parsed) took over 2 s on a loaded 2-core
# machine, so a healthy server was taken for a hung one (test_pool's
# test_goes_to_the_server_that_has_the_models failed under load). The slow-server test sets
# its own short request timeout.
REQUEST_TIMEOUT_S = 30.0
FAST = PoolOptions(
    client=ClientOptions(
        request_timeout_s=REQUEST_TIMEOUT_S,
        job_timeout_s=60.0,
        lost_after_s=1.0,
        poll_interval_s=0.05,
    ),
    probe_interval_s=0.0,
    down_for_s=30.0,
)


@pytest.fixture
def fake() -> Iterator[FakeComfyUI]:
    server = FakeComfyUI().start()
    yield server
    server.stop()


@pytest.fixture
def fakes() -> Iterator[list[FakeComfyUI]]:
    servers = [FakeComfyUI().start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    return write_image(tmp_path / "yuki_reference.png", size=(64, 64))


RequestMaker = Callable[..., GenerationRequest]


@pytest.fixture
def make_request(reference: Path, tmp_path: Path) -> RequestMaker:
    """A request for yuki with the files the fake server has."""

    def make(method: Method = "lora_ipadapter", **changes: object) -> GenerationRequest:
        values: dict[str, object] = {
            "character": "yuki",
            "job": "job-1",
            "trigger_word": "yukicharacter",
            "prompt": "red dress",
            "variation": "outfit",
            "method": method,
            "params": METHOD_DEFAULTS[method].model_copy(update={"steps": 3}),
            "seeds": (1234,),
            "checkpoint": "rand_sd15.safetensors",
            "width": 64,
            "height": 64,
            "lora_file": tmp_path / "yuki_v1.safetensors"
            if method in ("lora_ipadapter", "lora_only")
            else None,
            "reference_file": None if method == "lora_only" else reference,
        }
        values.update(changes)
        return GenerationRequest(**values)  # type: ignore[arg-type]

    return make


def give_lora_and_identity(services: Services, name: str, source: Path | None = None) -> Path:
    """Record a ready LoRA (file in lora_models/) and a face identity for ``name``, as
    training would: a copy of ``source``, or placeholder bytes (enough for a fake ComfyUI)."""
    lora = services.store.lora_dir / f"{name}_v1.safetensors"
    lora.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        lora.write_bytes(b"not a real LoRA; ComfyUI is fake")
    else:
        shutil.copy(source, lora)
    with services.db.sessions.begin() as session:
        character = session.query(Character).filter_by(name_key=name.lower()).one()
        session.add(
            LoraVersion(character_id=character.id, version=1, path=str(lora), promoted=True)
        )
        session.add(
            FaceEmbedding(
                character_id=character.id,
                kind="identity",
                backend="dlib",
                model="test",
                dim=1,
                vector=b"\x00\x00\x00\x00",
            )
        )
    return lora
