"""``tune``: the known best cell is found, rates are exact, runs resume, bad input is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from charstudio.backends.types import CancelToken
from charstudio.errors import GenerationCancelled, InvalidParameter, NotFound
from charstudio.lab import Cell, LabPrompt, TuneSpec, parse_strengths, read_provenance
from charstudio.lab.service import busy_seconds
from charstudio.lab.tune import MAX_TUNE_IMAGES
from charstudio.library.models import Character, Generation, Job
from tests.lab.conftest import Lab, make_lab

GRID = TuneSpec(
    lora_strengths=(0.6, 0.7, 0.8), ipadapter_strengths=(0.5, 0.6), seeds=2, backend="photos"
)


def test_tune_finds_the_known_best_cell_and_applies_it(world: Lab) -> None:
    result = world.lab.tune("obama", GRID)
    rates = {r.cell.key: r.rates.face_consistency for r in result.results}
    # Own photos only where LoRA >= 0.7 and IP-Adapter >= 0.55: exactly two cells, tied.
    assert rates == {
        "lora0.6_ipa0.5": 0.0,
        "lora0.6_ipa0.6": 0.0,
        "lora0.7_ipa0.5": 0.0,
        "lora0.7_ipa0.6": 1.0,
        "lora0.8_ipa0.5": 0.0,
        "lora0.8_ipa0.6": 1.0,
    }
    assert result.chosen == Cell(lora_strength=0.7, ipadapter_strength=0.6)  # ties: lower
    assert "not checked" in result.rule  # no adherence model: said, not a silent pass
    assert all(r.rates.images == 6 and r.rates.prompt_adherence is None for r in result.results)
    assert {r.cell.key: sorted(r.per_variation) for r in result.results}["lora0.7_ipa0.6"] == [
        "background",
        "outfit",
        "pose",
    ]
    assert result.applied == {"lora_strength": 0.7, "ipadapter_strength": 0.6}
    profile = world.services.library.profile("obama")
    assert (profile.params.lora_strength, profile.params.ipadapter_strength) == (0.7, 0.6)
    provenance = read_provenance(world.services.store, "obama")
    assert provenance is not None and provenance.run == result.plan.run
    assert (provenance.lora_version, provenance.face_consistency) == (1, 1.0)
    # Every image went through the generation service and carries its QC in its row.
    seeds = sorted({s for _, s in world.backend.made})
    assert seeds == list(range(1000, 1006)) and len(world.backend.made) == 36


def test_a_value_set_by_hand_is_kept_unless_apply(world: Lab) -> None:
    world.services.library.update("obama", overrides={"lora_strength": 0.75})
    result = world.lab.tune("obama", GRID)
    assert result.kept_by_hand == {"lora_strength": 0.75}
    assert result.applied == {"ipadapter_strength": 0.6}
    assert world.services.library.profile("obama").params.lora_strength == 0.75
    forced = world.lab.tune("obama", GRID, force=True)  # every cell kept from before
    assert forced.applied == {"lora_strength": 0.7, "ipadapter_strength": 0.6}
    assert len(world.backend.made) == 36  # nothing generated again
    # Once tuned, a later tune may move it again (it is no longer the user's value).
    assert world.lab.tune("obama", GRID).kept_by_hand == {}


def test_a_killed_run_resumes_without_remeasuring(tmp_path: Path) -> None:
    first = make_lab(tmp_path / "home")
    try:
        first.backend.cancel_after = 7  # two cells of three prompts, then the next one's first
        with pytest.raises(GenerationCancelled):
            first.lab.tune("obama", GRID, cancel=CancelToken())
        folder = Path(first.lab.plan_tune("obama", GRID).run_dir)
        assert len(list((folder / "cells").glob("*.json"))) == 2
        assert first.lab.plan_tune("obama", GRID).cells_done == 2
        first.backend.cancel_after = None
        made_before = len(first.backend.made)
        result = first.lab.tune("obama", GRID)
        # Only the four cells not measured were generated (3 prompts x 2 seeds each).
        assert len(first.backend.made) - made_before == 4 * 6
        assert result.chosen == Cell(lora_strength=0.7, ipadapter_strength=0.6)
        saved = json.loads((folder / "result.json").read_text())
        assert saved["chosen"] == {
            "lora_strength": 0.7,
            "ipadapter_strength": 0.6,
            "character_weight": None,
        }
    finally:
        first.services.close()


def test_dry_run_plans_and_estimates_from_recent_speed(world: Lab) -> None:
    plan = world.lab.plan_tune("obama", GRID)
    assert (len(plan.cells), plan.images, plan.cells_done) == (6, 36, 0)
    assert plan.estimate_s is None and "no finished generation on photos" in plan.estimate_basis
    assert world.backend.made == []
    world.lab.tune("obama", GRID.model_copy(update={"lora_strengths": (0.7,)}))
    again = world.lab.plan_tune("obama", GRID)
    assert again.seconds_per_image is not None and again.estimate_s is not None
    assert "s per image over the last" in again.estimate_basis


def test_busy_seconds_counts_overlaps_once() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(s: float) -> datetime:
        return t0 + timedelta(seconds=s)

    assert busy_seconds([]) == 0
    assert busy_seconds([(at(0), at(10)), (at(5), at(15)), (at(6), at(7))]) == 15
    assert busy_seconds([(at(20), at(30)), (at(0), at(10))]) == 20  # a gap is not counted


def test_the_estimate_counts_jobs_run_side_by_side_once(world: Lab) -> None:
    """Two jobs of two images, running 0-10 s and 5-15 s: 15 s for 4 images, not 20."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with world.services.db.sessions.begin() as session:
        character = session.scalar(select(Character.id).where(Character.name == "obama"))
        for n, (start, end) in enumerate([(0, 10), (5, 15)]):
            job = f"side-by-side-{n}"
            session.add(
                Job(
                    id=job, kind="generate", character_id=character, state="succeeded",
                    started_at=t0 + timedelta(seconds=start),
                    finished_at=t0 + timedelta(seconds=end),
                )
            )  # fmt: skip
            session.flush()  # the job row before the rows that name it
            for seed in range(2):
                session.add(
                    Generation(
                        character_id=character, job_id=job, backend="photos",
                        method="lora_ipadapter", prompt="p", seed=seed, path=f"{job}-{seed}.png",
                    )
                )  # fmt: skip
    plan = world.lab.plan_tune("obama", GRID)
    assert plan.seconds_per_image == 3.75
    assert plan.estimate_s is not None and "overlaps counted once" in plan.estimate_basis


