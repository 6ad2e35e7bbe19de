"""Loss curves as inline SVG: no plotting library, no image files, readable by screen readers."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

__all__ = ["loss_svg"]

_W, _H, _PAD = 320.0, 120.0, 6.0


def loss_svg(curve: Sequence[Sequence[float]], *, label: str) -> Markup | None:
    """A line of ``[step, loss]`` points, with the first and last loss written beside it.

    Returns ``None`` for fewer than two points. Only numbers reach the markup, and the
    label is escaped.
    """
    if len(curve) < 2:
        return None
    steps = [float(p[0]) for p in curve]
    losses = [float(p[1]) for p in curve]
    low, high = min(losses), max(losses)
    span_x = (steps[-1] - steps[0]) or 1.0
    span_y = (high - low) or 1.0

    def x(step: float) -> float:
        return _PAD + (step - steps[0]) / span_x * (_W - 2 * _PAD)

    def y(loss: float) -> float:
        return _PAD + (high - loss) / span_y * (_H - 2 * _PAD)

    points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, losses, strict=True))
    title = Markup.escape(
        f"{label}: loss {losses[0]:.4f} at step {steps[0]:g}, "
        f"{losses[-1]:.4f} at step {steps[-1]:g}"
    )
    return Markup(
        f'<svg class="loss" viewBox="0 0 {_W:g} {_H:g}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<rect x="0" y="0" width="{_W:g}" height="{_H:g}" fill="#f8f9fb"/>'
        f'<polyline fill="none" stroke="#2957c8" stroke-width="2" points="{points}"/>'
        f'<text x="{_PAD:g}" y="14" font-size="11">{high:.4f}</text>'
        f'<text x="{_PAD:g}" y="{_H - 8:g}" font-size="11">{low:.4f}</text>'
        f'<text x="{_W - _PAD:g}" y="{_H - 8:g}" font-size="11" text-anchor="end">'
        f"step {steps[-1]:g}</text></svg>"
    )
