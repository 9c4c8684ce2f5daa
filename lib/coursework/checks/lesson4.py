"""Lesson 4: per-sample gradients."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import problems
from ..i18n import N_, _
from ._core import (ACCUMULATED_ACROSS_STEPS, AVERAGED_OVER_BATCH, ROWS_ACCUMULATED, ROWS_DIVIDED_BY_BATCH,
                    SUMMED_OVER_BATCH, TRANSPOSED, CheckFailure, Misconception, assert_matches, call_student,
                    as_array, chainrule, diagnosis, require_chainrule_tensor, require_results, torch)

__all__ = ["torch_per_sample", "check_per_sample_by_hand", "check_linear_per_sample",
           "check_per_sample_matrices", "check_per_sample_rows", "check_training", "check_matvec_batch_rule"]

INNER_FACTOR_X_MISSING = diagnosis("inner_factor_x_missing", N_("inner factor x left out"), N_(
    "you left out the inner factor x (d(W1 x)/dW1 = x)."))
MATVEC_BY_W_TRANSPOSED = diagnosis("matvec_by_w_transposed", N_("multiplied by W's transpose"), N_(
    "each sample came out as Wᵀ x, not W x: with the samples as rows, xs @ W multiplies every row by W's "
    "transpose; row n of W x_n stacked is x_nᵀ Wᵀ, so write xs @ W.T."))
BATCH_AXIS_MISPLACED = diagnosis("batch_axis_misplaced", N_("batch axis of the result misplaced"), N_(
    "the products are right, but the batch axis you returned points at the other axis of your result: "
    "vmap would hand sample n the wrong slice. Return the axis along which your result stacks the samples."))
PRODUCTS_SUMMED_OVER_BATCH = diagnosis("products_summed_over_batch", N_("batch axis summed away"), N_(
    "your result is the sum of the N products W x_n: the batch axis was contracted. A batching rule "
    "keeps one result per sample, stacked along an axis it returns."))
SIGMOID_DERIVATIVE = diagnosis("sigmoid_derivative_wrong", N_("wrong derivative of sigmoid"), N_(
    "sigmoid'(v) = sigmoid(v) * (1 - sigmoid(v)), not sigmoid(v)."))


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _torch_lesson4_model(weights):
    t = torch()
    model = t.nn.Sequential(
        t.nn.Linear(1, problems.LESSON4_HIDDEN, bias=False), t.nn.Sigmoid(),
        t.nn.Linear(problems.LESSON4_HIDDEN, 1, bias=False)).double()
    with t.no_grad():
        for name, p in model.named_parameters():
            p.copy_(t.tensor(weights[name]))
    return model


def torch_per_sample(features, weights=None):
    """Reference per-sample gradients of the lesson-4 output: torch.func.vmap(grad)."""
    t = torch()
    from torch.func import functional_call, grad, vmap
    weights = problems.lesson4_weights() if weights is None else weights
    model = _torch_lesson4_model(weights)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def out(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze()

    g = vmap(grad(out), in_dims=(None, 0))(params, t.tensor(features, dtype=t.float64))
    return {k: v.numpy() for k, v in g.items()}


def _per_sample_misconceptions(expected: np.ndarray) -> list:
    n = expected.shape[0]
    s = expected.sum(0)
    return [Misconception(SUMMED_OVER_BATCH, s), Misconception(SUMMED_OVER_BATCH, s.reshape(-1, 1)),
            Misconception(SUMMED_OVER_BATCH, s.reshape(1, -1)),
            Misconception(AVERAGED_OVER_BATCH, s.reshape(-1, 1) / n),
            Misconception(AVERAGED_OVER_BATCH, s.reshape(1, -1) / n),
            Misconception(SUMMED_OVER_BATCH, np.broadcast_to(s.reshape(1, -1), expected.shape)),
            Misconception(AVERAGED_OVER_BATCH, s / n), Misconception(AVERAGED_OVER_BATCH, s.T / n),
            Misconception(AVERAGED_OVER_BATCH, s.reshape(-1) / n),
            Misconception(ROWS_ACCUMULATED, np.cumsum(expected, axis=0)),
            Misconception(ROWS_DIVIDED_BY_BATCH, expected / n),
            Misconception(TRANSPOSED, expected.T)]


def check_per_sample_by_hand(fn: Callable, n: int = 6, seed: int = 4) -> None:
    """Lesson 4, exercise 1: per-sample d out/d W1 and d out/d W2, by a hand formula."""
    weights = problems.lesson4_weights(seed)
    x = problems.lesson4_features(n)
    got = call_student(fn, x.copy(), weights["0.weight"].copy(), weights["2.weight"].copy(),
                       what="per_sample_by_hand(x, W1, W2)")
    require_results(got, 2, "per_sample_by_hand", _("G1, G2, each of shape (N, 5)"))
    ref = torch_per_sample(x, weights)
    G1, G2 = ref["0.weight"].reshape(n, -1), ref["2.weight"].reshape(n, -1)
    W1, W2 = weights["0.weight"], weights["2.weight"]
    s = _sigmoid(x @ W1.T)
    assert_matches(got[0], G1, what=_("G1 = d out / d W1, one row per sample"), rtol=1e-9,
                   misconceptions=_per_sample_misconceptions(G1) + [
                       Misconception(INNER_FACTOR_X_MISSING, W2 * s * (1 - s)),
                       Misconception(SIGMOID_DERIVATIVE, W2 * s * x)])
    assert_matches(got[1], G2, what=_("G2 = d out / d W2, one row per sample"), rtol=1e-9,
                   misconceptions=_per_sample_misconceptions(G2))


def check_linear_per_sample(fn: Callable, n: int, n_in: int, n_out: int, seed: int = 0) -> None:
    """Lesson 4, exercise 2: the per-sample outer product of a linear layer."""
    t = torch()
    from torch.func import functional_call, grad, vmap
    rng = np.random.default_rng(seed)
    inputs, W = rng.normal(size=(n, n_in)), rng.normal(size=(n_out, n_in))
    signal = rng.normal(size=(n, n_out))
    layer = t.nn.Linear(n_in, n_out, bias=False).double()

    def per_sample_loss(p, x, s):  # d/dW of s . (W x) is the layer's per-sample gradient
        return (functional_call(layer, p, (x,)) * s).sum()

    expected = vmap(grad(per_sample_loss), in_dims=(None, 0, 0))(
        {"weight": t.tensor(W)}, t.tensor(inputs), t.tensor(signal))["weight"].numpy()
    got = call_student(fn, inputs.copy(), signal.copy(),
                       what=f"linear_per_sample(inputs {inputs.shape}, signal {signal.shape})")
    mis = [Misconception(SUMMED_OVER_BATCH, expected.sum(0)),
           Misconception(AVERAGED_OVER_BATCH, expected.sum(0) / n),
           Misconception(TRANSPOSED, np.swapaxes(expected, 1, 2))]
    assert_matches(got, expected, what=_("per-sample weight gradients, shape (N, out, in) = {shape}").format(
                       shape=expected.shape), rtol=1e-9, misconceptions=mis,
                   hint=_("row n is the outer product signal[n] (out) x inputs[n] (in)."))


def check_per_sample_matrices(fn: Callable, features=None) -> None:
    """Lesson 4, exercise 3: ``fn(features)`` gives the (N, 5) per-sample matrices of the network."""
    features = problems.lesson4_features() if features is None else np.asarray(features)
    got = call_student(fn, features.copy(), what=f"per_sample_matrices(x {features.shape})")
    require_results(got, 2, "per_sample_matrices", _("G1, G2, each of shape (N, 5)"))
    check_per_sample_rows(*got, features)


def check_per_sample_rows(G1, G2, features) -> None:
    """G1 and G2, one row per sample of ``features``, against PyTorch's per-sample gradients."""
    ref = torch_per_sample(features)
    n = features.shape[0]
    E1, E2 = ref["0.weight"].reshape(n, -1), ref["2.weight"].reshape(n, -1)
    assert_matches(G1, E1, what=_("G1 (d out / d weight1 per sample, shape {shape})").format(shape=E1.shape),
                   rtol=1e-7, atol=1e-10, misconceptions=_per_sample_misconceptions(E1))
    assert_matches(G2, E2, what=_("G2 (d out / d weight2 per sample, shape {shape})").format(shape=E2.shape),
                   rtol=1e-7, atol=1e-10, misconceptions=_per_sample_misconceptions(E2))


