# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 5 — How do I get the gradient of each term of a composite loss?
#
# > *"My loss is `L = L1 + alpha * L2 + beta * L3`. To tune alpha and beta while training I need to
# > know how strongly each term pulls on the weights — every step, without a second forward pass."*
#
# After this lesson you can
#
# * get one gradient per loss term from **one** forward pass, two ways: `autograd.grad` with
#   `retain_graph=True`, or `backward(retain_graph=True)` with the `.grad`s copied aside and reset,
# * explain what `retain_graph` keeps alive and why the last term must not retain it,
# * run one **loss-balancing step** on a small physics-informed network with a Dirichlet, a Neumann
#   and an interior term: a statistic of each term's gradient, and the new loss weights.

# %%
import inspect
import math
import warnings

import numpy as np
import torch

import chainrule
from chainrule.testing import assert_close
from coursework import problems

torch.manual_seed(0)
chainrule.manual_seed(0);

# %% [markdown]
# ## 1. Intuition
#
# The forward pass builds one graph; the terms $L_1, L_2, L_3$ are three outputs of it that share
# most of their nodes (the network). A backward pass from $L_1$ walks the graph and, by default,
# **frees** the values it saved, so a second walk from $L_2$ would find nothing to work with.
# `retain_graph=True` says "I will walk again": keep them. $k$ terms cost one forward and $k$
# backward passes — never $k$ forwards.
#
# Where the gradients land is the second question. `backward()` **adds** into `.grad`, so the
# gradients of the terms mix unless you take each one out and reset `.grad` before the next;
# `autograd.grad` instead **returns** the gradients and leaves `.grad` alone.

# %% [markdown]
# ## 2. The small check: $A = \sum x^2$, $B = \operatorname{mean}(x)$
#
# For $x$ of shape $(1, 10)$: $\partial A/\partial x = 2x$ and $\partial B/\partial x = 1/10 = 0.1$
# everywhere. Both ways, both libraries:

# %%
x_data = problems.lesson5_x()  # a fixed rand(1, 10)

def way1(lib):
    """autograd.grad per term: gradients returned, .grad untouched."""
    x = lib.tensor(x_data, dtype=lib.float64, requires_grad=True)
    A, B = (x ** 2).sum(), x.mean()
    (dA,) = lib.autograd.grad(A, x, retain_graph=True)
    (dB,) = lib.autograd.grad(B, x)
    return dA, dB, x.grad

def way2(lib, reset=True):
    """backward per term, copy .grad aside, reset it."""
    x = lib.tensor(x_data, dtype=lib.float64, requires_grad=True)
    A, B = (x ** 2).sum(), x.mean()
    A.backward(retain_graph=True)
    dA = x.grad.clone()
    if reset:
        x.grad = None
    B.backward()
    dB = x.grad.clone()
    return dA, dB

for lib in (chainrule, torch):
    dA, dB, untouched = way1(lib)
    dA2, dB2 = way2(lib)
    assert_close(dA, 2 * lib.tensor(x_data, dtype=lib.float64))
    assert_close(dB, 0.1 * lib.ones_like(dB))
    assert_close(dA2, dA)
    assert_close(dB2, dB)
    assert untouched is None
    print(f"{lib.__name__:9s} dA/dx = 2x: {np.allclose(dA.numpy(), 2 * x_data)}   dB/dx = {dB.numpy()[0, :3]}...   "
          f"x.grad after way 1: {untouched}")

_, dB_mixed = way2(chainrule, reset=False)
print("forgetting the reset: 'dB/dx' =", dB_mixed.numpy()[0, :3], "... = 2x + 0.1, the two terms mixed")

# %% [markdown]
# ## 3. A physics-informed network with three loss terms
#
# The network $u_\theta: \mathbb R \to \mathbb R$ (1 → 8, tanh → 1) should solve
# $$ -u''(x) = \pi^2 \sin(\pi x) \text{ on } (0, 1), \qquad u(0) = 0 \;\text{(Dirichlet)}, \qquad
#    u'(1) = -\pi \;\text{(Neumann)},$$
# whose solution is $\sin(\pi x)$. The loss has three terms:
# $L_1$ the mean squared **interior** residual $-u'' - f$ at 16 points, $L_2 = u(0)^2$ and
# $L_3 = (u'(1) + \pi)^2$; $\;L = L_1 + \alpha L_2 + \beta L_3$. The derivatives $u'$ and $u''$ with
# respect to the *input* come from autograd too, with `create_graph=True` so that they can in turn be
# differentiated with respect to the weights.
#
# All 18 points go through the network together, in **one** forward pass; each term reads its own
# rows of the output. So the three terms share the network's nodes, and a backward pass from any one
# of them reaches (and, by default, frees) the same saved values.

