"""Draw the computation graph behind a tensor as SVG, in pure Python.

``draw_graph(t)`` walks ``t.grad_fn`` and its ``next_functions`` (the same
walk works for chainrule and for PyTorch tensors, by duck typing) and draws:

* leaves (blue boxes, reached through ``AccumulateGrad`` nodes' ``.variable``)
  with their values and, after ``backward()``, their ``.grad``;
* op nodes (grey, rounded) labelled with ``grad_fn.name()``;
* the output tensor and every named intermediate tensor (yellow), with the
  value and the retained gradient (``retain_grad()``) when there is one;
* edges in the forward direction; a node used several times is drawn once
  with one edge per use.

Intermediate tensors cannot be reached from the graph's nodes (neither in
PyTorch nor in chainrule), so pass ``names={"a": a, ...}`` (``locals()`` is
fine) to show their values and names; modules are expanded into their named
parameters.

The result displays inline in Jupyter (``_repr_svg_``) and ``.save(path)``
writes an ``.svg`` file. No graphviz or other system binary is needed.
"""

from __future__ import annotations

import html
import itertools
import math
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["draw_graph", "side_by_side", "GraphDrawing", "SideBySide", "format_array"]

# --------------------------------------------------------------------------- values


def _to_numpy(t: Any) -> np.ndarray | None:
    """Best-effort conversion of a tensor-like (torch, chainrule, numpy, cupy, array API) to numpy."""
    if t is None:
        return None
    obj = t
    for _ in range(4):
        if isinstance(obj, np.ndarray):
            return obj
        if isinstance(obj, (int, float, complex, np.generic)):
            return np.asarray(obj)
        if hasattr(obj, "detach") and callable(obj.detach):
            obj = obj.detach()
        mod = type(obj).__module__ or ""
        if mod.startswith("torch"):
            return obj.cpu().numpy()
        if mod.startswith("cupy") and hasattr(obj, "get"):
            return np.asarray(obj.get())
        data = getattr(obj, "data", None)
        if data is not None and data is not obj and not isinstance(data, memoryview):
            obj = data
            continue
        break
    try:
        return np.asarray(obj, dtype=float)
    except Exception:
        try:
            return np.from_dlpack(obj)
        except Exception:
            return None


def _fmt_num(v: float) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


def format_array(a: Any, max_items: int = 6) -> str:
    """Short text for a value: ``[4, 7]``, ``8.972``, or ``shape (1000, 1), mean 0.12``."""
    arr = _to_numpy(a)
    if arr is None:
        return "?"
    if arr.ndim == 0:
        return _fmt_num(arr.item())
    if arr.size <= max_items:

        def rec(x):
            if x.ndim == 0:
                return _fmt_num(x.item())
            return "[" + ", ".join(rec(s) for s in x) + "]"

        return rec(arr)
    flat = arr.astype(float).ravel()
    return f"shape {tuple(arr.shape)}, mean {_fmt_num(flat.mean())}"


def _is_tensor(v: Any) -> bool:
    return hasattr(v, "grad_fn") and hasattr(v, "requires_grad")


def _grad_of(t: Any) -> Any:
    """``t.grad`` without PyTorch's warning for non-leaf tensors that do not retain grad."""
    is_leaf = getattr(t, "is_leaf", getattr(t, "grad_fn", None) is None)
    if not is_leaf and getattr(t, "retains_grad", True) is False:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(t, "grad", None)


def _retains_grad(t: Any) -> bool:
    return bool(getattr(t, "retains_grad", False))


def _op_name(fn: Any) -> str:
    name = getattr(fn, "name", None)
    if callable(name):
        try:
            name = name()
        except Exception:
            name = None
    if not isinstance(name, str) or not name:
        name = type(fn).__name__
    return name.replace("torch::autograd::", "")


