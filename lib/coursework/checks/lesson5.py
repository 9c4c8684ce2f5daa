"""Lesson 5: per-loss-term gradients, and loss balancing on a physics-informed network."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from .. import problems
from ..i18n import N_, _
from ._core import (GRAD_NOT_RESET_BETWEEN_TERMS, CheckFailure, Misconception,
                    assert_matches, call_student, chainrule, diagnosis, failure, require_results, torch)

__all__ = ["check_term_grads_by_hand", "check_per_term_grads", "check_grad_untouched", "check_graph_freed",
           "torch_pinn_terms", "torch_balance_step", "check_balance_step"]

MEAN_NOT_DIVIDED = diagnosis("mean_not_divided", N_("d mean/dx taken as 1 instead of 1/n"), N_(
    "the mean divides by the number of elements: d mean(x)/dx_i = 1/n, not 1."))
SQUARE_OF_SUM = diagnosis("square_of_sum_as_sum_of_squares", N_("d(sum x)^2/dx taken as 2x"), N_(
    "dC/dx_i = 2 * sum(x) * d sum(x)/dx_i = 2 * sum(x); you used 2x."))
WEIGHTED_TERMS = diagnosis("weighted_terms_differentiated", N_("statistic taken on the weighted terms"), N_(
    "you differentiated the WEIGHTED terms (alpha*L2, beta*L3); the statistic is taken on each raw term."))
GRAPH_KEPT_ALIVE = diagnosis("graph_kept_alive", N_("retain_graph=True on the last term too"), N_(
    "retain_graph=True was passed for the last term too: pass it to every term except the LAST, so "
    "that the last pass frees the values the graph saved."))


def check_term_grads_by_hand(fn: Callable, x) -> None:
    """Lesson 5, exercise 1: dA/dx, dB/dx, dC/dx for A=(x**2).sum(), B=x.mean(), C=x.sum()**2."""
    t = torch()
    x = np.asarray(x, dtype=np.float64)
    got = call_student(fn, x.copy(), what=f"term_grads_by_hand(x {x.shape})")
    require_results(got, 3, "term_grads_by_hand", "dA/dx, dB/dx, dC/dx")
    refs = []
    for term in (lambda v: (v ** 2).sum(), lambda v: v.mean(), lambda v: v.sum() ** 2):
        leaf = t.tensor(x, requires_grad=True)
        refs.append(t.autograd.grad(term(leaf), leaf)[0].numpy())
    names = ("dA/dx (A = (x**2).sum())", "dB/dx (B = x.mean())", "dC/dx (C = x.sum()**2)")
    extra = [[], [Misconception(MEAN_NOT_DIVIDED, np.ones_like(x))], [Misconception(SQUARE_OF_SUM, 2 * x)]]
    cumulative = np.cumsum(np.stack(refs), axis=0)
    for i, (g, r, name) in enumerate(zip(got, refs, names)):
        mis = list(extra[i])
        if i:
            mis.append(Misconception(GRAD_NOT_RESET_BETWEEN_TERMS, cumulative[i]))
        assert_matches(g, r, what=name, rtol=1e-9, misconceptions=mis)


def _term_problem(seed):
    """Three loss terms of a small chainrule model and their PyTorch references."""
    t = torch()
    cr = chainrule()
    rng = np.random.default_rng(seed)
    W, b, X = rng.normal(size=(3, 4)), rng.normal(size=(3,)), rng.normal(size=(6, 4))

    def terms(lib, W_, b_):
        h = (lib.tensor(X, dtype=lib.float64) @ W_.T + b_).tanh()
        # the last term does not use the bias: its gradient there is zero
        return [(h ** 2).mean(), h[:, 0].sum(), (h - 1).abs().sum() * 0.5, (W_ ** 2).sum() * 0.1]

    Wt, bt = (t.tensor(v, requires_grad=True) for v in (W, b))
    ref = [tuple(np.zeros(p.shape) if g is None else g.numpy() for g, p in
                 zip(t.autograd.grad(L, (Wt, bt), retain_graph=True, allow_unused=True), (Wt, bt)))
           for L in terms(t, Wt, bt)]
    Wc, bc = (cr.tensor(v.copy(), dtype=cr.float64, requires_grad=True) for v in (W, b))
    return terms(cr, Wc, bc), [Wc, bc], ref


def check_per_term_grads(fn: Callable, seed: int = 0) -> None:
    """Lesson 5, exercise 2: the per-term gradient loop on a shared graph."""
    losses, params, ref = _term_problem(seed)
    got = call_student(fn, losses, params, what="per_term_grads(losses, params)")
    require_results(got, len(ref), "per_term_grads", _("one entry per loss term"))
    for i, (g_term, r_term) in enumerate(zip(got, ref)):
        if not (isinstance(g_term, (list, tuple)) and len(g_term) == len(params)):
            raise CheckFailure(_("term {i}: expected a tuple with one gradient per parameter ({n}).").format(
                i=i, n=len(params)))
        for j, (g, r) in enumerate(zip(g_term, r_term)):
            cum = sum(ref[k][j] for k in range(i + 1))
            mis = [Misconception(GRAD_NOT_RESET_BETWEEN_TERMS, cum)] if i else []
            if g is None:
                raise CheckFailure(_("gradient of loss term {i} w.r.t. parameter {j}: got None. That term does "
                                     "not use the parameter (allow_unused=True returns None for it); return "
                                     "zeros of the parameter's shape.").format(i=i, j=j))
            assert_matches(g, r, what=_("gradient of loss term {i} w.r.t. parameter {j}").format(i=i, j=j),
                           rtol=1e-9, atol=1e-12, misconceptions=mis)


def check_grad_untouched(fn: Callable, seed: int = 1) -> None:
    """Lesson 5, exercise 2 (hidden): the loop leaves .grad alone, as autograd.grad does."""
    losses, params, _ref = _term_problem(seed)
    call_student(fn, losses, params, what="per_term_grads(losses, params)")
    for j, p in enumerate(params):
        if p.grad is not None:
            raise CheckFailure(_("parameter {j} has a .grad after per_term_grads: the loop should leave .grad "
                                 "untouched (autograd.grad returns the gradients instead of accumulating "
                                 "them; with backward() you would have to clean up after yourself).").format(j=j))


def check_graph_freed(fn: Callable, seed: int = 2) -> None:
    """Lesson 5, exercise 2 (hidden): retain_graph only as long as needed."""
    cr = chainrule()
    losses, params, _ref = _term_problem(seed)
    call_student(fn, losses, params, what="per_term_grads(losses, params)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cr.autograd.grad(losses[-1], params, allow_unused=True)
    except RuntimeError:  # "Trying to backward through the graph a second time": freed, as it should be
        return
    raise failure(_("per_term_grads(losses, params): the graph is still alive after the last term."),
                  GRAPH_KEPT_ALIVE)


# ----------------------------------------------------------------------------- PINN


def torch_pinn_terms(weights=None, points=None):
    """The three loss terms of the lesson-5 physics-informed network, in PyTorch float64."""
    t = torch()
    weights = problems.lesson5_weights() if weights is None else weights
    points = problems.lesson5_points() if points is None else points
    h = problems.LESSON5_HIDDEN
    net = t.nn.Sequential(t.nn.Linear(1, h), t.nn.Tanh(), t.nn.Linear(h, 1)).double()
    f64 = t.float64
    with t.no_grad():
        for name, p in net.named_parameters():
            p.copy_(t.tensor(np.asarray(weights[name], dtype=float)))
    # One forward pass over all the points, as in the lesson: the terms share the network's graph.
    n_i, n_d = len(points["interior"]), len(points["dirichlet"])
    rows_i, rows_d, rows_n = slice(0, n_i), slice(n_i, n_i + n_d), slice(n_i + n_d, None)
    x = t.tensor(np.concatenate([points["interior"], points["dirichlet"], points["neumann"]]),
                 dtype=f64, requires_grad=True)
    u = net(x)
    du = t.autograd.grad(u.sum(), x, create_graph=True)[0]
    d2u = t.autograd.grad(du[rows_i].sum(), x, create_graph=True)[0]
    f = t.tensor(problems.lesson5_source(points["interior"]), dtype=f64)
    interior = ((-d2u[rows_i] - f) ** 2).mean()
    dirichlet = (u[rows_d] ** 2).mean()
    neumann = ((du[rows_n] - problems.LESSON5_NEUMANN_VALUE) ** 2).mean()
    return net, [interior, dirichlet, neumann]


def torch_balance_step(alpha: float, beta: float, eta: float = problems.LESSON5_ETA,
                       mix: bool = False) -> dict:
    """Reference loss-balancing step (learning-rate annealing, Wang, Teng & Perdikaris 2021)."""
    t = torch()
    net, terms = torch_pinn_terms()
    params = list(net.parameters())
    grads = []
    for i, L in enumerate(terms):
        gs = t.autograd.grad(L, params, retain_graph=i < len(terms) - 1, allow_unused=True)
        g = t.cat([t.zeros_like(p).reshape(-1) if d is None else d.reshape(-1) for d, p in zip(gs, params)])
        grads.append(g.detach().numpy())
    if mix:  # what a forgotten reset gives: each term's "gradient" holds the terms before it
        grads = list(np.cumsum(np.stack(grads), axis=0))
    mean_abs = [float(np.abs(g).mean()) for g in grads]
    max_abs = float(np.abs(grads[0]).max())
    alpha_hat, beta_hat = max_abs / mean_abs[1], max_abs / mean_abs[2]
    return {"losses": [float(L.detach()) for L in terms], "mean_abs": mean_abs, "max_abs_interior": max_abs,
            "alpha": (1 - eta) * alpha + eta * alpha_hat, "beta": (1 - eta) * beta + eta * beta_hat}


def check_balance_step(fn: Callable, alpha: float = 1.0, beta: float = 1.0) -> None:
    """Lesson 5, exercise 3: one loss-balancing step on the physics-informed network."""
    got = call_student(fn, alpha, beta, what=f"balance_step(alpha={alpha}, beta={beta})")
    keys = {"losses", "mean_abs", "max_abs_interior", "alpha", "beta"}
    if not (isinstance(got, dict) and keys <= set(got)):
        raise CheckFailure(_("balance_step must return a dict with the keys {keys}.").format(keys=sorted(keys)))
    ref = torch_balance_step(alpha, beta)
    mixed = torch_balance_step(alpha, beta, mix=True)
    weighted = dict(ref)
    weighted["mean_abs"] = [ref["mean_abs"][0], alpha * ref["mean_abs"][1], beta * ref["mean_abs"][2]]
    tol = dict(rtol=1e-6, atol=1e-12)
    assert_matches(got["losses"], ref["losses"], what=_("the three loss values (interior, Dirichlet, Neumann)"),
                   **tol)
    assert_matches(got["mean_abs"], ref["mean_abs"], what=_("mean |gradient| of each term"),
                   misconceptions=[Misconception(GRAD_NOT_RESET_BETWEEN_TERMS, mixed["mean_abs"]),
                                   Misconception(WEIGHTED_TERMS, weighted["mean_abs"])], **tol)
    assert_matches(got["max_abs_interior"], ref["max_abs_interior"],
                   what=_("max |gradient| of the interior term"), **tol)
    assert_matches(got["alpha"], ref["alpha"], what=_("the new alpha"),
                   misconceptions=[Misconception(GRAD_NOT_RESET_BETWEEN_TERMS, mixed["alpha"])],
                   hint=_("alpha_hat = max|grad L1| / mean|grad L2|; alpha <- (1 - eta) alpha + eta alpha_hat"),
                   **tol)
    assert_matches(got["beta"], ref["beta"], what=_("the new beta"),
                   misconceptions=[Misconception(GRAD_NOT_RESET_BETWEEN_TERMS, mixed["beta"])], **tol)
