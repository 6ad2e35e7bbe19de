"""The gated generation (issue 13 part 3) with the photo backend and the real dlib models:
failures regenerated with the next seeds, rejected images kept with their reasons, the
budget, best-of-N and ``--no-qc``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from charstudio.backends import GenerateRequest, GenerationService
from charstudio.backends.service_types import GenerationDefaults
from charstudio.config import load_settings
from charstudio.errors import InvalidParameter, NotFound
from charstudio.jobs import JobStore
from charstudio.library.qc_policy import QCPolicy
from charstudio.qc.checker import QualityChecker
from charstudio.qc.gate import CheckedResult, generate_checked, generate_gated, next_seeds
from charstudio.services import Services, build_services
from charstudio.workflows.request import SEED_MAX
from tests.backends.photo_backend import PhotoBackend
from tests.backends.photo_outputs import Kind, PhotoScenario
from tests.dataset.test_tagger import write_standin
from tests.faces.conftest import DATA, PEOPLE
from tests.qc.conftest import make_character


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    built = build_services(load_settings(home=tmp_path_factory.mktemp("gate-home")))
    make_character(built)
    yield built
    built.close()


def run(
    services: Services,
    script: dict[int, Kind],
    seed: int,
    count: int = 1,
    **policy: int,
) -> CheckedResult:
    scenario = PhotoScenario().script(script)
    generation = GenerationService(
        library=services.library,
        store=services.store,
        db=services.db,
        defaults=GenerationDefaults(checkpoint="rand_sd15.safetensors"),
        backends={"photos": lambda: PhotoBackend(scenario)},
    )
    base = services.qc.checker("obama")
    checker = QualityChecker(
        backend=base.backend, identity=base.identity, policy=QCPolicy(**policy)
    )
    request = GenerateRequest(
        prompt="a red dress",
        variation="outfit",
        seed=seed,
        count=count,
        backend="photos",
        width=512,
        height=512,
    )
    return generate_checked(generation, checker, "obama", request)


def test_a_stranger_is_rejected_and_regenerated_with_the_next_seed(services: Services) -> None:
    result = run(services, {500: "stranger", 501: "own"}, 500)
    assert [image.seed for image in result.images] == [501]
    assert (result.attempts, result.extra_attempts, result.partial) == (2, 1, False)
    [rejected] = result.rejected
    path = Path(rejected.image.path)
    assert path.parent.name == "rejected" and path.parent.parent.name == result.job
    assert path.is_file() and path.name.endswith("_500.png")
    assert any("not the character" in r for r in rejected.reasons)
    sidecar = json.loads(Path(rejected.qc_file).read_text())
    assert sidecar["reasons"] == rejected.reasons and sidecar["qc"]["checks"]
    assert Path(result.images[0].path).parent.name == result.job
    assert result.face_consistency == 0.5 and result.prompt_adherence is None


def test_a_blank_frame_is_rejected_as_blank(services: Services) -> None:
    result = run(services, {510: "blank", 511: "own"}, 510)
    assert [image.seed for image in result.images] == [511]
    assert any(r.startswith("blank:") for r in result.rejected[0].reasons)


def test_attempts_run_out_and_the_result_is_partial(services: Services) -> None:
    script: dict[int, Kind] = {520: "own", 521: "stranger", 522: "black", 523: "stranger"}
    result = run(services, script, 520, count=2, extra_attempts=1)
    # Two asked, 520 passes, 521 fails; the budget (1 per requested image: 2) takes 522, 523.
    assert result.partial
    assert [image.seed for image in result.images] == [520]
    assert sorted(Path(r.image.path).name.split("_")[-1] for r in result.rejected) == [
        "521.png",
        "522.png",
        "523.png",
    ]
    assert (result.requested, result.attempts, result.extra_attempts) == (2, 4, 2)
    assert result.face_consistency == 0.25


def test_best_of_n_keeps_the_higher_identity_candidate(services: Services) -> None:
    result = run(services, {530: "own", 531: "own"}, 530, candidates=2)
    assert result.attempts == 2 and not result.partial
    [kept] = result.kept
    [loser] = result.rejected
    assert kept.qc.identity is not None and loser.qc.identity is not None
    assert kept.qc.identity >= loser.qc.identity
    assert loser.qc.passed and loser.reasons[0].startswith("candidate:")


def test_no_qc_keeps_everything(services: Services) -> None:
    scenario = PhotoScenario().script({540: "stranger", 541: "blank"})
    generation = GenerationService(
        library=services.library,
        store=services.store,
        db=services.db,
        defaults=GenerationDefaults(checkpoint="rand_sd15.safetensors"),
        backends={"photos": lambda: PhotoBackend(scenario)},
    )
    common = {"prompt": "a red dress", "seed": 540, "count": 2, "backend": "photos"}
    request = GenerateRequest(**common, width=512, height=512, qc=False)  # type: ignore[arg-type]
    result = generate_gated(generation, services.qc.gate, "obama", request)
    assert not isinstance(result, CheckedResult)
    assert [image.seed for image in result.images] == [540, 541]
    assert all(Path(image.path).parent.name == result.job for image in result.images)
    # With QC (the default) the same seeds are gated.
    gated = generate_gated(
        generation,
        services.qc.gate,
        "obama",
        request.model_copy(update={"qc": True, "seed": 550}),
    )
    assert isinstance(gated, CheckedResult)


def test_a_gated_job_whose_attempts_run_out_ends_partial(services: Services) -> None:
    result = run(services, {560: "stranger", 561: "stranger"}, 560, extra_attempts=1)
    assert result.partial and result.images == []
    job = JobStore(services.db, services.store.home).get(result.job)
    assert job.state == "partial" and job.has_result and job.finished
    assert job.result["partial"] is True and len(job.result["rejected"]) == 2


def test_count_times_candidates_over_the_limit_is_refused_before_anything_runs(
    services: Services,
) -> None:
    before = len(list(services.store.outputs_dir("obama").rglob("*.png")))
    with pytest.raises(InvalidParameter, match=r"count 40 x 2 candidate\(s\).*--qc-candidates"):
        run(services, {}, 570, count=40, candidates=2)
    assert len(list(services.store.outputs_dir("obama").rglob("*.png"))) == before


def test_retries_near_the_largest_seed_count_down_instead_of_overflowing(
    services: Services,
) -> None:
    assert next_seeds([5, 6], 2) == 7
    assert next_seeds([SEED_MAX - 1, SEED_MAX], 2) == SEED_MAX - 3
    result = run(services, {SEED_MAX: "stranger", SEED_MAX - 1: "own"}, SEED_MAX)
    assert [image.seed for image in result.images] == [SEED_MAX - 1]
    assert [r.image.seed for r in result.rejected] == [SEED_MAX]


def test_with_only_an_adherence_model_images_are_gated_on_adherence(tmp_path: Path) -> None:
    tagger = write_standin(tmp_path / "tagger")
    built = build_services(load_settings(home=tmp_path / "data", qc_tagger=tagger))
    try:
        built.library.create("mia", [DATA / f for f in PEOPLE["obama"]])  # no faces extract
        checker = built.qc.gate("mia")
        assert checker is not None and checker.identity is None
        generation = GenerationService(
            library=built.library,
            store=built.store,
            db=built.db,
            defaults=GenerationDefaults(checkpoint="rand_sd15.safetensors"),
            backends={"photos": lambda: PhotoBackend(PhotoScenario().script({584: "black"}))},
        )
        # The stand-in tagger sees "red theme" in the character's photos but nothing in a
        # black frame: seed 584 (scripted black) fails, the retry 585 (own photo) passes.
        request = GenerateRequest(  # type: ignore[call-arg]
            prompt="a red_theme dress", seed=584, count=1, backend="photos", width=512, height=512
        )
        result = generate_gated(generation, built.qc.gate, "mia", request)
        assert isinstance(result, CheckedResult)
        assert result.face_consistency is None  # identity "not checked", not a failure
        assert (result.prompt_adherence, result.attempts, result.partial) == (0.5, 2, False)
        assert [image.seed for image in result.images] == [585]
        [rejected] = result.rejected
        assert any("missing: red theme" in r for r in rejected.reasons)
        statuses = {c.check: c.status for c in result.kept[0].qc.checks}
        assert statuses["identity"] == "not_checked" and statuses["adherence_tags"] == "pass"
    finally:
        built.close()


def test_without_identity_or_adherence_model_there_is_nothing_to_gate(tmp_path: Path) -> None:
    built = build_services(load_settings(home=tmp_path / "data"))
    try:
        built.library.create("mia", [DATA / f for f in PEOPLE["obama"]])
        assert built.qc.gate("mia") is None
        with pytest.raises(NotFound):
            built.qc.gate("nobody")
    finally:
        built.close()
