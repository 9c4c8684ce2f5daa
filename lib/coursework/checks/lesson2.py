"""Lesson 2: vector outputs and backward seeds."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import problems
from ..i18n import N_, _
from ._core import (ACCUMULATED_ACROSS_CALLS, TRANSPOSED, Misconception, assert_matches, call_student,
                    chainrule, diagnosis, require_results, torch)

__all__ = ["JACOBIAN_PROBES", "check_jacobian_by_hand", "check_jacobian_rows", "check_weighted_gradients"]

ONES_SEED_COLUMN_SUMS = diagnosis("ones_seed_column_sums", N_("one all-ones seed instead of one-hot rows"), N_(
    "you returned a single vector-Jacobian product with an all-ones seed (the column sums), not "
    "one row per one-hot seed."))
ROWS_ADD_UP = diagnosis("jacobian_rows_accumulated", N_("x.grad not reset between seeds"), N_(
    "the rows add up: each row holds the sum of the rows before it. If you used backward(), x.grad "
    "accumulates -- reset it between seeds, or use autograd.grad."))
SEEDED_WITH_ONES = diagnosis("seeded_with_ones", N_("seeded with ones instead of the weights"), N_(
    "you seeded with ones (the plain sum of b): the seed IS the weight vector."))


def _torch_jacobian(f_torch, x):
    t = torch()
    return t.autograd.functional.jacobian(f_torch, t.tensor(x, dtype=t.float64)).numpy()


def check_jacobian_by_hand(fn: Callable, x) -> None:
    """Lesson 2, exercise 1: the Jacobian of f(x) = [x0*x1, x0**2 + 3*x1]."""
    t = torch()
    x = np.asarray(x, dtype=np.float64)
    got = call_student(fn, float(x[0]), float(x[1]), what=f"jacobian_by_hand({x[0]}, {x[1]})")
    expected = _torch_jacobian(lambda v: t.stack([v[0] * v[1], v[0] ** 2 + 3 * v[1]]), x)
    assert_matches(got, expected, what=_("the Jacobian at x = {x}").format(x=x.tolist()), rtol=1e-9,
                   misconceptions=[Misconception(TRANSPOSED, expected.T)])


# Functions used to probe a student's Jacobian routine; each works on chainrule
# and PyTorch tensors alike (operators and methods the two libraries share).
JACOBIAN_PROBES: dict[str, Callable] = {
    "b = x * x + 3 * x": lambda x: x * x + 3 * x,
    "b = x.exp() * x.sum()": lambda x: x.exp() * x.sum(),
    "b = (x * x).sum() * x / 2": lambda x: (x * x).sum() * x / 2,
    "b = x.tanh() + x[0] * x": lambda x: x.tanh() + x[0] * x,
}


def check_jacobian_rows(fn: Callable, probe: str, x) -> None:
    """Lesson 2, exercise 2: a Jacobian assembled row by row from one-hot seeds."""
    cr = chainrule()
    f = JACOBIAN_PROBES[probe]
    x = np.asarray(x, dtype=np.float64)
    expected = _torch_jacobian(f, x)
    xc = cr.tensor(x.copy(), dtype=cr.float64, requires_grad=True)
    got = call_student(fn, f, xc, what=_("jacobian_rows(f, x) for {probe}").format(probe=probe))
    rows = expected.shape[0]
    assert_matches(got, expected, what=_("jacobian_rows for {probe}, x = {x}").format(probe=probe, x=x.tolist()),
                   rtol=1e-9, misconceptions=[Misconception(TRANSPOSED, expected.T),
                                              Misconception(ONES_SEED_COLUMN_SUMS,
                                                            np.tile(expected.sum(0), (rows, 1))),
                                              Misconception(ROWS_ADD_UP, np.cumsum(expected, axis=0))])


def _torch_l1_vjp(weights):
    t = torch()
    d = problems.lesson1_leaves()
    x, y, z = (t.tensor(d[k], requires_grad=True) for k in ("x", "y", "z"))
    b = (x + 2 * y) + z / 2
    b.backward(gradient=t.tensor(np.asarray(weights, dtype=np.float64)))
    return x.grad.numpy(), y.grad.numpy(), z.grad.numpy()


def check_weighted_gradients(fn: Callable, weights) -> None:
    """Lesson 2, exercise 3: the gradient of sum_i weights[i] * b[i] with one backward call."""
    weights = np.asarray(weights, dtype=np.float64)
    got = call_student(fn, weights.copy(), what=f"weighted_gradients({weights.tolist()})")
    require_results(got, 3, "weighted_gradients", "x.grad, y.grad, z.grad")
    refs = _torch_l1_vjp(weights)
    ones = _torch_l1_vjp(np.ones_like(weights))
    for name, g, r, o in zip(("x.grad", "y.grad", "z.grad"), got, refs, ones):
        assert_matches(g, r, what=_("{name} for weights {weights}").format(name=name, weights=weights.tolist()),
                       rtol=1e-5, atol=1e-6,
                       misconceptions=[Misconception(SEEDED_WITH_ONES, o),
                                       Misconception(ACCUMULATED_ACROSS_CALLS, 2 * r)])
