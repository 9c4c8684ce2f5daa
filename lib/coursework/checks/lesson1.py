"""Lesson 1: the chain rule on a small graph."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import problems
from ..i18n import N_, _
from ._core import (ACCUMULATED_ACROSS_CALLS, NOT_ANSWERED, CheckFailure, Misconception, assert_matches,
                    call_student, diagnosis, failure, quiet_grad, require, require_chainrule_tensor,
                    require_results, torch)

__all__ = ["check_hand_gradients", "check_unbroadcast", "check_retained_graph", "check_sum_node"]

ONE_PATH_ONLY = diagnosis("one_path_only", N_("only one of two paths followed (chain rule)"), N_(
    "you followed only one of the two paths from the leaf to c: a feeds c directly AND through b, "
    "and the chain rule adds the two paths: dc/da = b + a, not b or a alone."))
Z_THROUGH_B = diagnosis("z_only_through_b", N_("dc/dz: z reaches c only through b"), N_(
    "z reaches c only through b: dc/dz = dc/db * db/dz = a * 1."))
BROADCAST_AVERAGED = diagnosis("broadcast_averaged", N_("broadcast gradient averaged instead of summed"), N_(
    "you averaged over the broadcast axes; the backward rule of broadcasting SUMS them: every copy "
    "of a broadcast element contributed to the output."))
RETAIN_GRAD_FORGOTTEN = diagnosis("retain_grad_forgotten", N_("retain_grad() forgotten"), N_(
    "retain_grad() forgotten: m is not a leaf, so autograd frees its gradient once it has been "
    "used, and m.grad stays None. Call m.retain_grad() BEFORE n.backward(...)."))


def _torch_l1_graph(x, y, z):
    """a = x*y; b = a + z; c = a*b (the graph of the hand-derivation exercise)."""
    t = torch()
    xt, yt, zt = (t.tensor(v, dtype=t.float64, requires_grad=True) for v in (x, y, z))
    a = xt * yt
    b = a + zt
    c = a * b
    c.backward(t.ones_like(c))
    return xt.grad.numpy(), yt.grad.numpy(), zt.grad.numpy()


def check_hand_gradients(fn: Callable, x, y, z) -> None:
    """Lesson 1, exercise 1: dc/dx, dc/dy, dc/dz of c = (x*y) * (x*y + z) by hand."""
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    got = call_student(fn, x.copy(), y.copy(), z.copy(), what="hand_gradients(x, y, z)")
    require_results(got, 3, "hand_gradients(x, y, z)", "dc/dx, dc/dy, dc/dz")
    gx, gy, gz = _torch_l1_graph(x, y, z)
    a, b = x * y, x * y + z
    assert_matches(got[0], gx, what="dc/dx", rtol=1e-9,
                   misconceptions=[Misconception(ONE_PATH_ONLY, y * b), Misconception(ONE_PATH_ONLY, y * a)])
    assert_matches(got[1], gy, what="dc/dy", rtol=1e-9,
                   misconceptions=[Misconception(ONE_PATH_ONLY, x * b), Misconception(ONE_PATH_ONLY, x * a)])
    assert_matches(got[2], gz, what="dc/dz", rtol=1e-9, misconceptions=[Misconception(Z_THROUGH_B, b)])


def check_unbroadcast(fn: Callable, grad_shape: tuple, shape: tuple, seed: int = 0) -> None:
    """Lesson 1, exercise 2: reduce an output gradient to an operand's broadcast shape."""
    t = torch()
    rng = np.random.default_rng(seed)
    grad = rng.normal(size=grad_shape)
    operand = t.zeros(shape, dtype=t.float64, requires_grad=True)
    other = t.zeros(grad_shape, dtype=t.float64)
    (operand + other).backward(t.tensor(grad))
    expected = operand.grad.numpy()
    what = _("unbroadcast(grad of shape {grad_shape}, shape={shape})").format(grad_shape=grad_shape,
                                                                              shape=shape)
    got = call_student(fn, grad.copy(), tuple(shape), what=what)
    n = grad.size / max(expected.size, 1)
    assert_matches(got, expected, what=what, rtol=1e-9,
                   misconceptions=[Misconception(BROADCAST_AVERAGED, expected / n)],
                   hint=_("sum over the leading axes the operand did not have, then (keepdims) over every "
                          "axis where the operand's size is 1 but the gradient's is not."))


def check_retained_graph(u, v, m, n=None) -> None:
    """Lesson 1, exercise 3: u.grad, v.grad and the retained m.grad of n = u*v + v**2."""
    t = torch()
    data = problems.lesson1_exercise_leaves()
    ut, vt = (t.tensor(data[k], requires_grad=True) for k in ("u", "v"))
    mt = ut * vt
    mt.retain_grad()
    nt = mt + vt ** 2
    nt.backward(t.ones_like(nt))
    if u is None and v is None and m is None:
        raise failure(_("u, v and m are still None: the exercise's cell must set them (u and v the "
                        "leaves, m = u * v) and call n.backward(...)."), NOT_ANSWERED)
    for name, value in (("u", u), ("v", v), ("m", m)):
        require_chainrule_tensor(value, name)
    require(u.is_leaf and v.is_leaf, _("u and v must be leaves created with requires_grad=True."))
    require(not m.is_leaf and m.grad_fn is not None,
            _("m must be computed from u and v (m = u * v), so it has a grad_fn."))
    assert_matches(u, data["u"], what=_("u (the data)"), rtol=0, atol=1e-6)
    assert_matches(v, data["v"], what=_("v (the data)"), rtol=0, atol=1e-6)
    require(quiet_grad(m) is not None, _("m.grad is None."), RETAIN_GRAD_FORGOTTEN)
    for name, value, ref in (("u.grad", u, ut), ("v.grad", v, vt), ("m.grad", m, mt)):
        g = quiet_grad(ref).numpy()
        assert_matches(quiet_grad(value), g, what=name, rtol=1e-6, atol=1e-6,
                       misconceptions=[Misconception(ACCUMULATED_ACROSS_CALLS, 2 * g)])


def check_sum_node(n) -> None:
    """Lesson 1, exercise 3 (hidden): n is the chainrule tensor m + v ** 2."""
    require_chainrule_tensor(n, "n")
    if n.grad_fn is None or not n.grad_fn.name().startswith("Add"):
        raise CheckFailure(_("n must be m + v ** 2, made by an addition (its grad_fn is {node}).").format(
            node=n.grad_fn.name() if n.grad_fn is not None else None))
