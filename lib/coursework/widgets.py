"""Live widgets of the course, one (or more) per lesson.

In a notebook::

    from coursework.widgets import lesson3_reuse
    lesson3_reuse()

Each function returns a panel (an ``ipywidgets.VBox``) whose sliders recompute
the numbers with :mod:`coursework.widget_math` and show them in ``.readout``
(an HTML widget), in ``.plot`` (a PNG image of ``.figure``, a matplotlib
``Figure``) and, for lesson 1, in ``.graph`` (the drawn computation graphs).

Nothing here touches pyplot or a GUI backend: figures are drawn with Agg into
PNG bytes, so a panel never opens a window, never blocks headless execution or
``nbgrader autograde`` and never writes to stderr. A failure while updating is
shown in the panel itself (``.error``), not raised into the kernel's log.
"""

from __future__ import annotations

import html
import io
import traceback
import warnings

import ipywidgets as W
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import problems
from . import widget_math as wm
from .i18n import _

__all__ = [
    "lesson1_graph",
    "lesson2_seeds",
    "lesson3_reuse",
    "lesson4_per_sample",
    "lesson5_loss_weights",
    "Panel",
]


def fmt(v, digits: int = 4) -> str:
    """Numbers for display: ``[1, 2.5]``, ``150.5``."""
    a = np.asarray(v, dtype=float)
    a = np.where(np.abs(a) < 1e-12, 0.0, a)  # float noise such as 1e-18 reads as 0
    if a.ndim == 0:
        x = float(a)
        return str(int(x)) if x == int(x) and abs(x) < 1e6 else f"{x:.{digits}g}"
    return "[" + ", ".join(fmt(e, digits) for e in a) + "]"


def span(cls: str, text: str) -> str:
    return f'<span class="{cls}">{html.escape(text)}</span>'