def _torch_train(steps, lr, zero=True):
    t = torch()
    model = _torch_lesson4_model(problems.lesson4_weights())
    x = t.tensor(problems.lesson4_features())
    y = t.tensor(problems.lesson4_targets(problems.lesson4_features()))
    loss_fn = t.nn.MSELoss()
    for _step in range(steps):
        if zero:
            model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        with t.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return {k: v.detach().numpy().copy() for k, v in model.named_parameters()}


def check_training(fn: Callable, steps: int = 5, lr: float = 0.5) -> None:
    """Lesson 4, exercise 4: a manual SGD loop with zeroed gradients."""
    got = call_student(fn, steps, lr, what=f"train(steps={steps}, lr={lr})")
    if not (isinstance(got, dict) and {"0.weight", "2.weight"} <= set(got)):
        raise CheckFailure(_("train must return a dict {name: weight} with the keys '0.weight' and "
                             "'2.weight' (as dict(model.named_parameters()) has)."))
    expected = _torch_train(steps, lr)
    wrong = _torch_train(steps, lr, zero=False)
    for name in ("0.weight", "2.weight"):
        assert_matches(got[name], expected[name],
                       what=_("{name} after {steps} SGD steps (lr={lr})").format(name=name, steps=steps, lr=lr),
                       rtol=1e-7, atol=1e-10,
                       misconceptions=[Misconception(ACCUMULATED_ACROSS_STEPS, wrong[name])])


