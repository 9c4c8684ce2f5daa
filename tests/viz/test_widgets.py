"""Widget wiring: set a control's value, check what the panel displays."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from coursework import widget_math as wm
from coursework import widgets as cw


def text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def cls(html, name):
    """The text of the first <span class="... name ...">."""
    m = re.search(r'<span class="[^"]*\b' + re.escape(name) + r'\b[^"]*">([^<]*)</span>', html)
    assert m, (name, html[:400])
    return m.group(1)


def is_png(b):
    return bytes(b).startswith(b"\x89PNG")


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    import sys

    yield
    if "matplotlib.pyplot" in sys.modules:  # widgets never create pyplot figures
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_lesson1_sliders_redraw_graph():
    p = cw.lesson1_graph()
    assert p.error.value == ""
    assert cls(p.readout.value, "cw-a") == "[4, 7]"
    assert cls(p.readout.value, "cw-grad-y") == "[2, 2]"
    assert p.graph.value.count("<svg") >= 1 and "PyTorch" in p.graph.value
    assert "= [4, 7]" in p.graph.value and "grad [0.5, 0.5]" in p.graph.value
    before = p.graph.value
    p.sliders["x"][0].value = -3.0
    assert cls(p.readout.value, "cw-a") == "[-1, 7]"
    assert "= [-1, 7]" in p.graph.value and "= [-3, 1]" in p.graph.value
    assert p.graph.value != before
    p.retain.value = False
    assert cls(p.readout.value, "cw-grad-a") == "None (not retained)"
    assert "grad: None (not retained)" in p.graph.value
    # the drawings behind the HTML: the PyTorch one is always last
    d = p.state["drawings"][-1]
    assert d.node("x").value == "[-3, 1]" and d.node("x").grad == "[1, 1]"


def test_lesson1_shows_chainrule_graph_when_available():
    p = cw.lesson1_graph()
    if not wm.chainrule_available():
        assert "chainrule is not available" in p.graph.value
        pytest.skip("chainrule.tensor is not written yet")
    assert p.state["chainrule_error"] is None, p.state["chainrule_error"]
    assert p.graph.value.count("<svg") == 2 and "chainrule" in p.graph.value
    cr, pt = p.state["drawings"]
    assert len(cr.nodes) == len(pt.nodes) and len(cr.edges) == len(pt.edges)
    assert [n.grad for n in cr.nodes if n.kind == "leaf"] == [n.grad for n in pt.nodes if n.kind == "leaf"]


def test_lesson2_seed_sliders():
    p = cw.lesson2_seeds()
    assert cls(p.readout.value, "cw-grad-y") == "[2, 2]"
    assert cls(p.readout.value, "cw-wsum") == "14.5"  # (b * ones).sum() = 6.5 + 8
    bars_before = [r.get_height() for r in p.figure.axes[0].patches]
    png_before = bytes(p.plot.value)
    p.sliders[0].value = 2.0
    p.sliders[1].value = 0.0
    assert cls(p.readout.value, "cw-grad-x") == "[2, 0]"
    assert cls(p.readout.value, "cw-grad-z") == "[1, 0]"
    assert cls(p.readout.value, "cw-wsum") == "13"
    # all three columns (seeded, weighted sum, by hand) agree
    row = re.search(r"y\.grad</td>(.*?)</tr>", p.readout.value).group(1)
    assert text(row).count("[4, 0]") == 3
    p.sliders[0].value = 1.0
    assert "row 0" in p.readout.value
    assert [r.get_height() for r in p.figure.axes[0].patches] != bars_before
    assert is_png(p.plot.value) and bytes(p.plot.value) != png_before


def test_lesson3_weight_slider_curve_tangent_and_uses():
    p = cw.lesson3_reuse()
    assert float(cls(p.readout.value, "cw-grad")) == pytest.approx(150.4865, abs=0.01)
    assert float(cls(p.readout.value, "cw-formula")) == pytest.approx(150.4865, abs=0.01)
    assert float(cls(p.readout.value, "cw-out")) == pytest.approx(8.9717, abs=2e-3)
    u1, u2 = float(cls(p.readout.value, "cw-use1")), float(cls(p.readout.value, "cw-use2"))
    assert u1 + u2 == pytest.approx(150.4865, abs=0.01)
    ax = p.figure.axes[0]
    lines = {l.get_gid(): l for l in ax.get_lines()}
    assert set(lines) == {"loss-curve", "tangent", "point"}
    tx, ty = lines["tangent"].get_data()
    assert (ty[1] - ty[0]) / (tx[1] - tx[0]) == pytest.approx(150.49, abs=0.05)
    png_before = bytes(p.plot.value)

    p.slider.value = 0.5
    assert float(cls(p.readout.value, "cw-grad")) == pytest.approx(float(wm.lesson3_grad_formula(0.5)), abs=0.01)
    assert float(cls(p.readout.value, "cw-grad")) == pytest.approx(-50.0, abs=0.01)
    ax = p.figure.axes[0]
    lines = {l.get_gid(): l for l in ax.get_lines()}
    assert lines["point"].get_data()[0][0] == 0.5
    assert lines["point"].get_data()[1][0] == pytest.approx(float(wm.lesson3_loss(0.5)))
    tx, ty = lines["tangent"].get_data()
    assert (ty[1] - ty[0]) / (tx[1] - tx[0]) == pytest.approx(-50.0, abs=1e-6)
    assert is_png(p.plot.value) and bytes(p.plot.value) != png_before


def test_lesson4_sample_slider():
    p = cw.lesson4_per_sample(index=0)
    g_first = cls(p.readout.value, "cw-grad-2")
    assert cls(p.readout.value, "cw-i") == "0"
    assert float(cls(p.readout.value, "cw-x")) == pytest.approx(-3.0)
    heights = [r.get_height() for r in p.figure.axes[1].patches]
    p.slider.value = 999
    assert float(cls(p.readout.value, "cw-x")) == pytest.approx(3.0)
    assert cls(p.readout.value, "cw-grad-2") != g_first
    ps = wm.lesson4_per_sample_grads()
    new = [r.get_height() for r in p.figure.axes[1].patches]
    assert new != heights
    np.testing.assert_allclose(new[:5], ps["2.weight"][999])  # sample bars
    np.testing.assert_allclose(new[5:], ps["2.weight"].mean(axis=0))  # batch-mean bars
    assert "batch sum = .grad" in p.readout.value
    assert p.state["sum_matches_grad"] < 1e-10


def test_lesson5_loss_weight_sliders_and_training():
    p = cw.lesson5_loss_weights(train_steps=20)
    m1 = float(cls(p.readout.value, "cw-grad-1"))
    comb = float(cls(p.readout.value, "cw-combined"))
    bars = [r.get_height() for r in p.figure.axes[0].patches]
    p.alpha.value = 100.0
    assert float(cls(p.readout.value, "cw-grad-1")) == m1  # raw term statistics do not depend on α
    assert float(cls(p.readout.value, "cw-combined")) != comb
    new = [r.get_height() for r in p.figure.axes[0].patches]
    assert new[1] == pytest.approx(100 * bars[1]) and new[0] == pytest.approx(bars[0])
    ref = wm.lesson5_combine(wm.lesson5_term_grads()["grads"], 100.0, 1.0)
    assert p.state["combined_norm"] == pytest.approx(ref["combined_norm"])
    assert bytes(p.train_plot.value) == b""
    p.train_button.click()
    assert is_png(p.train_plot.value)
    assert p.training["alpha"] == 100.0
    assert float(cls(p.train_readout.value, "cw-train-error")) >= 0


def test_a_failing_update_is_shown_not_raised(monkeypatch):
    p = cw.lesson3_reuse()
    monkeypatch.setattr(wm, "lesson3_autograd", lambda *a: 1 / 0)
    p.slider.value = 0.1
    assert "ZeroDivisionError" in p.error.value


def test_panels_render_as_widgets():
    for make in (cw.lesson1_graph, cw.lesson2_seeds, cw.lesson3_reuse, cw.lesson4_per_sample, cw.lesson5_loss_weights):
        p = make()
        bundle = p._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle
        if p.plot is not None:
            assert is_png(p.plot.value)
        assert p.error.value == ""


def test_lesson5_labels_are_not_cut_off():
    """The slider descriptions take the width of their text and the button that of its label:
    ipywidgets' defaults (80 px, 148 px) showed "β (Neuma…" and "Train 150 steps w…"."""
    p = cw.lesson5_loss_weights(train_steps=20)
    for slider in (p.alpha, p.beta):
        assert slider.style.description_width == "initial", slider.description
    assert p.train_button.layout.width == "auto"
    assert p.beta.description == "β (Neumann)" and p.train_button.description == "Train 20 steps with these α, β"


def test_widgets_speak_the_notebook_language(monkeypatch):
    monkeypatch.setenv("COURSEWORK_LANG", "zh_CN")
    p = cw.lesson5_loss_weights(train_steps=20)
    assert p.beta.description == "β（诺伊曼）" and p.train_button.description == "用当前的 α、β 训练 20 步"
    assert "第 5 课" in p.title.value and "损失项" in p.readout.value
    p1 = cw.lesson1_graph()
    assert p1.retain.description == "在 backward 之前调用 a.retain_grad()"
    assert "计算图是线性的" in p1.readout.value
    p3 = cw.lesson3_reuse()
    assert "第一次使用" in p3.readout.value and float(cls(p3.readout.value, "cw-grad")) == pytest.approx(150.4865, abs=0.01)
