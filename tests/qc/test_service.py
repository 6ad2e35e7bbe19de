"""The QC service: settings refused when set, and scoring through the services."""

from __future__ import annotations

from pathlib import Path

import pytest

from charstudio.config import load_settings
from charstudio.errors import InvalidParameter
from charstudio.services import build_services
from tests.dataset.test_tagger import write_standin


def test_a_bad_clip_setting_is_refused_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "preprocessor_config.json").write_text("{}")
    services = build_services(load_settings(home=tmp_path / "data", qc_clip_model=folder))
    with pytest.raises(InvalidParameter) as info:
        _ = services.qc
    assert str(folder / "config.json") in str(info.value)


def test_a_tagger_setting_without_its_tag_list_is_refused(tmp_path: Path) -> None:
    tagger = write_standin(tmp_path / "tagger")
    (tagger / "selected_tags.csv").unlink()
    services = build_services(load_settings(home=tmp_path / "data", qc_tagger=tagger))
    with pytest.raises(InvalidParameter, match="selected_tags"):
        _ = services.qc


def test_the_tagger_setting_turns_adherence_on(tmp_path: Path) -> None:
    tagger = write_standin(tmp_path / "tagger")
    services = build_services(load_settings(home=tmp_path / "data", qc_tagger=tagger))
    assert [s.name for s in services.qc.adherence] == ["wd14-tagger"]


def test_qc_detection_size_is_its_own_setting(tmp_path: Path) -> None:
    services = build_services(load_settings(home=tmp_path / "data"))
    assert services.faces.spec.detect_long_side == 1024  # faces extract's default
    assert services.qc.spec.detect_long_side == 1024  # same by default (see the setting)
    faster = build_services(load_settings(home=tmp_path / "data", qc_detect_long_side=512))
    assert faster.qc.spec.detect_long_side == 512
    with pytest.raises(InvalidParameter, match="qc_detect_long_side"):
        load_settings(home=tmp_path / "data", qc_detect_long_side=100)
