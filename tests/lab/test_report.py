"""``report``: the Expected Results table with the exact rates the generator implies, per
LoRA version with a suggestion, from history, and as a self-contained HTML page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from charstudio.errors import NotFound
from charstudio.lab import Cell, ConsistencyReport, Rates, ReportRow, TuneSpec, write_html
from charstudio.lab.report import suggest_version
from charstudio.library.assets import ready_lora_files
from charstudio.library.models import LoraVersion
from tests.lab.conftest import Lab, add_lora, copy_of_lab_root
from tests.lab.test_tune import GRID

SPEC = TuneSpec(seeds=2, backend="photos")


@pytest.fixture(scope="module")
def reported(
    tmp_path_factory: pytest.TempPathFactory, lab_root: Path
) -> Iterator[tuple[Lab, ConsistencyReport]]:
    """A world tuned over GRID, then its report with SPEC: made once for the tests that
    read that report (78 generated images, each scored by QC with the real dlib models)."""
    world = copy_of_lab_root(lab_root, tmp_path_factory.mktemp("reported") / "home")
    world.lab.tune("obama", GRID)  # applies LoRA 0.7, IP-Adapter 0.6: the tuned row
    yield world, world.lab.report("obama", SPEC)
    world.services.close()


def test_the_report_measures_every_method_with_the_same_prompts_and_seeds(
    reported: tuple[Lab, ConsistencyReport],
) -> None:
    world, report = reported
    rates = {r.label: r.rates.face_consistency for r in report.rows}
    # Seeds 1000-1005: even ones (3/6) for IP-Adapter alone, multiples of 4 (2/6) for LoRA
    # alone, none for img2img, all with both strengths held.
    assert rates == {
        "img2img": 0.0,
        "ipadapter_only": 0.5,
        "lora_only": 0.3333,
        "lora_ipadapter": 1.0,
        "tuned": 1.0,
    }
    assert all(r.rates.images == 6 for r in report.rows)
    assert [r.expected for r in report.rows] == [
        "20-40 %",
        "70-80 %",
        "70-80 %",
        "90-95 %",
        "95 %+",
    ]
    by_row = {r.label: sorted({i.seed for i in r.images}) for r in report.rows}
    assert all(seeds == list(range(1000, 1006)) for seeds in by_row.values())
    assert report.rows[1].per_variation["outfit"].face_consistency == 0.5  # seeds 1000, 1001
    versions = {r.lora_version: r.rates.face_consistency for r in report.versions}
    assert versions == {1: 1.0, 2: 0.3333}
    assert report.suggestion == "keep v1 promoted: it measures best"
    assert "LoRA v2 is worse than v1: face consistency 33% vs 100%" in report.notes
    assert any("prompt adherence not checked" in n for n in report.notes)
    assert report.tune is not None and report.tune.chosen is not None
    # A second report generates nothing new: every row is kept from the first.
    made = len(world.backend.made)
    again = world.lab.report("obama", SPEC)
    assert len(world.backend.made) == made and again.rows == report.rows


def test_only_ready_lora_versions_with_their_file_get_a_row(world: Lab) -> None:
    services = world.services
    add_lora(services, 3, promoted=False)
    with services.db.sessions.begin() as session:
        session.query(LoraVersion).filter_by(version=3).update({"status": "training"})
    with services.db.sessions() as session:
        assert [v for v, _ in ready_lora_files(session, services.store, "Obama")] == [1, 2]
    (services.store.lora_dir / "obama_v2.safetensors").unlink()
    with services.db.sessions() as session:
        assert ready_lora_files(session, services.store, "obama") == [
            (1, services.store.lora_dir / "obama_v1.safetensors")
        ]
    report = world.lab.report("obama", SPEC)
    assert report.versions == []  # one measurable version: nothing to compare
    assert [r.label for r in report.rows] == [
        "img2img",
        "ipadapter_only",
        "lora_only",
        "lora_ipadapter",
    ]


def test_the_html_report_is_self_contained(reported: tuple[Lab, ConsistencyReport]) -> None:
    world, report = reported
    path = write_html(world.services.store, report)
    assert path.parent == world.services.store.reports_dir("obama") and path.suffix == ".html"
    page = path.read_text()
    assert "<caption>Expected results, measured</caption>" in page
    assert "<caption>Per LoRA version</caption>" in page and "keep v1 promoted" in page
    assert 'data-heatmap src="data:image/png;base64,' in page
    assert page.count("data:image/png;base64,") == 3  # the heatmap and two contact sheets
    assert not re.search(r'src="(?!data:)', page)  # nothing loaded from elsewhere


def test_from_history_reads_scored_generations_without_generating(world: Lab) -> None:
    with pytest.raises(NotFound, match="no QC-scored generations of obama yet"):
        world.lab.report_from_history("obama")
    world.lab.report("obama", SPEC)
    made = len(world.backend.made)
    history = world.lab.report_from_history("obama")
    assert len(world.backend.made) == made and history.source == "history"
    rates = {r.label: (r.rates.face_consistency, r.rates.images) for r in history.rows}
    # The recorded parameters include the (default) character weight of IP-Adapter methods.
    assert rates["ipadapter_only (IP-Adapter 0.8, character weight 0.5)"] == (0.5, 6)
    assert rates["img2img (profile defaults)"] == (0.0, 6)
    assert rates["lora_ipadapter v2 (LoRA 0.7, IP-Adapter 0.6, character weight 0.5)"] == (
        0.3333,
        6,
    )
    assert history.suggestion == "keep v1 promoted: it measures best"


def test_report_of_a_character_without_identity_says_what_to_run(
    world: Lab, tmp_path: Path
) -> None:
    photo = next(world.services.store.references_dir("obama").iterdir())
    world.services.library.create("mia", [photo])
    with pytest.raises(NotFound, match="faces extract"):
        world.lab.report("mia", SPEC)


def _version_row(version: int, rate: float) -> ReportRow:
    rates = Rates(images=4, face_consistency=rate, prompt_adherence=None, mean_similarity=None)
    return ReportRow(
        label=f"v{version}",
        method="lora_ipadapter",
        lora_version=version,
        cell=Cell(),
        rates=rates,
        per_variation={},
        images=[],
    )


def test_the_version_suggestion_rule() -> None:
    better = [_version_row(1, 0.5), _version_row(2, 0.75)]
    assert suggest_version(better, 1, "obama") == (
        "promote v2 (`charstudio lora promote obama 2`): face consistency 75%",
        [],
    )
    tied = [_version_row(1, 0.5), _version_row(2, 0.5)]
    assert suggest_version(tied, 1, "obama")[0] == "keep v1 promoted: it measures best"
    worse = [_version_row(1, 0.75), _version_row(2, 0.5), _version_row(3, 0.25)]
    suggestion, notes = suggest_version(worse, 3, "obama")
    assert suggestion is not None and suggestion.startswith("promote v1")
    assert notes == [
        "LoRA v2 is worse than v1: face consistency 50% vs 75%",
        "LoRA v3 is worse than v2: face consistency 25% vs 50%",
    ]
    assert suggest_version([_version_row(1, 1.0)], 1, "obama") == (None, [])