def _expand_names(names: Any) -> list[tuple[str, Any]]:
    if names is None:
        return []
    items = names.items() if isinstance(names, Mapping) else names
    out: list[tuple[str, Any]] = []
    for k, v in items:
        if not isinstance(k, str) and isinstance(v, str):  # {tensor: "name"}
            k, v = v, k
        if not isinstance(k, str) or k.startswith("_"):
            continue
        if hasattr(v, "named_parameters") and callable(v.named_parameters) and not _is_tensor(v):
            try:
                for pn, p in v.named_parameters():
                    out.append((f"{k}.{pn}", p))
            except Exception:
                pass
            continue
        if _is_tensor(v):
            out.append((k, v))
    return out


# --------------------------------------------------------------------------- graph model


@dataclass
class Node:
    id: str
    kind: str  # "leaf", "op" or "tensor"
    title: str
    value: str | None = None
    grad: str | None = None
    note: str | None = None
    root: bool = False
    # layout
    col: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0

    @property
    def lines(self) -> list[tuple[str, str]]:
        out = [("title", self.title)]
        if self.value is not None:
            out.append(("value", "= " + self.value))
        if self.grad is not None:
            out.append(("grad", "grad " + self.grad))
        if self.note is not None:
            out.append(("note", self.note))
        return out


@dataclass
class Edge:
    src: str
    dst: str
    index: int = 0  # position among the consumer's next_functions
    parallel: int = 0  # 0 for the first edge between a pair, 1 for the second, ...


@dataclass
class _Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    keep: list[Any] = field(default_factory=list)  # keeps walked objects alive so ids stay unique


def _build(tensor: Any, names: Any, root_name: str | None, show_values: bool, show_grads: bool) -> _Graph:
    g = _Graph()
    named = _expand_names(names)
    g.keep.append(named)
    leaf_names: dict[int, str] = {}
    fn_tensors: dict[int, tuple[str, Any]] = {}
    for n, t in named:
        fn = getattr(t, "grad_fn", None)
        if fn is None:
            leaf_names.setdefault(id(t), n)
        else:
            fn_tensors.setdefault(id(fn), (n, t))

    counter = itertools.count()
    ids: dict[tuple[str, int], str] = {}

    def new_id(key: tuple[str, int]) -> str:
        if key not in ids:
            ids[key] = f"n{next(counter)}"
        return ids[key]

    # Did a backward pass run? Then a missing non-leaf grad is worth a remark.
    leaves_seen: list[Any] = []

    def tensor_node(key, t, title, kind, is_root):
        nid = new_id(key)
        if nid in g.nodes:
            return nid
        node = Node(nid, kind, title, root=is_root)
        if show_values:
            node.value = format_array(t)
        if show_grads:
            gr = _grad_of(t)
            if gr is not None:
                node.grad = format_array(gr)
            elif kind == "tensor":
                node.note = "grad: retained" if _retains_grad(t) else None
        g.nodes[nid] = node
        return nid

    def leaf_title(var):
        n = leaf_names.get(id(var))
        if n:
            return n
        kind = type(var).__name__
        return "parameter" if kind == "Parameter" else "leaf"

    root_fn = getattr(tensor, "grad_fn", None)
    if root_fn is None:
        title = root_name or leaf_names.get(id(tensor)) or "tensor"
        kind = "leaf" if getattr(tensor, "requires_grad", False) else "tensor"
        tensor_node(("leaf", id(tensor)), tensor, title, kind, True)
        g.keep.append(tensor)
        return g

    g.keep.append(tensor)
    out_of: dict[int, str] = {}  # id(fn) -> node id that carries that fn's output

    def visit(fn) -> str:
        """Create the nodes for ``fn``; return the node id its consumers connect from."""
        if id(fn) in out_of:
            return out_of[id(fn)]
        g.keep.append(fn)
        var = getattr(fn, "variable", None)
        if var is not None:  # AccumulateGrad: draw the leaf itself
            g.keep.append(var)
            leaves_seen.append(var)
            nid = tensor_node(("leaf", id(var)), var, leaf_title(var), "leaf", var is tensor)
            out_of[id(fn)] = nid
            return nid
        nid = new_id(("op", id(fn)))
        g.nodes[nid] = Node(nid, "op", _op_name(fn))
        carrier = nid
        if fn is root_fn:
            t_title = root_name or fn_tensors.get(id(fn), ("output", None))[0]
            tid = tensor_node(("tensor", id(fn)), tensor, t_title, "tensor", True)
            g.edges.append(Edge(nid, tid))
            carrier = tid
        elif id(fn) in fn_tensors:
            n, t = fn_tensors[id(fn)]
            g.keep.append(t)
            tid = tensor_node(("tensor", id(fn)), t, n, "tensor", False)
            g.edges.append(Edge(nid, tid))
            carrier = tid
        out_of[id(fn)] = carrier
        for idx, pair in enumerate(getattr(fn, "next_functions", ()) or ()):
            nxt = pair[0] if isinstance(pair, (tuple, list)) else pair
            if nxt is None:
                continue
            src = visit(nxt)
            g.edges.append(Edge(src, nid, idx))
        return carrier

    visit(root_fn)

    # After backward, say so for intermediates whose grad was not retained.
    if show_grads and any(_grad_of(v) is not None for v in leaves_seen):
        for (kind, _), nid in ids.items():
            node = g.nodes[nid]
            if kind == "tensor" and node.grad is None and node.note is None:
                node.note = "grad: None (not retained)"

    # number parallel edges
    seen: dict[tuple[str, str], int] = {}
    for e in g.edges:
        k = (e.src, e.dst)
        e.parallel = seen.get(k, 0)
        seen[k] = e.parallel + 1
    return g


