"""The numbers behind the course's widgets, as plain functions.

Every widget in :mod:`coursework.widgets` only displays what these functions
return, so they are tested on their own against PyTorch (tests/viz). Closed
forms are NumPy; the autograd side uses PyTorch, the reference of the course.
The lesson data come from :mod:`coursework.problems`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import checks, problems

# ----------------------------------------------------------------------------- lessons 1 and 2
#   a = x + 2*y,  b = a + z/2


def lesson1_forward(x, y, z) -> dict[str, np.ndarray]:
    """Forward values of the lesson-1 graph."""
    x, y, z = (np.asarray(v, dtype=float) for v in (x, y, z))
    a = x + 2 * y
    return {"a": a, "b": a + z / 2}


def lesson1_local_derivatives() -> dict[str, float]:
    """The local derivatives on the graph's edges (the same at every point: the graph is linear)."""
    return {"db/da": 1.0, "db/dz": 0.5, "da/dx": 1.0, "da/dy": 2.0}


def lesson2_vjp(v) -> dict[str, np.ndarray]:
    """Gradients after ``b.backward(gradient=v)``: vᵀ·(∂b/∂leaf) for each leaf and for ``a``.

    ∂b/∂x = I, ∂b/∂y = 2I, ∂b/∂z = I/2 and ∂b/∂a = I (all diagonal), so the
    gradients are v, 2v, v/2 and v. They do not depend on the leaves' values.
    """
    v = np.asarray(v, dtype=float)
    d = lesson1_local_derivatives()
    return {
        "x": d["db/da"] * d["da/dx"] * v,
        "y": d["db/da"] * d["da/dy"] * v,
        "z": d["db/dz"] * v,
        "a": d["db/da"] * v,
    }


def lesson2_jacobians(n: int = 2) -> dict[str, np.ndarray]:
    """∂b/∂leaf as matrices (row i = gradient of b[i]); one-hot seeds pick the rows."""
    eye = np.eye(n)
    return {"x": eye, "y": 2 * eye, "z": 0.5 * eye}


def lesson2_weighted_sum(x, y, z, v) -> float:
    """The scalar ``(b * v).sum()`` whose plain backward() gives the same gradients."""
    return float((lesson1_forward(x, y, z)["b"] * np.asarray(v, dtype=float)).sum())


def lesson2_one_hot_row(v) -> int | None:
    """If ``v`` is one-hot, the index of the Jacobian row its backward recovers, else None."""
    v = np.asarray(v, dtype=float)
    nz = np.flatnonzero(v)
    if len(nz) == 1 and v[nz[0]] == 1.0:
        return int(nz[0])
    return None


def lesson1_torch(x, y, z, seed=None, retain_a: bool = True, weighted_sum: bool = False):
    """Build the graph in PyTorch, run backward (seed defaults to ones); return the tensors."""
    import torch

    t = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in (("x", x), ("y", y), ("z", z))}
    a = t["x"] + 2 * t["y"]
    b = a + t["z"] / 2
    if retain_a:
        a.retain_grad()
    seed_t = torch.ones_like(b) if seed is None else torch.tensor(np.asarray(seed, dtype=np.float64))
    if weighted_sum:
        s = (b * seed_t).sum()
        s.backward()
        t["s"] = s
    else:
        b.backward(gradient=seed_t)
    t.update(a=a, b=b)
    return t


def chainrule_available() -> bool:
    try:
        import chainrule
    except Exception:
        return False
    return hasattr(chainrule, "tensor")


def lesson1_chainrule(x, y, z, seed=None, retain_a: bool = True):
    """The same graph and backward in chainrule; returns the tensors."""
    import chainrule as cr

    t = {k: cr.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in (("x", x), ("y", y), ("z", z))}
    a = t["x"] + 2 * t["y"]
    b = a + t["z"] / 2
    if retain_a:
        a.retain_grad()
    seed_t = cr.ones_like(b) if seed is None else cr.tensor(np.asarray(seed, dtype=np.float64))
    b.backward(seed_t)
    t.update(a=a, b=b)
    return t


# ----------------------------------------------------------------------------- lesson 3
#   one Linear(1, 1, bias=False) used twice: out = w*(w*x), L = (out - y)^2


def lesson3_loss(w, x: float = problems.LESSON3_X, y: float = problems.LESSON3_Y):
    """L(w) = (w²x − y)², elementwise over an array of w."""
    w = np.asarray(w, dtype=float)
    return (w * w * x - y) ** 2