def test_bad_input_is_refused_before_anything_runs(world: Lab, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one value"):
        TuneSpec(lora_strengths=())
    with pytest.raises(ValueError, match="within 0-2"):
        TuneSpec(ipadapter_strengths=(0.5, 3.0))
    with pytest.raises(ValueError):
        TuneSpec(lora_strengths=(float("nan"),))
    big = TuneSpec(
        lora_strengths=tuple(0.1 * i for i in range(1, 11)),
        ipadapter_strengths=tuple(0.1 * i for i in range(1, 11)),
        backend="photos",
    )
    with pytest.raises(
        InvalidParameter, match=rf"100 cells x 6 images = 600 images.*{MAX_TUNE_IMAGES}.*--yes"
    ):
        world.lab.tune("obama", big)
    assert world.backend.made == []
    with pytest.raises(NotFound, match="no character named"):
        world.lab.plan_tune("nobody", GRID)
    assert TuneSpec(prompts=(LabPrompt(variation=None, text="x"),)).prompts[0].text == "x"


def test_a_character_without_identity_or_lora_is_told_what_to_run(tmp_path: Path) -> None:
    built = make_lab(tmp_path / "home", loras=False)
    try:
        with pytest.raises(
            InvalidParameter, match=r"needs a LoRA: obama has none.*charstudio train obama"
        ):
            built.lab.plan_tune("obama", GRID)
        ipa_only = built.lab.plan_tune("obama", TuneSpec(backend="photos"))
        assert ipa_only.method == "ipadapter_only" and len(ipa_only.cells) == 4
        built.services.library.create(
            "mia", [next(built.services.store.references_dir("obama").iterdir())]
        )
        with pytest.raises(NotFound, match="faces extract"):
            built.lab.plan_tune("mia", GRID)
    finally:
        built.services.close()


def test_the_character_weight_is_an_axis_when_asked(world: Lab) -> None:
    spec = TuneSpec(
        lora_strengths=(0.7,),
        ipadapter_strengths=(0.6,),
        character_weights=(0.3, 0.5, 0.8),
        seeds=1,
        backend="photos",
        prompts=(LabPrompt(variation="background", text="a beach"),),
    )
    result = world.lab.tune("obama", spec)
    assert [r.cell.character_weight for r in result.results] == [0.3, 0.5, 0.8]
    weights = {r.params.character_weight for r, _ in world.backend.made}
    assert weights == {0.3, 0.5, 0.8}  # each cell's weight reached the generation
    # Every cell keeps the character here: the tie goes to the weight nearest 0.5.
    assert result.chosen == Cell(lora_strength=0.7, ipadapter_strength=0.6, character_weight=0.5)
    assert result.applied["character_weight"] == 0.5
    with pytest.raises(ValueError, match="character weight must be within 0-1"):
        TuneSpec(character_weights=(1.5,))


def test_strength_lists_are_parsed_once_for_the_cli_and_the_studio() -> None:
    assert parse_strengths(None, "--lora-strengths") is None  # not given: the default axis
    assert parse_strengths("0.5, 0.6,0.7,", "--lora-strengths") == (0.5, 0.6, 0.7)
    assert parse_strengths("1", "LoRA strengths") == (1.0,)
    with pytest.raises(InvalidParameter) as words:
        parse_strengths("0.5,high", "--ipadapter-strengths")
    assert str(words.value) == (
        "--ipadapter-strengths takes numbers separated by commas, such as 0.5,0.6,0.7; "
        "'high' is not a number"
    )
    for empty in ("", ",", " , "):
        with pytest.raises(InvalidParameter, match=r"^IP-Adapter strengths is empty: give"):
            parse_strengths(empty, "IP-Adapter strengths")
    # The range is TuneSpec's to check, once, for every surface.
    with pytest.raises(ValueError, match=r"a strength must be within 0-2, got 2\.5"):
        TuneSpec(ipadapter_strengths=parse_strengths("0.5,2.5", "IP-Adapter strengths"))
