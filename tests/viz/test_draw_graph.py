"""Structure of chainrule.viz.draw_graph's SVG on the lesson-1 graph (PyTorch and chainrule)."""

import xml.etree.ElementTree as ET

import pytest
import torch

from chainrule.viz import draw_graph, format_array, side_by_side

SVG = "{http://www.w3.org/2000/svg}"


def parse(drawing):
    root = ET.fromstring(drawing._repr_svg_())
    assert root.tag == SVG + "svg"
    nodes = {}
    for g in root.iter(SVG + "g"):
        cls = g.get("class", "").split()
        if "node" in cls:
            texts = {t.get("class"): t.text for t in g.iter(SVG + "text")}
            nodes[g.get("data-id")] = {"classes": cls, **texts}
    edges = [(g.get("data-src"), g.get("data-dst")) for g in root.iter(SVG + "g") if g.get("class") == "edge"]
    return nodes, edges


def by_title(nodes, title):
    found = [n for n in nodes.values() if n["title"] == title]
    assert len(found) == 1, (title, nodes)
    return found[0]


def lesson1(lib):
    x = lib.tensor([2.0, 1.0], requires_grad=True)
    y = lib.tensor([1.0, 3.0], requires_grad=True)
    z = lib.tensor([5.0, 2.0], requires_grad=True)
    a = x + 2 * y
    b = a + z / 2
    return x, y, z, a, b


def check_lesson1_structure(nodes, edges):
    kinds = [next(k for k in ("leaf", "op", "tensor") if k in n["classes"]) for n in nodes.values()]
    assert kinds.count("leaf") == 3  # x, y, z
    assert kinds.count("op") == 4  # add (b), add (a), mul (2*y), div (z/2)
    assert kinds.count("tensor") == 2  # the named intermediate a and the output b
    # x->add, y->mul, mul->add, add->a, a->add, z->div, div->add, add->b
    assert len(edges) == 8
    ids = set(nodes)
    assert all(s in ids and d in ids for s, d in edges)
    assert "root" in by_title(nodes, "b")["classes"]
    # every node is connected, leaves only have outgoing edges, the root only an incoming one
    for nid, n in nodes.items():
        outs = sum(s == nid for s, _ in edges)
        ins = sum(d == nid for _, d in edges)
        if "leaf" in n["classes"]:
            assert (ins, outs) == (0, 1)
        if "root" in n["classes"]:
            assert (ins, outs) == (1, 0)


def test_lesson1_torch_before_and_after_backward():
    x, y, z, a, b = lesson1(torch)
    a.retain_grad()
    names = {"x": x, "y": y, "z": z, "a": a, "b": b}
    nodes, edges = parse(draw_graph(b, names))
    check_lesson1_structure(nodes, edges)
    assert by_title(nodes, "x")["value"] == "= [2, 1]"
    assert by_title(nodes, "a")["value"] == "= [4, 7]"
    assert by_title(nodes, "b")["value"] == "= [6.5, 8]"
    assert "grad" not in by_title(nodes, "x")  # no backward yet

    b.backward(torch.ones_like(b))
    nodes, edges = parse(draw_graph(b, names))
    check_lesson1_structure(nodes, edges)
    assert by_title(nodes, "x")["grad"] == "grad [1, 1]"
    assert by_title(nodes, "y")["grad"] == "grad [2, 2]"
    assert by_title(nodes, "z")["grad"] == "grad [0.5, 0.5]"
    assert by_title(nodes, "a")["grad"] == "grad [1, 1]"  # retained
    assert "not retained" in by_title(nodes, "b")["note"]
    ops = sorted(n["title"] for n in nodes.values() if "op" in n["classes"])
    assert ops == ["AddBackward0", "AddBackward0", "DivBackward0", "MulBackward0"]


def test_intermediate_grad_not_retained_is_said(recwarn):
    x, y, z, a, b = lesson1(torch)
    b.backward(torch.ones_like(b))
    nodes, _ = parse(draw_graph(b, {"a": a, "x": x}))
    assert "grad" not in by_title(nodes, "a")
    assert by_title(nodes, "a")["note"] == "grad: None (not retained)"
    assert not [w for w in recwarn if "grad" in str(w.message)]  # no PyTorch .grad warning