def lesson3_grad_formula(w, x: float = problems.LESSON3_X, y: float = problems.LESSON3_Y):
    """The hand formula dL/dw = 4(w²x − y)·w·x."""
    w = np.asarray(w, dtype=float)
    return 4 * (w * w * x - y) * w * x


def lesson3_use_contributions(w, x: float = problems.LESSON3_X, y: float = problems.LESSON3_Y) -> list[float]:
    """Each use's term of dL/dw: ∂L/∂w_inner = 2(out−y)·w·x and ∂L/∂w_outer = 2(out−y)·(w·x)."""
    out = w * w * x
    return [float(2 * (out - y) * w * x), float(2 * (out - y) * (w * x))]


def lesson3_tangent(w, half_width: float = 0.25, n: int = 2, x=problems.LESSON3_X, y=problems.LESSON3_Y):
    """Points of the tangent line to L at w: (ws, L(w) + L'(w)·(ws − w))."""
    ws = np.linspace(w - half_width, w + half_width, n)
    return ws, float(lesson3_loss(w, x, y)) + float(lesson3_grad_formula(w, x, y)) * (ws - w)


def lesson3_autograd(w: float, x: float = problems.LESSON3_X, y: float = problems.LESSON3_Y) -> dict:
    """PyTorch, float32: a Linear(1, 1, bias=False) called twice, MSE loss, backward.

    Each call sees the weight through its own view, whose retained grad is that
    use's contribution; the weight's ``.grad`` is their sum.
    """
    import torch

    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(float(w))
    W = layer.weight
    uses = [W.view(1, 1), W.view(1, 1)]
    for u in uses:
        u.retain_grad()
    xt = torch.tensor([[float(x)]])
    h = torch.nn.functional.linear(xt, uses[0])  # first call of the layer
    out = torch.nn.functional.linear(h, uses[1])  # second call, same weight
    loss = torch.nn.functional.mse_loss(out, torch.tensor([[float(y)]]))
    loss.backward()
    return {
        "out": float(out.item()),
        "loss": float(loss.item()),
        "grad": float(W.grad.item()),
        "contributions": [float(u.grad.item()) for u in uses],
    }


# ----------------------------------------------------------------------------- lesson 4
#   Linear(1, 5, bias=False) -> sigmoid -> Linear(5, 1, bias=False)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def lesson4_per_sample_grads(weights=None, features=None) -> dict[str, np.ndarray]:
    """Closed form d out_i / d weight for every sample i, each flattened: two (N, 5) matrices.

    h_i = σ(W1 x_i);  d out_i / d W2[0, k] = h_ik;  d out_i / d W1[k, 0] = W2[0, k]·h_ik(1 − h_ik)·x_i.
    """
    weights = problems.lesson4_weights() if weights is None else weights
    features = problems.lesson4_features() if features is None else features
    W1, W2 = np.asarray(weights["0.weight"]), np.asarray(weights["2.weight"])
    X = np.asarray(features, dtype=float).reshape(-1, 1)
    h = _sigmoid(X @ W1.T)  # (N, 5)
    g2 = h
    g1 = W2.reshape(1, -1) * h * (1 - h) * X
    return {"0.weight": g1, "2.weight": g2}


def lesson4_batch_summary(per_sample: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """What ``out.backward(ones)`` leaves in ``.grad`` (the sum) and the mean, per weight."""
    return {k: {"sum": g.sum(axis=0), "mean": g.mean(axis=0)} for k, g in per_sample.items()}


def lesson4_torch_batch_grads(weights=None, features=None) -> dict[str, np.ndarray]:
    """PyTorch: ``out.backward(gradient=ones)`` on the whole batch; the ``.grad`` of each weight."""
    import torch

    weights = problems.lesson4_weights() if weights is None else weights
    features = problems.lesson4_features() if features is None else features
    net = torch.nn.Sequential(
        torch.nn.Linear(1, problems.LESSON4_HIDDEN, bias=False), torch.nn.Sigmoid(),
        torch.nn.Linear(problems.LESSON4_HIDDEN, 1, bias=False),
    ).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.tensor(weights[name]))
    out = net(torch.tensor(np.asarray(features, dtype=float)))
    out.backward(gradient=torch.ones_like(out))
    return {name: p.grad.numpy().reshape(-1).copy() for name, p in net.named_parameters()}


# ----------------------------------------------------------------------------- lesson 5
#   L = L1 (interior residual) + alpha * L2 (Dirichlet) + beta * L3 (Neumann)

LESSON5_TERMS = ("interior", "Dirichlet", "Neumann")


# The physics-informed network (float64) and its three loss terms [interior, Dirichlet, Neumann]:
# the widget shows the very network the checks grade against.
lesson5_terms = checks.torch_pinn_terms