# --------------------------------------------------------------------------- layout

_CHAR_W = 7.3
_LINE_H = 17.0
_PAD_X = 10.0
_PAD_Y = 7.0
_COL_GAP = 56.0
_ROW_GAP = 18.0
_MARGIN = 16.0


def _layout(g: _Graph) -> tuple[float, float]:
    nodes = g.nodes
    for n in nodes.values():
        n.w = max(len(t) for _, t in n.lines) * _CHAR_W + 2 * _PAD_X
        n.h = len(n.lines) * _LINE_H + 2 * _PAD_Y
    consumers: dict[str, list[str]] = {k: [] for k in nodes}
    producers: dict[str, list[str]] = {k: [] for k in nodes}
    for e in g.edges:
        consumers[e.src].append(e.dst)
        producers[e.dst].append(e.src)

    # depth = longest path to the output; the output is in the rightmost column
    depth: dict[str, int] = {}
    order = list(nodes)  # DFS discovery order (ids are numbered in visit order)

    def dep(k, stack=()):
        if k in depth:
            return depth[k]
        cs = consumers[k]
        d = 0 if not cs else 1 + max(dep(c) for c in cs)
        depth[k] = d
        return d

    for k in order:
        dep(k)
    maxd = max(depth.values()) if depth else 0
    for k, n in nodes.items():
        n.col = maxd - depth[k]

    cols: dict[int, list[str]] = {}
    for k in order:
        cols.setdefault(nodes[k].col, []).append(k)
    col_w = {c: max(nodes[k].w for k in ks) for c, ks in cols.items()}
    xs, x = {}, _MARGIN
    for c in range(maxd + 1):
        xs[c] = x
        x += col_w.get(c, 0) + _COL_GAP
    width = x - _COL_GAP + _MARGIN

    # vertical placement, right to left: each node near the mean of its consumers
    for c in range(maxd, -1, -1):
        ks = cols.get(c, [])
        desired = {}
        for i, k in enumerate(ks):
            cs = consumers[k]
            if cs:
                # slight offset by input index so a consumer's inputs keep their order
                ys = []
                for e in g.edges:
                    if e.src == k:
                        dst = nodes[e.dst]
                        nin = max(1, len(producers[e.dst]))
                        ys.append(dst.y + dst.h / 2 + (e.index - (nin - 1) / 2) * 0.01)
                desired[k] = sum(ys) / len(ys)
            else:
                desired[k] = i * 100.0
        ks.sort(key=lambda k: (desired[k], order.index(k)))
        pos, prev_bottom = [], -math.inf
        for k in ks:
            top = max(desired[k] - nodes[k].h / 2, prev_bottom + _ROW_GAP)
            pos.append(top)
            prev_bottom = top + nodes[k].h
        shift = sum(desired[k] - nodes[k].h / 2 - p for k, p in zip(ks, pos)) / max(1, len(ks))
        for k, p in zip(ks, pos):
            nodes[k].y = p + shift
            nodes[k].x = xs[c] + (col_w[c] - nodes[k].w) / 2
    top = min((n.y for n in nodes.values()), default=0.0)
    for n in nodes.values():
        n.y += _MARGIN - top
    height = max((n.y + n.h for n in nodes.values()), default=0.0) + _MARGIN
    return width, height


