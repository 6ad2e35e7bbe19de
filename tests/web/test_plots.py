"""Loss curves as inline SVG."""

from __future__ import annotations

from charstudio.web.plots import loss_svg


def test_a_curve_becomes_a_labelled_polyline() -> None:
    svg = loss_svg([[0, 1.0], [50, 0.5], [100, 0.25]], label="yuki v1")
    assert svg is not None
    assert 'aria-label="yuki v1: loss 1.0000 at step 0, 0.2500 at step 100"' in svg
    # First point top-left, last bottom-right, inside the 6-unit padding.
    assert 'points="6.0,6.0 160.0,78.0 314.0,114.0"' in svg
    assert ">step 100</text>" in svg


def test_too_short_curves_draw_nothing_and_labels_are_escaped() -> None:
    assert loss_svg([], label="x") is None
    assert loss_svg([[1, 0.5]], label="x") is None
    flat = loss_svg([[1, 0.5], [2, 0.5]], label='<b>"a"</b>')
    assert flat is not None and "<b>" not in flat and "&lt;b&gt;" in flat
