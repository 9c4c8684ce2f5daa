"""Math in the feedback HTML that renders offline: TeX becomes inline SVG, drawn by matplotlib.

nbconvert's HTML loads MathJax from a CDN, so a student reading feedback offline (or behind a
school proxy) sees raw ``$...$``.  Here every ``$...$`` and ``$$...$$`` of a markdown cell
(outside code) is drawn once by matplotlib's mathtext (a TeX subset, no LaTeX installation)
into an ``<img>`` with the SVG inline, and the page carries no MathJax at all.  A formula
mathtext cannot draw stays as its TeX source, in a ``<code>``, still readable.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import re

from jinja2 import DictLoader
from nbconvert import HTMLExporter

# nbconvert's classic page, less the scripts it loads from CDNs (MathJax, jQuery, require.js, mermaid):
# feedback is static, and must read the same offline.
_TEMPLATE = DictLoader({"feedback.html.j2": "{%- extends 'classic/index.html.j2' -%}\n" + "".join(
    f"{{%- block {name} -%}}{{%- endblock {name} -%}}\n"
    for name in ("html_head_js_mathjax", "html_head_js_jquery", "html_head_js_requirejs", "html_head_js_mermaidjs"))})
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$", re.S)
# What the course's TeX uses that mathtext spells differently or does not have (sizes are dropped).
_SPELLINGS = [(re.compile(r"\\[td]?frac\s*(\d)\s*(\d)"), r"\\frac{\1}{\2}"), (re.compile(r"\\[td]frac\b"), r"\\frac"), (re.compile(r"\\[bB]igg?[lr]?\b"), ""),
              (re.compile(r"\\underbrace\{([^{}]*)\}_\{((?:[^{}]|\{[^{}]*\})*)\}"), r"\\underset{\2}{\1}"),
              (re.compile(r"\\text\{"), r"\\mathrm{"),
              (re.compile(r"\\(mathbf|mathrm|mathbb|mathcal|mathit)\s+(\w)"), r"\\\1{\2}")]


def exporter() -> HTMLExporter:
    return HTMLExporter(template_name="classic", extra_loaders=[_TEMPLATE], template_file="feedback.html.j2")


@functools.lru_cache(maxsize=4096)
def formula_html(tex: str, display: bool) -> str:
    """One formula as an <img> holding its SVG, or its TeX in <code> if mathtext cannot draw it."""
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    spelled = " ".join(tex.split())
    for pattern, replacement in _SPELLINGS:
        spelled = pattern.sub(replacement, spelled)
    buf = io.BytesIO()
    try:
        depth = mathtext.math_to_image(f"${spelled}$", buf, prop=FontProperties(size=13 if display else 11),
                                       format="svg")
    except Exception:  # noqa: BLE001 - any TeX mathtext does not know: shown as its source
        buf, depth = io.BytesIO(), 0
    # Inline elements only (a <div> would open an HTML block and swallow the markdown after it);
    # display math is an image shown as a centred block.
    block = "display:block;margin:0.5em auto;text-align:center;" if display else ""
    if buf.tell() == 0:
        return f'<code style="{block}">{html.escape(tex)}</code>'.replace(' style=""', "")
    data = base64.b64encode(buf.getvalue()).decode()
    return (f'<img class="math" alt="{html.escape(tex)}" style="{block}vertical-align:-{depth or 0:.1f}px" '
            f'src="data:image/svg+xml;base64,{data}">')


def markdown_with_svg_math(source: str) -> str:
    parts = _CODE.split(source)
    for i in range(0, len(parts), 2):    # the even parts lie outside code
        parts[i] = _MATH.sub(lambda m: formula_html((m.group(1) or m.group(2)).strip(), m.group(1) is not None),
                             parts[i])
    return "".join(parts)


def offline_math(nb) -> None:
    """Replace the TeX of every markdown cell of ``nb`` by drawn formulas, in place."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = markdown_with_svg_math(cell.source)