# ---------------------------------------------------------------- exercise 5: a batching rule
def _rule_with_student_batching(rule: Callable):
    """``W @ x`` as a chainrule op whose batching rule is the student's: what vmap runs is theirs.
    Its backward, Wᵀ @ grad, is the same op again, so vmap(grad(...)) calls the rule twice."""
    from chainrule.function import Function

    class StudentMatVec(Function):
        saves_inputs = (0, 1)

        def name(self):
            return "StudentMatVecBackward0"

        def forward(self, xp, W, x):
            return W @ x

        def backward(self, grad):
            W, x = self.inputs
            grad_W = grad.unsqueeze(-1) * x.unsqueeze(-2) if self.needs_input_grad[0] else None
            return grad_W, StudentMatVec()(W.mT, grad) if self.needs_input_grad[1] else None

        def batch_rule(self, args, batch_dims):
            (W, xs), (w_dim, x_dim) = args, batch_dims
            if w_dim is not None:  # the exercise batches the vectors only; a batched W is vmap's own
                return chainrule().func.vmap(lambda w, x: w @ x, in_dims=(w_dim, x_dim))(W, xs), 0
            return _call_rule(rule, W, xs, x_dim)

    return lambda W, x: StudentMatVec()(W, x)


def _call_rule(rule: Callable, W, xs, batch_dim: int):
    got = call_student(rule, W, xs, batch_dim,
                       what=f"matvec_batch_rule(W {tuple(W.shape)}, xs {tuple(xs.shape)}, batch_dim={batch_dim})")
    require_results(got, 2, "matvec_batch_rule", _("ys and the batch axis of ys"))
    ys, out_dim = got
    require_chainrule_tensor(ys, "ys")
    if not (isinstance(out_dim, int) and not isinstance(out_dim, bool) and 0 <= out_dim < max(ys.ndim, 1)):
        raise CheckFailure(_("the second result must be the axis of ys that holds the batch (0 or 1), got "
                             "{value!r}.").format(value=out_dim))
    return ys, out_dim


def check_matvec_batch_rule(rule: Callable, n: int = 4, n_in: int = 3, n_out: int = 2, seed: int = 0) -> None:
    """Lesson 4, exercise 5: the batching rule of ``W @ x`` for a batch of vectors, called directly,
    then inside chainrule's vmap and vmap(grad), against torch.func.vmap."""
    t, cr = torch(), chainrule()
    from torch.func import grad, vmap
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_out, n_in))
    for batch_dim in (0, 1):
        xs = rng.normal(size=(n, n_in) if batch_dim == 0 else (n_in, n))
        expected = vmap(lambda x: t.tensor(W) @ x, in_dims=batch_dim)(t.tensor(xs)).numpy()  # (n, out)
        ys, out_dim = _call_rule(rule, cr.tensor(W), cr.tensor(xs), batch_dim)
        rows = np.moveaxis(as_array(ys), out_dim, 0) if ys.ndim == 2 else ys
        rows_by_w_transposed = vmap(lambda x: t.tensor(W).T @ x, in_dims=batch_dim)(t.tensor(xs)).numpy() \
            if n_in == n_out else None
        mis = [Misconception(PRODUCTS_SUMMED_OVER_BATCH, expected.sum(0)), Misconception(BATCH_AXIS_MISPLACED, expected.T)]
        if rows_by_w_transposed is not None:
            mis.append(Misconception(MATVEC_BY_W_TRANSPOSED, rows_by_w_transposed))
        assert_matches(rows, expected, rtol=1e-10, misconceptions=mis,
                       what=_("W @ x for every sample, xs batched on axis {axis} (rows: samples, shape {shape})")
                       .format(axis=batch_dim, shape=expected.shape),
                       hint=_("sample n's vector is {vector}; its product W @ x has {out} elements.")
                       .format(vector="xs[n]" if batch_dim == 0 else "xs[:, n]", out=n_out))

    matvec = _rule_with_student_batching(rule)
    xs = rng.normal(size=(n, n_in))
    expected = vmap(lambda x: t.tensor(W) @ x)(t.tensor(xs)).numpy()
    got = cr.func.vmap(lambda x: matvec(cr.tensor(W), x))(cr.tensor(xs))
    assert_matches(got, expected, rtol=1e-10,
                   what=_("chainrule.func.vmap(lambda x: W @ x)(xs) running your rule"))

    def loss(lib, product):
        return lambda x: (product(lib.tensor(W), x) ** 2).sum()

    expected = vmap(grad(loss(t, lambda w, x: w @ x)))(t.tensor(xs)).numpy()
    got = cr.func.vmap(cr.func.grad(loss(cr, matvec)))(cr.tensor(xs))
    assert_matches(got, expected, rtol=1e-10,
                   what=_("vmap(grad(lambda x: ((W @ x) ** 2).sum()))(xs), your rule in the forward and the "
                          "backward pass (the gradient 2 Wᵀ W x of each sample)"))
