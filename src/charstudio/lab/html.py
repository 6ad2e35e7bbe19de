"""The report as one self-contained HTML page: tables, the tune grid as a heatmap, and
contact sheets of the best and worst cells (images inlined as data URIs, so the file can be
mailed or opened anywhere). Drawn with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

from PIL import Image, ImageDraw

from charstudio.lab.report import ConsistencyReport, ReportRow
from charstudio.lab.tune import TuneResult
from charstudio.lab.types import Rates, ScoredImage
from charstudio.library.store import AssetStore

__all__ = ["heatmap_png", "render_html", "write_html"]

THUMB = 128
_STYLE = """body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccd;padding:.3rem .6rem;
text-align:right}th:first-child,td:first-child{text-align:left}caption{text-align:left;
font-weight:600}.note{color:#7a5300}img{max-width:100%}figure{margin:1rem 0}"""


def write_html(store: AssetStore, report: ConsistencyReport) -> Path:
    """Write ``reports/<name>/report-<date>.html``; returns its path."""
    stamp = report.created.strftime("%Y%m%dT%H%M%S")
    path = store.reports_dir(report.character) / f"report-{stamp}.html"
    store.write_bytes(path, render_html(report).encode("utf-8"))
    return path


def render_html(report: ConsistencyReport) -> str:
    """The page (see the module)."""
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        f"<title>Consistency report: {escape(report.character)}</title><style>{_STYLE}</style>",
        f"<h1>Consistency report: {escape(report.character)}</h1>",
        f"<p>{_source(report)}</p>",
    ]
    parts += [f'<p class="note">{escape(n)}</p>' for n in report.notes]
    parts.append(_table("Expected results, measured", report.rows))
    if report.versions:
        parts.append(_table("Per LoRA version", report.versions))
    if report.suggestion:
        parts.append(f"<p><strong>Suggestion:</strong> {escape(report.suggestion)}</p>")
    if report.tune is not None:
        parts.append(_tune_section(report.tune))
    ranked = sorted(report.rows, key=lambda r: r.rates.face_consistency)
    if ranked:
        parts.append("<h2>Contact sheets</h2>")
        parts.append(_sheet(f"Best: {ranked[-1].label}", ranked[-1].images))
        if len(ranked) > 1:
            parts.append(_sheet(f"Worst: {ranked[0].label}", ranked[0].images))
    parts.append("</html>")
    return "\n".join(parts)