# %%
def make_pinn(lib):
    h = problems.LESSON5_HIDDEN
    net = lib.nn.Sequential(lib.nn.Linear(1, h), lib.nn.Tanh(), lib.nn.Linear(h, 1)).double()
    with lib.no_grad():
        for name, p in net.named_parameters():
            p.copy_(lib.tensor(problems.lesson5_weights()[name], dtype=lib.float64))
    return net

def pinn_terms(lib, net):
    """[interior, dirichlet, neumann] loss terms, built in one forward pass over all the points."""
    pts = problems.lesson5_points()
    n_i, n_d = len(pts["interior"]), len(pts["dirichlet"])
    rows_i, rows_d, rows_n = slice(0, n_i), slice(n_i, n_i + n_d), slice(n_i + n_d, None)
    x = lib.tensor(np.concatenate([pts["interior"], pts["dirichlet"], pts["neumann"]]),
                   dtype=lib.float64, requires_grad=True)
    u = net(x)  # the one forward pass: the three terms below are built on it
    (du,) = lib.autograd.grad(u.sum(), x, create_graph=True)  # u'(x) at every point
    (d2u,) = lib.autograd.grad(du[rows_i].sum(), x, create_graph=True)  # u''(x) inside
    f = lib.tensor(problems.lesson5_source(pts["interior"]), dtype=lib.float64)
    interior = ((-d2u[rows_i] - f) ** 2).mean()
    dirichlet = (u[rows_d] ** 2).mean()
    neumann = ((du[rows_n] - problems.LESSON5_NEUMANN_VALUE) ** 2).mean()
    return [interior, dirichlet, neumann]

net_c, net_t = make_pinn(chainrule), make_pinn(torch)
terms_c, terms_t = pinn_terms(chainrule, net_c), pinn_terms(torch, net_t)
for name, Lc, Lt in zip(("interior L1", "Dirichlet L2", "Neumann L3"), terms_c, terms_t):
    print(f"{name:13s} chainrule {Lc.item():.6f}   PyTorch {Lt.item():.6f}")
    assert_close(Lc, Lt)

# %% [markdown]
# ## 4. One gradient per term, one forward pass
#
# Way 1 on the network: `autograd.grad(L_i, params, retain_graph=True)` for every term but the last.
#
# One detail: the output bias $b_2$ shifts $u$ but not its derivatives, so the interior term (made of
# $u''$) and the Neumann term (made of $u'$) **do not depend on it**. Asked for the gradient of such a
# term with respect to $b_2$, autograd raises `The differentiated Tensor at index 3 appears to not
# have been used in the graph`; with `allow_unused=True` it returns `None` instead, which for our
# statistics means a gradient of zero.

#
# Here is the loop in PyTorch; chainrule packs the same loop into `chainrule.func.per_loss_grads`
# (you will write it yourself in exercise 2).

# %%
params_t = list(net_t.parameters())
names = [name for name, _ in net_t.named_parameters()]
grads_t = []
for i, L in enumerate(terms_t):
    g = torch.autograd.grad(L, params_t, retain_graph=i < len(terms_t) - 1, allow_unused=True)
    print(f"term {i + 1}: no gradient (None) for", [n for n, gi in zip(names, g) if gi is None])
    grads_t.append(tuple(torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, params_t)))

grads_c = chainrule.func.per_loss_grads(terms_c, list(net_c.parameters()))
for term_c, term_t in zip(grads_c, grads_t):
    for g_c, g_t in zip(term_c, term_t):
        assert_close(g_c, g_t)
print("per-term gradients agree; .grad untouched:", all(p.grad is None for p in net_c.parameters()))

# %% [markdown]
# ## 5. The loss-balancing step
#
# *Learning-rate annealing* (Wang, Teng & Perdikaris, 2021) compares how hard each term pulls: for the
# boundary terms it estimates
# $$\hat\alpha = \frac{\max_\theta |\nabla_\theta L_1|}{\operatorname{mean}_\theta |\nabla_\theta L_2|},\qquad
#   \hat\beta = \frac{\max_\theta |\nabla_\theta L_1|}{\operatorname{mean}_\theta |\nabla_\theta L_3|}$$
# over **all** weights of the network, and moves the loss weights towards them:
# $\alpha \leftarrow (1-\eta)\,\alpha + \eta\,\hat\alpha$ (here $\eta = 0.1$, starting from $\alpha = \beta = 1$).