def table(rows, header=None) -> str:
    style = 'style="border-collapse:collapse;font-family:monospace;font-size:13px"'
    td = 'style="padding:2px 10px;border-bottom:1px solid #ddd;text-align:right"'
    out = [f"<table {style}>"]
    if header:
        out.append("<tr>" + "".join(f"<th {td}>{h}</th>" for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td {td}>{c}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


class Panel(W.VBox):
    """A title, controls, a readout and optionally a plot; ``update()`` redraws everything."""

    figsize = (7.5, 3.0)
    has_plot = True

    def __init__(self, title: str, controls: list, extra: list | None = None):
        super().__init__()
        self.title = W.HTML(f"<b>{html.escape(title)}</b>")
        self.controls = controls
        self.readout = W.HTML()
        self.error = W.HTML()
        self.figure = None
        self.plot = None
        if self.has_plot:
            self.figure = Figure(figsize=self.figsize, dpi=100, layout="constrained")
            FigureCanvasAgg(self.figure)
            self.plot = W.Image(format="png")
        self.state: dict = {}
        children = [self.title, *controls, self.readout]
        if self.plot is not None:
            children.append(self.plot)
        children += list(extra or []) + [self.error]
        self.children = children
        self.add_class("coursework-panel")
        for c in controls:
            for w in (c.children if isinstance(c, W.Box) else [c]):
                if hasattr(w, "value") and not isinstance(w, (W.HTML, W.Label, W.Button)):
                    w.observe(self._on_change, names="value")
        self.update()

    def _on_change(self, change=None):
        self.update()

    def update(self):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.compute()
                self.show()
                if self.figure is not None:
                    self.figure.clear()
                    self.draw(self.figure)
                    self.plot.value = render_png(self.figure)
            self.error.value = ""
        except Exception:  # shown in the panel: a widget must not write to stderr
            self.error.value = (
                '<pre class="coursework-error" style="color:#b91c1c">'
                + html.escape(traceback.format_exc(limit=3))
                + "</pre>"
            )

    # subclasses
    def compute(self):  # fill self.state
        raise NotImplementedError

    def show(self):  # set self.readout.value (and other HTML)
        raise NotImplementedError

    def draw(self, fig: Figure):
        pass


def render_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _slider(description, value, lo, hi, step, fmt=".2f", **kw):
    return W.FloatSlider(
        value=value, min=lo, max=hi, step=step, description=description, readout_format=fmt,
        continuous_update=False, style={"description_width": "initial"}, **kw,
    )


# ============================================================================= lesson 1


class Lesson1Graph(Panel):
    """Sliders for the leaves x, y, z; the graph (chainrule and PyTorch) redraws with values and grads."""

    has_plot = False

    def __init__(self, x=None, y=None, z=None):
        leaves = problems.lesson1_leaves()
        init = {"x": x, "y": y, "z": z}
        self.sliders = {}
        rows = []
        for name in ("x", "y", "z"):
            vals = leaves[name] if init[name] is None else np.asarray(init[name], dtype=float)
            row = [_slider(f"{name}[{i}]", float(v), -5.0, 5.0, 0.5, ".1f") for i, v in enumerate(vals)]
            self.sliders[name] = row
            rows.append(W.HBox(row))
        self.retain = W.Checkbox(value=True, description=_("a.retain_grad() before backward"), indent=False)
        self.graph = W.HTML()
        super().__init__(
            _("Lesson 1: a = x + 2·y, b = a + z/2, then b.backward(torch.ones_like(b))"),
            [*rows, self.retain],
            extra=[self.graph],
        )

    def leaves(self):
        return {k: np.array([s.value for s in row]) for k, row in self.sliders.items()}

    def compute(self):
        lv = self.leaves()
        t = wm.lesson1_torch(lv["x"], lv["y"], lv["z"], retain_a=self.retain.value)
        self.state = {
            "leaves": lv,
            **wm.lesson1_forward(lv["x"], lv["y"], lv["z"]),
            "grads": {k: t[k].grad.numpy().copy() for k in "xyz"},
            # Reading .grad of a non-leaf that does not retain it warns (in PyTorch and chainrule).
            "a_grad": t["a"].grad.numpy().copy() if t["a"].retains_grad else None,
            "torch": t,
        }
        cr = None
        cr_error = None
        if wm.chainrule_available():
            try:
                cr = wm.lesson1_chainrule(lv["x"], lv["y"], lv["z"], retain_a=self.retain.value)
            except Exception as e:  # shown next to the PyTorch graph
                cr_error = f"{type(e).__name__}: {e}"
        self.state["chainrule"] = cr
        self.state["chainrule_error"] = cr_error

    def show(self):
        from chainrule.viz import draw_graph, side_by_side

        s = self.state
        g = s["grads"]
        a_grad = _("None (not retained)") if s["a_grad"] is None else fmt(s["a_grad"])
        self.readout.value = (
            f"<div style='font-family:monospace'>a = {span('cw-a', fmt(s['a']))}, "
            f"b = {span('cw-b', fmt(s['b']))}<br>x.grad = {span('cw-grad cw-grad-x', fmt(g['x']))}, "
            f"y.grad = {span('cw-grad cw-grad-y', fmt(g['y']))}, "
            f"z.grad = {span('cw-grad cw-grad-z', fmt(g['z']))}, a.grad = {span('cw-grad-a', a_grad)}"
            "<br><small>" + html.escape(_("The graph is linear: the gradients stay the same whatever the "
                                          "leaves; only the values change.")) + "</small></div>"
        )
        t = s["torch"]
        drawings, titles = [], []
        if s["chainrule"] is not None:
            c = s["chainrule"]
            drawings.append(draw_graph(c["b"], {k: c[k] for k in "xyzab"}))
            titles.append("chainrule")
        drawings.append(draw_graph(t["b"], {k: t[k] for k in "xyzab"}))
        titles.append("PyTorch")
        note = ""
        if s["chainrule_error"]:
            note = f"<div class='cw-note'>chainrule: {html.escape(s['chainrule_error'])}</div>"
        elif s["chainrule"] is None:
            note = ("<div class='cw-note'>" + html.escape(_("chainrule is not available here; the PyTorch "
                                                            "graph only.")) + "</div>")
        self.state["drawings"] = drawings
        self.graph.value = side_by_side(*drawings, titles=titles)._repr_html_() + note


def lesson1_graph(**kw) -> Lesson1Graph:
    """Lesson 1: move the leaves, watch the graph's values and gradients."""
    return Lesson1Graph(**kw)


# ============================================================================= lesson 2


class Lesson2Seeds(Panel):
    """Sliders for the seed v of b.backward(gradient=v); compare with (b * v).sum().backward()."""

    figsize = (7.5, 2.6)

    def __init__(self, v=(1.0, 1.0)):
        self.sliders = [_slider(f"v[{i}]", float(val), -3.0, 3.0, 0.1, ".1f") for i, val in enumerate(v)]
        super().__init__(_("Lesson 2: b.backward(gradient=v) is the vector-Jacobian product vᵀ·∂b/∂leaves"),
                         [W.HBox(self.sliders)])

    def compute(self):
        v = np.array([s.value for s in self.sliders])
        lv = problems.lesson1_leaves()
        seeded = wm.lesson1_torch(lv["x"], lv["y"], lv["z"], seed=v, retain_a=True)
        summed = wm.lesson1_torch(lv["x"], lv["y"], lv["z"], seed=v, retain_a=True, weighted_sum=True)
        self.state = {
            "v": v,
            "seeded": {k: seeded[k].grad.numpy().copy() for k in "xyza"},
            "summed": {k: summed[k].grad.numpy().copy() for k in "xyza"},
            "by_hand": wm.lesson2_vjp(v),
            "weighted_sum": float(summed["s"].detach()),
            "one_hot_row": wm.lesson2_one_hot_row(v),
        }

    def show(self):
        s = self.state
        rows = [
            [f"{k}.grad", span(f"cw-grad cw-grad-{k}", fmt(s["seeded"][k])), fmt(s["summed"][k]), fmt(s["by_hand"][k])]
            for k in "xyza"
        ]
        J = wm.lesson2_jacobians()
        jac = ", ".join(_("∂b/∂{leaf} = {values} on the diagonal").format(leaf=k, values=fmt(np.diag(J[k])))
                        for k in "xyz")
        row = s["one_hot_row"]
        hint = (_("v is one-hot: the gradients are row {row} of each Jacobian (the gradient of b[{row}]).").format(row=row)
                if row is not None else _("Try v = [1, 0] and v = [0, 1]: one-hot seeds give the Jacobian rows."))
        self.readout.value = (
            f"<div style='font-family:monospace'>v = {span('cw-v', fmt(s['v']))}; "
            f"(b * v).sum() = {span('cw-wsum', fmt(s['weighted_sum']))}</div>"
            + table(rows, ["", "b.backward(gradient=v)", "(b * v).sum().backward()", _("vᵀJ by hand")])
            + f"<div><small>{html.escape(jac)}. {html.escape(hint)}</small></div>"
        )

    def draw(self, fig):
        s = self.state
        ax = fig.add_subplot(1, 1, 1)
        names = [f"{k}[{i}]" for k in "xyz" for i in range(2)]
        vals = np.concatenate([s["seeded"][k] for k in "xyz"])
        ones = np.concatenate([wm.lesson2_vjp(np.ones(2))[k] for k in "xyz"])
        pos = np.arange(len(names))
        ax.bar(pos - 0.2, ones, 0.4, color="#cbd5e1", label="seed ones")
        ax.bar(pos + 0.2, vals, 0.4, color="#b91c1c", label="seed v")
        ax.set_xticks(pos, names)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(".grad")
        ax.legend(loc="upper right", fontsize=8)


def lesson2_seeds(**kw) -> Lesson2Seeds:
    """Lesson 2: move the seed vector v, watch vᵀJ and (b * v).sum() agree."""
    return Lesson2Seeds(**kw)


# ============================================================================= lesson 3


class Lesson3Reuse(Panel):
    """A slider for w: the loss curve and its tangent, autograd vs hand formula, per-use terms."""

    figsize = (7.5, 3.2)

    def __init__(self, w: float = problems.LESSON3_W, x: float = problems.LESSON3_X, y: float = problems.LESSON3_Y):
        self.x, self.y = x, y
        self.slider = _slider("w", w, -1.3, 1.3, 0.0001, ".4f", layout=W.Layout(width="480px"))
        super().__init__(_("Lesson 3: one Linear(1, 1, bias=False) used twice, x = {x}, label y = {y}: "
                           "L = (w²x − y)²").format(x=fmt(x), y=fmt(y)), [self.slider])

    def compute(self):
        w = float(self.slider.value)
        ag = wm.lesson3_autograd(w, self.x, self.y)
        self.state = {
            "w": w,
            **ag,
            "formula": float(wm.lesson3_grad_formula(w, self.x, self.y)),
            "formula_contributions": wm.lesson3_use_contributions(w, self.x, self.y),
        }

    def show(self):
        s = self.state
        c = s["contributions"]
        self.readout.value = (
            "<div style='font-family:monospace'>"
            + _("w = {w}: output w·(w·x) = {out}, L = {loss}").format(
                w=span('cw-w', format(s['w'], '.4f')), out=span('cw-out', format(s['out'], '.4f')),
                loss=span('cw-loss', format(s['loss'], '.4f'))) + "<br>"
            + _("dL/dw by autograd (w.grad, float32) = {grad}").format(grad=span('cw-grad', format(s['grad'], '.2f')))
            + "<br>" + _("dL/dw by hand, 4(w²x − y)·w·x = {formula} (difference {diff})").format(
                formula=span('cw-formula', format(s['formula'], '.2f')), diff=f"{abs(s['grad'] - s['formula']):.1e}")
            + "<br>" + _("first use {use1} + second use {use2} = {total} = w.grad: each use adds its own term "
                         "to the one .grad").format(use1=span('cw-use1', f'{c[0]:.2f}'),
                                                    use2=span('cw-use2', f'{c[1]:.2f}'), total=f"{c[0] + c[1]:.2f}")
            + "</div>"
        )

    def draw(self, fig):
        s = self.state
        ax = fig.add_subplot(1, 1, 1)
        ws = np.linspace(self.slider.min, self.slider.max, 400)
        ax.plot(ws, wm.lesson3_loss(ws, self.x, self.y), color="#1d4ed8", label="L(w)", gid="loss-curve")
        tw, tl = wm.lesson3_tangent(s["w"], 0.3, 2, self.x, self.y)
        ax.plot(tw, tl, color="#b91c1c", lw=2, label=f"tangent, slope {s['grad']:.2f}", gid="tangent")
        ax.plot([s["w"]], [s["loss"]], "o", color="#b91c1c", gid="point")
        ax.set_xlabel("w")
        ax.set_ylabel("L")
        top = float(wm.lesson3_loss(ws, self.x, self.y).max())
        ax.set_ylim(-0.05 * top, 1.05 * top)
        ax.legend(loc="upper center", fontsize=8)


def lesson3_reuse(**kw) -> Lesson3Reuse:
    """Lesson 3: move w, watch the loss, its tangent and the two uses' contributions."""
    return Lesson3Reuse(**kw)


# ============================================================================= lesson 4


class Lesson4PerSample(Panel):
    """A slider over the sample index: that sample's gradient against the batch sum and mean."""

    figsize = (8.0, 3.0)

    def __init__(self, index: int = 750):
        self.features = problems.lesson4_features()
        self.weights = problems.lesson4_weights()
        self.per_sample = wm.lesson4_per_sample_grads(self.weights, self.features)
        self.batch = wm.lesson4_batch_summary(self.per_sample)
        self.torch_grad = wm.lesson4_torch_batch_grads(self.weights, self.features)
        n = len(self.features)
        self.slider = W.IntSlider(value=index, min=0, max=n - 1, step=1, description=_("sample i"),
                                  continuous_update=False, layout=W.Layout(width="480px"))
        super().__init__(_("Lesson 4: Linear(1, 5) → sigmoid → Linear(5, 1), {n} inputs; "
                           "out.backward(ones) leaves the SUM over the batch in .grad").format(n=n), [self.slider])

    def compute(self):
        i = int(self.slider.value)
        self.state = {
            "i": i,
            "x": float(self.features[i, 0]),
            "sample": {k: g[i] for k, g in self.per_sample.items()},
            "sum": {k: v["sum"] for k, v in self.batch.items()},
            "mean": {k: v["mean"] for k, v in self.batch.items()},
            "torch_grad": self.torch_grad,
            "sum_matches_grad": max(float(np.abs(self.batch[k]["sum"] - self.torch_grad[k]).max())
                                    for k in self.batch),
        }

    def show(self):
        s = self.state
        rows = []
        for k in ("0.weight", "2.weight"):
            rows.append([_("{name}: sample {i}").format(name=k, i=s['i']),
                         span(f"cw-grad cw-grad-{k[0]}", fmt(s["sample"][k], 3))])
            rows.append([_("{name}: batch mean").format(name=k), fmt(s["mean"][k], 3)])
            rows.append([_("{name}: batch sum = .grad").format(name=k), fmt(s["sum"][k], 4)])
        self.readout.value = (
            "<div style='font-family:monospace'>" + _("sample i = {i}, input x_i = {x}").format(
                i=span('cw-i', str(s['i'])), x=span('cw-x', format(s['x'], '.4f'))) + "</div>" + table(rows)
            + "<div><small>" + html.escape(_("The sum of the {n} per-sample rows equals PyTorch's .grad (largest "
                                             "difference {diff}); the mean is that sum / {n}.").format(
                n=len(self.features), diff=f"{s['sum_matches_grad']:.1e}")) + "</small></div>"
        )

    def draw(self, fig):
        s = self.state
        axes = fig.subplots(1, 2)
        for ax, k in zip(axes, ("0.weight", "2.weight")):
            pos = np.arange(len(s["sample"][k]))
            ax.bar(pos - 0.2, s["sample"][k], 0.4, color="#b91c1c", label=f"sample {s['i']}")
            ax.bar(pos + 0.2, s["mean"][k], 0.4, color="#94a3b8", label="batch mean")
            ax.axhline(0, color="black", lw=0.8)
            ax.set_xticks(pos, [f"[{j}]" for j in pos])
            ax.set_title(f"d out_i / d {k} (sum: see table)", fontsize=9)
            lim = max(np.abs(self.per_sample[k]).max(), 1e-12) * 1.1
            ax.set_ylim(-lim, lim)
        axes[0].legend(fontsize=8, loc="lower left")


def lesson4_per_sample(**kw) -> Lesson4PerSample:
    """Lesson 4: move the sample index, compare its gradient with the batch's sum and mean."""
    return Lesson4PerSample(**kw)


# ============================================================================= lesson 5


class Lesson5LossWeights(Panel):
    """Sliders for α and β in L = L1 + α·L2 + β·L3; per-term gradient statistics and the combined direction."""

    figsize = (8.0, 3.0)

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, train_steps: int = 150):
        def logslider(d, v):
            # the description is as wide as its text: the default width cut "β (Neumann)" to "β (Neuma…"
            return W.FloatLogSlider(value=v, base=10, min=-2, max=3, step=0.01, description=d,
                                    continuous_update=False, readout_format=".3g",
                                    style={"description_width": "initial"})

        self.alpha = logslider(_("α (Dirichlet)"), alpha)
        self.beta = logslider(_("β (Neumann)"), beta)
        self.terms = wm.lesson5_term_grads()
        self.balanced = wm.lesson5_balanced_weights(self.terms["grads"])
        self.train_steps = train_steps
        self.train_button = W.Button(description=_("Train {steps} steps with these α, β").format(steps=train_steps),
                                     layout=W.Layout(width="auto"))  # the default 148px cut the label off
        self.train_figure = Figure(figsize=(8.0, 2.8), dpi=100, layout="constrained")
        FigureCanvasAgg(self.train_figure)
        self.train_plot = W.Image(format="png")
        self.train_readout = W.HTML()
        self.training: dict | None = None
        self.train_button.on_click(self._train)
        super().__init__(
            _("Lesson 5: L = L1 (interior residual) + α·L2 (Dirichlet u(0)=0) + β·L3 (Neumann u'(1)=−π)"),
            [W.HBox([self.alpha, self.beta])],
            extra=[self.train_button, self.train_readout, self.train_plot],
        )

    def compute(self):
        a, b = float(self.alpha.value), float(self.beta.value)
        self.state = {"alpha": a, "beta": b, "losses": self.terms["losses"],
                      **wm.lesson5_combine(self.terms["grads"], a, b)}

    def show(self):
        s = self.state
        rows = []
        for i, name in enumerate(wm.LESSON5_TERMS):
            rows.append([
                f"L{i + 1} {name}", fmt(s["weights"][i], 3), fmt(s["losses"][i], 4),
                span(f"cw-grad cw-grad-{i + 1}", fmt(s["mean_abs"][i], 4)),
                fmt(s["weighted_mean_abs"][i], 4), f"{100 * s['share'][i]:.1f}%", f"{s['cos_to_combined'][i]:+.3f}",
            ])
        ah, bh = self.balanced
        self.readout.value = (
            table(rows, [_("term"), _("weight"), _("value"), "mean |∇L_i|", _("weight·mean |∇L_i|"), _("share"),
                         _("cos(∇L_i, combined)")])
            + "<div style='font-family:monospace'>" + _("|combined gradient| = {norm}").format(
                norm=span('cw-combined', fmt(s['combined_norm'], 4)))
            + "<br><small>" + html.escape(_("Balancing estimate (max |∇L1| / mean |∇L_i|): α̂ = {a}, β̂ = {b}. Each "
                                            "term's gradient comes from autograd.grad(L_i, params, "
                                            "retain_graph=True) on one forward pass.").format(a=f"{ah:.3g}", b=f"{bh:.3g}"))
            + "</small></div>"
        )

    def draw(self, fig):
        s = self.state
        ax1, ax2 = fig.subplots(1, 2)
        labels = ["L1 interior", "α·L2 Dirichlet", "β·L3 Neumann"]
        pos = np.arange(3)
        ax1.bar(pos, np.maximum(s["weighted_mean_abs"], 1e-12), color=["#1d4ed8", "#a16207", "#047857"])
        ax1.set_yscale("log")
        ax1.set_ylim(1e-4, 1e3)  # fixed, so that moving α or β visibly moves the bars
        ax1.set_xticks(pos, labels, fontsize=8)
        ax1.set_title("weighted mean |gradient| per term", fontsize=9)
        ax2.bar(pos, s["cos_to_combined"], color=["#1d4ed8", "#a16207", "#047857"])
        ax2.set_ylim(-1.05, 1.05)
        ax2.axhline(0, color="black", lw=0.8)
        ax2.set_xticks(pos, labels, fontsize=8)
        ax2.set_title("cos(term gradient, combined update direction)", fontsize=9)

    def _train(self, _button=None):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a, b = float(self.alpha.value), float(self.beta.value)
                hist = wm.lesson5_train(a, b, steps=self.train_steps)
                xs = np.linspace(0, 1, 101)
                u = wm.lesson5_solution(hist["params"], xs)
                self.training = {"alpha": a, "beta": b, "history": hist, "xs": xs, "u": u}
                fig = self.train_figure
                fig.clear()
                ax1, ax2 = fig.subplots(1, 2)
                L = np.array(hist["losses"])
                for i, name in enumerate(wm.LESSON5_TERMS):
                    ax1.semilogy(np.maximum(L[:, i], 1e-16), label=f"L{i + 1} {name}")
                ax1.set_xlabel("Adam step")
                ax1.legend(fontsize=8)
                ax2.plot(xs, np.sin(np.pi * xs), color="black", lw=1, label="exact sin(πx)")
                ax2.plot(xs, u, color="#b91c1c", label="network u(x)")
                ax2.legend(fontsize=8)
                self.train_plot.value = render_png(fig)
                err = float(np.abs(u - np.sin(np.pi * xs)).max())
                self.train_readout.value = (
                    "<div style='font-family:monospace'>" + _("after {steps} steps with α = {a}, β = {b}: "
                                                              "max |u − sin(πx)| = {error}").format(
                        steps=self.train_steps, a=f"{a:.3g}", b=f"{b:.3g}", error=span('cw-train-error', f'{err:.3g}'))
                    + "</div>"
                )
        except Exception:
            self.train_readout.value = (
                '<pre class="coursework-error">' + html.escape(traceback.format_exc(limit=3)) + "</pre>"
            )


def lesson5_loss_weights(**kw) -> Lesson5LossWeights:
    """Lesson 5: move α and β, watch each term's gradient statistics and the combined direction."""
    return Lesson5LossWeights(**kw)