def heatmap_png(tune: TuneResult) -> bytes:
    """Face consistency over the grid: LoRA strength (rows) x IP-Adapter strength."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    results = tune.results
    weights = {r.cell.character_weight for r in results}
    at_weight = None
    if len(weights) > 1:  # a third axis: draw the slice at the chosen (or first) weight
        at_weight = tune.chosen.character_weight if tune.chosen else sorted(weights, key=str)[0]
        results = [r for r in results if r.cell.character_weight == at_weight]
    loras = sorted({r.cell.lora_strength or 0.0 for r in results})
    ipas = sorted({r.cell.ipadapter_strength or 0.0 for r in results})
    grid = [[float("nan")] * len(ipas) for _ in loras]
    for r in results:
        row = loras.index(r.cell.lora_strength or 0.0)
        grid[row][ipas.index(r.cell.ipadapter_strength or 0.0)] = 100 * r.rates.face_consistency
    figure, axes = plt.subplots(figsize=(1.2 * len(ipas) + 2.5, 0.9 * len(loras) + 1.8))
    shown = axes.imshow(grid, cmap="viridis", vmin=0, vmax=100, origin="lower", aspect="auto")
    axes.set_xticks(range(len(ipas)), [f"{v:g}" for v in ipas])
    axes.set_yticks(range(len(loras)), [f"{v:g}" for v in loras])
    axes.set_xlabel("IP-Adapter strength")
    axes.set_ylabel("LoRA strength" if any(r.cell.lora_strength for r in tune.results) else "")
    for y, row_values in enumerate(grid):
        for x, value in enumerate(row_values):
            text = "-" if value != value else f"{value:.0f}%"
            axes.text(x, y, text, ha="center", va="center", color="white", fontsize=9)
    if tune.chosen is not None and tune.chosen.character_weight == at_weight:
        cy = loras.index(tune.chosen.lora_strength or 0.0)
        cx = ipas.index(tune.chosen.ipadapter_strength or 0.0)
        axes.add_patch(Rectangle((cx - 0.5, cy - 0.5), 1, 1, fill=False, ec="red", lw=2))
    figure.colorbar(shown, label="face consistency %")
    where = "" if at_weight is None else f" at character weight {at_weight:g}"
    axes.set_title(f"Face consistency per cell{where} (red: chosen)")
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _source(report: ConsistencyReport) -> str:
    when = report.created.strftime("%Y-%m-%d %H:%M UTC")
    if report.source == "history":
        return f"Read from every QC-scored generation of the library ({when})."
    prompts = "; ".join(escape(p.label()) for p in report.prompts)
    return (
        f"Measured {when}: every row generated from the same prompts ({prompts}) and "
        f"{report.seeds} seed(s) per prompt, each image checked by QC."
    )


def _percent(value: float | None) -> str:
    return "not checked" if value is None else f"{100 * value:.0f} %"


def _table(caption: str, rows: list[ReportRow]) -> str:
    variations = sorted({v for r in rows for v in r.per_variation})
    head = "".join(f"<th>{escape(v)}</th>" for v in variations)
    lines = [
        f"<table><caption>{escape(caption)}</caption><tr><th>row</th><th>strengths</th>"
        f"<th>face consistency</th><th>prompt adherence</th><th>mean similarity</th>"
        f"<th>images</th><th>expected</th>{head}</tr>"
    ]
    for row in rows:
        cells = "".join(_variation_cell(row.per_variation.get(v)) for v in variations)
        similarity = row.rates.mean_similarity
        lines.append(
            f"<tr><td>{escape(row.label)}</td><td>{escape(row.cell.label())}</td>"
            f"<td>{_percent(row.rates.face_consistency)}</td>"
            f"<td>{_percent(row.rates.prompt_adherence)}</td>"
            f"<td>{'-' if similarity is None else f'{similarity:.3f}'}</td>"
            f"<td>{row.rates.images}</td><td>{escape(row.expected or '-')}</td>{cells}</tr>"
        )
    lines.append("</table>")
    return "\n".join(lines)


def _variation_cell(rates: Rates | None) -> str:
    return "<td>-</td>" if rates is None else f"<td>{_percent(rates.face_consistency)}</td>"


def _tune_section(tune: TuneResult) -> str:
    png = base64.b64encode(heatmap_png(tune)).decode("ascii")
    chosen = "nothing" if tune.chosen is None else tune.chosen.label()
    return (
        f"<h2>Tune grid ({escape(tune.plan.run)})</h2><p>Chosen: <strong>{escape(chosen)}"
        f'</strong>. Rule: {escape(tune.rule)}.</p><figure><img alt="Heatmap of face '
        f'consistency over the tune grid" data-heatmap src="data:image/png;base64,{png}">'
        "</figure>"
    )


def _sheet(title: str, images: list[ScoredImage]) -> str:
    """Thumbnails with a PASS/FAIL bar under each, as one inlined PNG."""
    shown = images[:12]
    columns = min(6, max(1, len(shown)))
    rows = (len(shown) + columns - 1) // columns or 1
    sheet = Image.new("RGB", (columns * THUMB, rows * (THUMB + 18)), (240, 240, 240))
    draw = ImageDraw.Draw(sheet)
    for i, image in enumerate(shown):
        x, y = (i % columns) * THUMB, (i // columns) * (THUMB + 18)
        try:
            with Image.open(image.path) as opened:
                thumb = opened.convert("RGB")
                thumb.thumbnail((THUMB, THUMB))
                sheet.paste(thumb, (x, y))
        except OSError:
            draw.text((x + 4, y + 4), "missing", fill=(160, 0, 0))
        colour = (30, 130, 60) if image.identity_passed else (170, 30, 30)
        draw.rectangle((x, y + THUMB, x + THUMB - 1, y + THUMB + 17), fill=colour)
        score = "-" if image.identity is None else f"{image.identity:.2f}"
        label = f"{'PASS' if image.identity_passed else 'FAIL'} {score} s{image.seed}"
        draw.text((x + 3, y + THUMB + 3), label, fill=(255, 255, 255))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f'<figure><figcaption>{escape(title)}</figcaption><img alt="{escape(title)}" '
        f'src="data:image/png;base64,{data}"></figure>'
    )