def test_unnamed_graph_and_locals_style_names():
    x, y, z, a, b = lesson1(torch)
    nodes, edges = parse(draw_graph(b))
    # without names: a is not reachable, so 3 leaves + 4 ops + the output
    assert len(nodes) == 8 and len(edges) == 7
    assert [n["title"] for n in nodes.values() if "leaf" in n["classes"]] == ["leaf"] * 3
    nodes, _ = parse(draw_graph(b, {**locals(), "_hidden": x, "torch": torch}))
    assert {"x", "y", "z", "a", "b"} <= {n["title"] for n in nodes.values()}


def test_reused_node_drawn_once_with_several_edges():
    w = torch.tensor(0.9472, requires_grad=True)
    out = w * (w * 10.0)
    loss = (out - 5.0) ** 2
    loss.backward()
    d = draw_graph(loss, {"w": w, "out": out, "loss": loss})
    nodes, edges = parse(d)
    wn = [k for k, n in nodes.items() if n["title"] == "w"]
    assert len(wn) == 1
    assert sum(s == wn[0] for s, _ in edges) == 2
    assert by_title(nodes, "w")["grad"] == "grad " + format_array(w.grad)
    assert abs(w.grad.item() - 150.48) < 0.05

    sq = (w * w).sum()  # the same node twice as inputs of one op: two parallel edges
    nodes, edges = parse(draw_graph(sq, {"w": w}))
    (wid,) = [k for k, n in nodes.items() if n["title"] == "w"]
    (mul,) = [k for k, n in nodes.items() if n["title"] == "MulBackward0"]
    assert edges.count((wid, mul)) == 2


def test_module_parameters_are_named_and_linear_reuse():
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.9472)
    out = layer(layer(torch.tensor([[10.0]])))
    d = draw_graph(out, {"layer": layer})
    n = d.node("layer.weight")
    assert n.kind == "leaf"
    assert sum(1 for s, _ in d.edges if s == n.id) == 2


def test_leaf_root_and_save(tmp_path):
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    d = draw_graph(x, {"x": x})
    nodes, edges = parse(d)
    assert len(nodes) == 1 and edges == []
    d.save(tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text().startswith("<svg")
    d.save(tmp_path / "g.html")
    assert "<svg" in (tmp_path / "g.html").read_text()
    both = side_by_side(d, d, titles=["chainrule", "PyTorch"])
    html = both._repr_html_()
    assert html.count("<svg") == 2 and "PyTorch" in html


def test_format_array():
    assert format_array(torch.tensor(8.97171)) == "8.972"
    assert format_array(torch.zeros(1000, 1)) == "shape (1000, 1), mean 0"
    assert format_array([[1.0, 2.5]]) == "[[1, 2.5]]"


def _chainrule_or_skip():
    import chainrule

    if not hasattr(chainrule, "tensor"):
        pytest.skip("chainrule.tensor is not written yet")
    return chainrule


def test_lesson1_chainrule_matches_torch_drawing():
    cr = _chainrule_or_skip()
    x, y, z, a, b = lesson1(cr)
    a.retain_grad()
    b.backward(cr.ones_like(b))
    nodes, edges = parse(draw_graph(b, {"x": x, "y": y, "z": z, "a": a, "b": b}))
    check_lesson1_structure(nodes, edges)
    assert by_title(nodes, "a")["value"] == "= [4, 7]"
    assert by_title(nodes, "x")["grad"] == "grad [1, 1]"
    assert by_title(nodes, "y")["grad"] == "grad [2, 2]"
    assert by_title(nodes, "z")["grad"] == "grad [0.5, 0.5]"
    assert by_title(nodes, "a")["grad"] == "grad [1, 1]"


def test_an_edge_that_skips_a_column_detours_around_the_boxes_between():
    """A layer used twice: the weight's second edge must not run through the first use's box."""
    import re

    import chainrule

    layer = chainrule.nn.Linear(1, 1, bias=False)
    out = layer(layer(chainrule.tensor([[10.0]])))
    svg = draw_graph(out, names={"layer": layer})._repr_svg_()
    boxes = [tuple(map(float, m)) for m in re.findall(
        r'<g class="node op"[^>]*>.*?<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', svg, re.S)]
    first_use = min(boxes)  # the leftmost LinearBackward0
    x, y, w, h = first_use
    for path in re.findall(r'<path d="(M [^"]+)"', svg):
        points = [tuple(map(float, p)) for p in re.findall(r"([\d.]+) ([\d.]+)", path)]
        horizontal = [p for p in points if x < p[0] < x + w]
        assert all(not (y < py < y + h) for _, py in horizontal), "an edge runs through the first Linear box"