# --------------------------------------------------------------------------- SVG

_STYLE = {
    "leaf": ("#dbeafe", "#1d4ed8", 3),
    "op": ("#f3f4f6", "#6b7280", 12),
    "tensor": ("#fef9c3", "#a16207", 3),
}
_TEXT = {"title": "#111827", "value": "#1f2937", "grad": "#b91c1c", "note": "#6b7280"}
_FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _edge_path(g: _Graph, e, bend: float) -> tuple[str, float]:
    """An edge's SVG path, and how far below the drawing it reaches (0 when it stays inside).

    An edge that skips columns would cross the boxes standing between its ends (a layer used twice
    feeds a node two columns away): it detours above those boxes, or below when there is no room.
    """
    a, b = g.nodes[e.src], g.nodes[e.dst]
    x1, y1 = a.x + a.w, a.y + a.h / 2
    x2, y2 = b.x, b.y + b.h / 2
    low, high = min(y1, y2) - 4.0, max(y1, y2) + 4.0
    between = [n for n in g.nodes.values()
               if a.col < n.col < b.col and n.y < high and n.y + n.h > low]
    if not between:
        dx = max(24.0, (x2 - x1) / 2)
        return (f"M {x1:.1f} {y1:.1f} C {x1 + dx:.1f} {y1 + bend * 2:.1f}, {x2 - dx:.1f} "
                f"{y2 + bend * 2:.1f}, {x2:.1f} {y2:.1f}"), 0.0
    above = min(n.y for n in between) - 10.0 + bend
    below = max(n.y + n.h for n in between) + 10.0 + bend
    detour = above if above > 2.0 else below
    left = min(n.x for n in between) - 8.0
    right = max(n.x + n.w for n in between) + 8.0
    path = (f"M {x1:.1f} {y1:.1f} C {(x1 + left) / 2:.1f} {y1:.1f}, {(x1 + left) / 2:.1f} {detour:.1f}, "
            f"{left:.1f} {detour:.1f} L {right:.1f} {detour:.1f} C {(right + x2) / 2:.1f} {detour:.1f}, "
            f"{(right + x2) / 2:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}")
    return path, max(0.0, detour + 6.0)


def _render(g: _Graph, title: str | None) -> str:
    width, height = _layout(g)
    pair_count: dict[tuple[str, str], int] = {}
    for e in g.edges:
        pair_count[(e.src, e.dst)] = pair_count.get((e.src, e.dst), 0) + 1
    paths = []
    for e in g.edges:
        npar = pair_count[(e.src, e.dst)]
        path, reach = _edge_path(g, e, (e.parallel - (npar - 1) / 2) * 16.0)
        paths.append(path)
        height = max(height, reach + _MARGIN)
    title_h = 22.0 if title else 0.0
    height += title_h
    uid = uuid.uuid4().hex[:8]
    marker = f"cr-arrow-{uid}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chainrule-graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" style="max-width:100%;height:auto" '
        f'font-family="{_FONT}" font-size="12">',
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#4b5563"/>'
        f"</marker></defs>",
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="white"/>',
    ]
    if title:
        out.append(f'<text class="graph-title" x="{_MARGIN}" y="16" font-weight="bold" fill="#111827">{_esc(title)}</text>')
    out.append(f'<g transform="translate(0,{title_h:.0f})">')
    for e, path in zip(g.edges, paths):
        a, b = g.nodes[e.src], g.nodes[e.dst]
        out.append(
            f'<g class="edge" data-src="{e.src}" data-dst="{e.dst}"><title>{_esc(a.title)} → {_esc(b.title)}</title>'
            f'<path d="{path}" fill="none" stroke="#4b5563" stroke-width="1.3" marker-end="url(#{marker})"/></g>'
        )
    for n in g.nodes.values():
        fill, stroke, r = _STYLE[n.kind]
        cls = f"node {n.kind}" + (" root" if n.root else "")
        out.append(f'<g class="{cls}" id="{n.id}-{uid}" data-id="{n.id}" data-title="{_esc(n.title)}">')
        tip = "; ".join(t for _, t in n.lines)
        out.append(f"<title>{_esc(tip)}</title>")
        sw = 2.2 if n.root else 1.2
        out.append(
            f'<rect x="{n.x:.1f}" y="{n.y:.1f}" width="{n.w:.1f}" height="{n.h:.1f}" rx="{r}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>'
        )
        for i, (role, text) in enumerate(n.lines):
            ty = n.y + _PAD_Y + (i + 0.78) * _LINE_H
            weight = ' font-weight="bold"' if role == "title" else ""
            out.append(
                f'<text class="{role}" x="{n.x + n.w / 2:.1f}" y="{ty:.1f}" text-anchor="middle" '
                f'fill="{_TEXT[role]}"{weight}>{_esc(text)}</text>'
            )
        out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out)