# %%
def statistics(lib, grads):
    flat = [lib.cat([g.reshape(-1) for g in term]) for term in grads]
    mean_abs = [f.abs().mean().item() for f in flat]
    return mean_abs, flat[0].abs().max().item()

eta, alpha, beta = problems.LESSON5_ETA, 1.0, 1.0
for lib, grads in (("chainrule", grads_c), ("PyTorch", grads_t)):
    mean_abs, max_abs = statistics(chainrule if lib == "chainrule" else torch, grads)
    new_alpha = (1 - eta) * alpha + eta * max_abs / mean_abs[1]
    new_beta = (1 - eta) * beta + eta * max_abs / mean_abs[2]
    print(f"{lib:9s} mean|grad| per term {np.round(mean_abs, 5)}  max|grad L1| {max_abs:.5f}  "
          f"-> alpha {new_alpha:.4f}, beta {new_beta:.4f}")

# chainrule packs the same rule into func.balance_weights (the interior term is the reference, weight 1)
weights_lib = chainrule.func.balance_weights(grads_c, reference=0, previous=[1.0, alpha, beta],
                                             smoothing=1 - eta)
print("chainrule.func.balance_weights:", np.round(weights_lib, 4))
assert np.allclose(weights_lib[1:], [new_alpha, new_beta])

# %% [markdown]
# ## 6. Inside chainrule: `per_loss_grads`
#
# The library's version is the loop of section 4, written once: one `autograd.grad` per term on the
# shared graph, `retain_graph` for all but the last, so that the last pass frees the graph.

# %%
print(inspect.getsource(chainrule.func.per_loss_grads))

# %% [markdown]
# On the small check of section 2 it gives the same gradients as our two ways:

# %%
x = chainrule.tensor(x_data, dtype=chainrule.float64, requires_grad=True)
(dA,), (dB,) = chainrule.func.per_loss_grads([(x ** 2).sum(), x.mean()], [x])
assert_close(dA, 2 * x.detach())
assert_close(dB, 0.1 * chainrule.ones_like(dB))
print("per_loss_grads:", dA.numpy()[0, :3], "...", dB.numpy()[0, :3], "...  x.grad:", x.grad)

# %% [markdown]
# **Try it.** Move the loss weights α and β. Each term's own statistic, mean $|\nabla L_i|$, does not
# change — the weights do not enter the terms — but the weighted pull of each term, its share of the
# combined update direction and the angle between them do. Set α and β near the balancing estimates
# α̂ and β̂ printed under the table: the three terms then pull with comparable strength. The button
# trains the network for a few seconds with your α and β and compares the result with $\sin(\pi x)$.

# %%
from coursework.widgets import lesson5_loss_weights

lesson5_loss_weights()

# %% [markdown]
# ## 7. The common mistakes and their symptoms
#
# * **`retain_graph` forgotten.** Symptom: the second term's backward raises
#   `RuntimeError: Trying to backward through the graph a second time ...`.
# * **`.grad` not reset between terms** (way 2). Symptom: no error at all — the second term's
#   "gradient" is the sum of the first two, the statistics are wrong, and the loss weights drift.

# %%
for lib in (chainrule, torch):
    net = make_pinn(lib)
    L1, L2, L3 = pinn_terms(lib, net)
    L1.backward()
    try:
        L2.backward()
    except RuntimeError as err:
        print(f"{lib.__name__:9s} RuntimeError: {str(err)[:75]}...")

# %% [markdown]
# ---
# ## Exercises
#
# ### Exercise 1 (derivation by hand)
#
# For a row vector $x$ of $n$ elements, $A = \sum_i x_i^2$, $B = \operatorname{mean}(x)$ and
# $C = \big(\sum_i x_i\big)^2$. Derive $\partial A/\partial x$, $\partial B/\partial x$, $\partial C/\partial x$
# and write them in NumPy (no autograd) in `term_grads_by_hand(x)`, each with the shape of `x`.

