"""Where a plotly figure's texts land in chromium, and which of them collide or are cut.

`TEXT_BOXES` runs in the page: the bounding box of every drawn text of every plot (titles,
annotations, axis titles, tick labels, legend entries, colour bars, the letters in heatmap cells).
`text_collisions` names each pair of texts of one plot whose boxes overlap and each text that
reaches past its plot's edge; `render` lays a figure out at a given width, the way the views'
figures are laid out in an output area of that width.
"""

import shutil
import time
from pathlib import Path

import plotly
import plotly.graph_objects as go

TEXT_BOXES = """(root) => {
  const kinds = [['.gtitle', 'title'], ['.annotation', 'note'], ['.g-xtitle', 'axis title'],
    ['.g-ytitle', 'axis title'], ['.colorbar', 'colour bar'], ['.legend', 'legend'],
    ['[class*="tick"]', 'tick']];
  const out = [];
  (root || document).querySelectorAll('.js-plotly-plot').forEach((gd, plot) => {
    const frame = gd.querySelector('.main-svg').getBoundingClientRect();
    gd.querySelectorAll('svg.main-svg text').forEach(el => {
      const text = (el.textContent || '').trim(), style = getComputedStyle(el);
      const r = el.getBoundingClientRect();
      if (!text || style.display === 'none' || style.visibility === 'hidden') return;
      if (+style.opacity === 0 || r.width < 1 || r.height < 1) return;
      const kind = (kinds.find(([sel]) => el.closest(sel)) || [null, 'cell text'])[1];
      out.push({plot, kind, text: text.slice(0, 50), x0: r.left, y0: r.top, x1: r.right,
                y1: r.bottom, frame: [frame.left, frame.top, frame.right, frame.bottom]});
    });
  });
  return out;
}"""


def text_collisions(boxes: list[dict], tolerance_px: float = 2.0) -> list[str]:
    """One line per pair of texts of one plot that overlap by more than `tolerance_px` both ways,
    and per text that reaches more than `tolerance_px` past its plot's edge."""
    found = []
    for i, a in enumerate(boxes):
        left, top, right, bottom = a["frame"]
        past = max(left - a["x0"], top - a["y0"], a["x1"] - right, a["y1"] - bottom)
        if past > tolerance_px:
            found.append(
                f"{a['kind']} {a['text']!r} is cut: it reaches {past:.0f} px past the plot"
            )
        for b in boxes[i + 1 :]:
            width = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            height = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            if a["plot"] == b["plot"] and width > tolerance_px and height > tolerance_px:
                found.append(
                    f"{a['kind']} {a['text']!r} overlaps {b['kind']} {b['text']!r} "
                    f"({width:.0f}×{height:.0f} px)"
                )
    return found


def render(page, fig: go.Figure, width: int, folder: Path) -> list[dict]:
    """`fig` drawn in `page` at `width` pixels (its own width unset, as in an output area of that
    width); the boxes of its texts."""
    script = folder / "plotly.min.js"
    if not script.exists():
        shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", script)
    fig = go.Figure(fig)
    fig.layout.width = None
    page_file = folder / f"figure_{time.monotonic_ns()}.html"
    page_file.write_text(
        fig.to_html(include_plotlyjs="plotly.min.js", full_html=True, default_width=f"{width}px")
    )
    page.goto(page_file.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg")
    page.wait_for_function("document.fonts.status === 'loaded'")
    return page.evaluate(TEXT_BOXES, None)
