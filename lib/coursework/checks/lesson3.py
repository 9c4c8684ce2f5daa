"""Lesson 3: one layer used several times."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import problems
from ..i18n import _
from ._core import (ACCUMULATED_ACROSS_CALLS, BOTH_FACTORS_OF_2_MISSING, ONE_FACTOR_OF_2_MISSING,
                    REUSED_LAYER_COUNTED_ONCE, Misconception, assert_matches, call_student, torch)

__all__ = ["check_dL_dw_by_hand", "check_reused_linear_grad", "check_unrolled_grad"]


def _torch_two_uses(w, x, y):
    t = torch()
    wt = t.tensor(float(w), dtype=t.float64, requires_grad=True)
    loss = (wt * (wt * x) - y) ** 2
    loss.backward()
    return float(wt.grad)


def check_dL_dw_by_hand(fn: Callable, w: float, x: float, y: float) -> None:
    """Lesson 3, exercise 1: dL/dw for L = (w*(w*x) - y)**2, a hand formula."""
    got = call_student(fn, float(w), float(x), float(y), what=f"dL_dw_by_hand({w}, {x}, {y})")
    expected = _torch_two_uses(w, x, y)
    half = 2 * (w * w * x - y) * w * x  # dL/dw has two factors of 2: either one missing gives this
    assert_matches(got, expected, what=_("dL/dw at w={w}, x={x}, y={y}").format(w=w, x=x, y=y), rtol=1e-9,
                   misconceptions=[Misconception(ONE_FACTOR_OF_2_MISSING, half),
                                   Misconception(BOTH_FACTORS_OF_2_MISSING, half / 2)])


def _torch_reused(W, x, y, n_uses, live=None):
    """dL/dW for L = sum((W^n x - y)^2); `live` lists the uses that carry gradient."""
    t = torch()
    Wt = t.tensor(W, dtype=t.float64, requires_grad=True)
    h = t.tensor(x, dtype=t.float64)
    for k in range(n_uses):
        Wk = Wt if live is None or k in live else Wt.detach()
        h = Wk @ h
    loss = ((h - t.tensor(y, dtype=t.float64)) ** 2).sum()
    loss.backward()
    return Wt.grad.numpy()


def check_reused_linear_grad(fn: Callable, W, x, y, n_uses: int) -> None:
    """Lesson 3, exercise 2: backward by hand through a matrix used n_uses times."""
    W, x, y = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (W, x, y))
    W = W.reshape(W.shape[0], -1)
    got = call_student(fn, W.copy(), x.copy(), y.copy(), n_uses,
                       what=f"reused_linear_grad(W {W.shape}, x, y, n_uses={n_uses})")
    expected = _torch_reused(W, x, y, n_uses)
    mis = []
    if n_uses > 1:
        mis = [Misconception(REUSED_LAYER_COUNTED_ONCE, _torch_reused(W, x, y, n_uses, live={n_uses - 1})),
               Misconception(REUSED_LAYER_COUNTED_ONCE, _torch_reused(W, x, y, n_uses, live={0}))]
    assert_matches(got, expected, what=_("dL/dW with n_uses={n}").format(n=n_uses), rtol=1e-8, atol=1e-10,
                   misconceptions=mis,
                   hint=_("walk the uses backwards: grad_W += outer(g, input of that use); then g = W.T @ g."))


def _torch_unrolled(W, h0, target, steps, live=None):
    t = torch()
    layer = t.nn.Linear(W.shape[1], W.shape[0], bias=False).double()
    with t.no_grad():
        layer.weight.copy_(t.tensor(W))
    h = t.tensor(h0)
    for k in range(steps):
        if live is None or k in live:
            h = t.tanh(layer(h))
        else:
            h = t.tanh(h @ layer.weight.detach().T)
    loss = t.nn.MSELoss()(h, t.tensor(target))
    loss.backward()
    return layer.weight.grad.numpy()


def check_unrolled_grad(fn: Callable, seed: int = 3, steps: int = 4, k: int = 3,
                        calls: int = 1) -> None:
    """Lesson 3, exercise 3: a layer applied `steps` times with tanh between, with chainrule."""
    d = problems.lesson3_rnn(k=k, steps=steps, seed=seed)
    expected = _torch_unrolled(d["W"], d["h0"], d["target"], steps)
    last = _torch_unrolled(d["W"], d["h0"], d["target"], steps, live={steps - 1})
    for call in range(calls):
        got = call_student(fn, d["W"].copy(), d["h0"].copy(), d["target"].copy(), steps,
                           what=f"unrolled_grad(W, h0, target, steps={steps})")
        mis = [Misconception(REUSED_LAYER_COUNTED_ONCE, last)]
        if call > 0:
            mis.append(Misconception(ACCUMULATED_ACROSS_CALLS, (call + 1) * expected))
        what = (_("weight.grad after {steps} uses (call {call})").format(steps=steps, call=call + 1)
                if calls > 1 else _("weight.grad after {steps} uses").format(steps=steps))
        assert_matches(got, expected, what=what, rtol=2e-4, atol=1e-6, misconceptions=mis)