# %% nbgrader={"grade": false, "grade_id": "l5_ex1_term_grads_by_hand", "locked": false, "schema_version": 3, "solution": true, "task": false}
def term_grads_by_hand(x):
    """(dA/dx, dB/dx, dC/dx) for A = (x**2).sum(), B = x.mean(), C = x.sum()**2."""
    ### BEGIN SOLUTION
    return 2 * x, np.full_like(x, 1.0 / x.size), np.full_like(x, 2 * x.sum())
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l5_ex1_term_grads_by_hand_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_term_grads_by_hand(term_grads_by_hand, problems.lesson5_x())
### BEGIN HIDDEN TESTS
checks.check_term_grads_by_hand(term_grads_by_hand, problems.lesson5_x(seed=6, shape=(1, 7)))
checks.check_term_grads_by_hand(term_grads_by_hand, problems.lesson5_x(seed=7, shape=(3, 4)) - 0.5)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (mechanism) — the per-term gradient loop
#
# Write `per_term_grads(losses, params)` with `chainrule.autograd.grad`: for a list of scalar loss
# terms built in one forward pass and a list of parameters, return a list with, for each term, the
# tuple of its gradients with respect to `params`. Keep the graph alive exactly as long as needed,
# and leave every `.grad` untouched. A parameter that a term does not use gets a gradient of zeros
# (of the parameter's shape). (Not `chainrule.func.per_loss_grads` — you are writing it.)

# %% nbgrader={"grade": false, "grade_id": "l5_ex2_per_term_grads", "locked": false, "schema_version": 3, "solution": true, "task": false}
def per_term_grads(losses, params):
    """[grads of term 0, grads of term 1, ...], each a tuple with one gradient per parameter."""
    ### BEGIN SOLUTION
    last = len(losses) - 1
    grads = []
    for i, L in enumerate(losses):
        g = chainrule.autograd.grad(L, params, retain_graph=i < last, allow_unused=True)
        grads.append(tuple(chainrule.zeros_like(p) if gi is None else gi for gi, p in zip(g, params)))
    return grads
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "l5_ex2_per_term_grads_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_per_term_grads(per_term_grads, seed=0)
### BEGIN HIDDEN TESTS
checks.check_per_term_grads(per_term_grads, seed=3)
checks.check_grad_untouched(per_term_grads)
checks.check_graph_freed(per_term_grads)
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3 (API) — one loss-balancing step
#
# Write `balance_step(alpha, beta)`: build the network (`make_pinn(chainrule)`) and its three terms
# (`pinn_terms`) in **one** forward pass, get each term's gradient with respect to all parameters,
# and return a dict with
#
# * `"losses"`: the three term values `[L1, L2, L3]` (floats),
# * `"mean_abs"`: the mean absolute gradient of each term over all weights `[m1, m2, m3]`,
# * `"max_abs_interior"`: the max absolute gradient of the interior term $L_1$,
# * `"alpha"`, `"beta"`: the updated loss weights, with $\eta$ = `problems.LESSON5_ETA`.

# %% nbgrader={"grade": false, "grade_id": "l5_ex3_balance_step", "locked": false, "schema_version": 3, "solution": true, "task": false}
def balance_step(alpha, beta):
    """One learning-rate-annealing step of the loss weights alpha and beta."""
    ### BEGIN SOLUTION
    net = make_pinn(chainrule)
    terms = pinn_terms(chainrule, net)
    values = [L.item() for L in terms]
    grads = per_term_grads(terms, list(net.parameters()))
    flat = [np.concatenate([g.numpy().reshape(-1) for g in term]) for term in grads]
    mean_abs = [float(np.abs(f).mean()) for f in flat]
    max_abs = float(np.abs(flat[0]).max())
    eta = problems.LESSON5_ETA
    return {"losses": values, "mean_abs": mean_abs, "max_abs_interior": max_abs,
            "alpha": (1 - eta) * alpha + eta * max_abs / mean_abs[1],
            "beta": (1 - eta) * beta + eta * max_abs / mean_abs[2]}
    ### END SOLUTION

step = balance_step(1.0, 1.0)
print({k: np.round(v, 5).tolist() for k, v in step.items()})

# %% nbgrader={"grade": true, "grade_id": "l5_ex3_balance_step_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
from coursework import checks

checks.check_balance_step(balance_step, alpha=1.0, beta=1.0)
### BEGIN HIDDEN TESTS
checks.check_balance_step(balance_step, alpha=2.0, beta=0.5)
checks.check_balance_step(balance_step, alpha=10.0, beta=30.0)
### END HIDDEN TESTS