class GraphDrawing:
    """An SVG drawing of a computation graph; shows inline in Jupyter."""

    def __init__(self, svg: str, graph: _Graph):
        self.svg = svg
        self.nodes = list(graph.nodes.values())
        self.edges = [(e.src, e.dst) for e in graph.edges]

    def _repr_svg_(self) -> str:
        return self.svg

    def __str__(self) -> str:
        return self.svg

    def node(self, title: str) -> Node:
        """The node with this title (a name given in ``names``, or an op name)."""
        for n in self.nodes:
            if n.title == title:
                return n
        raise KeyError(title)

    def save(self, path) -> None:
        """Write the drawing as an ``.svg`` file (or ``.html``, wrapping it in a page)."""
        p = str(path)
        text = self.svg
        if p.lower().endswith((".html", ".htm")):
            text = f"<!doctype html><meta charset='utf-8'><body>{self.svg}</body>"
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)

    def __repr__(self) -> str:
        return f"<GraphDrawing: {len(self.nodes)} nodes, {len(self.edges)} edges>"


def draw_graph(
    tensor: Any,
    names: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    *,
    root_name: str | None = None,
    title: str | None = None,
    show_values: bool = True,
    show_grads: bool = True,
) -> GraphDrawing:
    """Draw the graph that produced ``tensor`` (a chainrule or a PyTorch tensor).

    ``names`` maps names to tensors (or modules, expanded to their parameters);
    ``locals()`` works. Named leaves are labelled; named intermediates are drawn as
    tensor boxes after the op that made them, with value and retained grad.
    """
    g = _build(tensor, names, root_name, show_values, show_grads)
    return GraphDrawing(_render(g, title), g)


class SideBySide:
    """Several drawings next to each other (``_repr_html_``), e.g. chainrule and PyTorch."""

    def __init__(self, drawings: list[GraphDrawing], titles: list[str] | None = None):
        self.drawings = drawings
        self.titles = titles or [""] * len(drawings)

    def _repr_html_(self) -> str:
        cells = "".join(
            f'<div style="margin-right:24px"><div style="font-weight:bold;font-family:sans-serif;'
            f'margin-bottom:4px">{_esc(t)}</div>{d.svg}</div>'
            for d, t in zip(self.drawings, self.titles)
        )
        return f'<div class="chainrule-side-by-side" style="display:flex;flex-wrap:wrap;align-items:flex-start">{cells}</div>'

    def save(self, path) -> None:
        with open(str(path), "w", encoding="utf-8") as f:
            f.write(f"<!doctype html><meta charset='utf-8'><body>{self._repr_html_()}</body>")


def side_by_side(*drawings: GraphDrawing, titles: list[str] | None = None) -> SideBySide:
    """Show drawings next to each other: ``side_by_side(draw_graph(b), draw_graph(b_torch), titles=[...])``."""
    return SideBySide(list(drawings), list(titles) if titles else None)