def lesson5_term_grads(weights=None, points=None) -> dict:
    """Way 1: ``autograd.grad(L_i, params, retain_graph=True)`` per term, one forward pass.

    Returns the term values and each term's gradient over all weights, flattened.
    """
    import torch

    net, terms = lesson5_terms(weights, points)
    params = list(net.parameters())
    grads = []
    for i, L in enumerate(terms):
        # allow_unused: the derivative terms do not depend on the output bias at all
        gs = torch.autograd.grad(L, params, retain_graph=i < len(terms) - 1, allow_unused=True)
        gs = [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]
        grads.append(torch.cat([g.reshape(-1) for g in gs]).detach().numpy().copy())
    return {"losses": [float(L.detach()) for L in terms], "grads": grads}


def lesson5_combine(grads: Sequence[np.ndarray], alpha: float, beta: float) -> dict:
    """Statistics of each term's gradient and of the combined direction g1 + α·g2 + β·g3."""
    g = [np.asarray(v, dtype=float) for v in grads]
    w = [1.0, float(alpha), float(beta)]
    weighted = [wi * gi for wi, gi in zip(w, g)]
    combined = sum(weighted)
    cnorm = float(np.linalg.norm(combined))

    def cos(a, b):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0

    wnorms = [float(np.linalg.norm(v)) for v in weighted]
    total = sum(wnorms) or 1.0
    return {
        "weights": w,
        "mean_abs": [float(np.abs(v).mean()) for v in g],
        "max_abs": [float(np.abs(v).max()) for v in g],
        "weighted_mean_abs": [float(np.abs(v).mean()) for v in weighted],
        "share": [n / total for n in wnorms],  # each weighted term's part of the summed norms
        "cos_to_combined": [cos(v, combined) for v in g],
        "combined": combined,
        "combined_norm": cnorm,
    }


def lesson5_balanced_weights(grads: Sequence[np.ndarray]) -> tuple[float, float]:
    """The learning-rate-annealing estimates α̂ = max|∇L1| / mean|∇L2|, β̂ = max|∇L1| / mean|∇L3|."""
    m = float(np.abs(grads[0]).max())
    return m / float(np.abs(grads[1]).mean()), m / float(np.abs(grads[2]).mean())


def lesson5_train(alpha: float, beta: float, steps: int = 100, lr: float = 1e-2, balance: bool = False,
                  eta: float = problems.LESSON5_ETA) -> dict:
    """A few Adam steps on L1 + α L2 + β L3; with ``balance`` α, β follow their estimates each step.

    Returns the history of the three terms and of α, β (plain lists).
    """
    if True:
        weights = problems.lesson5_weights()
        net, _ = lesson5_terms(weights)
        params = {k: p.detach().numpy().copy() for k, p in net.named_parameters()}
        hist = {"losses": [], "alpha": [], "beta": []}
        m_state = {k: np.zeros_like(v) for k, v in params.items()}
        v_state = {k: np.zeros_like(v) for k, v in params.items()}
        b1, b2, eps = 0.9, 0.999, 1e-8
        for step in range(1, steps + 1):
            res = lesson5_term_grads(params)
            grads = res["grads"]
            if balance:
                ah, bh = lesson5_balanced_weights(grads)
                alpha = (1 - eta) * alpha + eta * ah
                beta = (1 - eta) * beta + eta * bh
            hist["losses"].append(res["losses"])
            hist["alpha"].append(alpha)
            hist["beta"].append(beta)
            flat = grads[0] + alpha * grads[1] + beta * grads[2]
            i = 0
            for k, p in params.items():
                n = p.size
                gk = flat[i:i + n].reshape(p.shape)
                i += n
                m_state[k] = b1 * m_state[k] + (1 - b1) * gk
                v_state[k] = b2 * v_state[k] + (1 - b2) * gk * gk
                mh = m_state[k] / (1 - b1 ** step)
                vh = v_state[k] / (1 - b2 ** step)
                params[k] = p - lr * mh / (np.sqrt(vh) + eps)
        hist["params"] = params
        return hist


def lesson5_solution(params, xs) -> np.ndarray:
    """The network's u(x) for given parameters (NumPy)."""
    xs = np.asarray(xs, dtype=float).reshape(-1, 1)
    h = np.tanh(xs @ np.asarray(params["0.weight"]).T + np.asarray(params["0.bias"]))
    return (h @ np.asarray(params["2.weight"]).T + np.asarray(params["2.bias"])).reshape(-1)


__all__ = [n for n in dir() if n.startswith("lesson") or n in ("chainrule_available", "LESSON5_TERMS")]
