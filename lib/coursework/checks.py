"""Every check of the course, written once and imported by every test cell.

Each ``check_*`` function compares a student's answer with a reference that it
computes itself, in PyTorch (float64 where the comparison needs it), from the
lesson data in :mod:`coursework.problems` -- never from names in the notebook,
so redefining a variable cannot make a wrong answer pass.

When an answer is wrong a check raises :class:`CheckFailure` (an
``AssertionError``) whose message says what was checked, the expected and the
received values, where they differ most, and -- when the wrong answer matches
a known misconception -- a diagnosis:

* gradient summed over the batch instead of per sample,
* a reused layer counted once,
* ``.grad`` not reset between loss terms,
* ``retain_graph`` forgotten,
* a backward seed of the wrong shape,
* gradients accumulated across steps without zeroing.

Checks write nothing to stdout or stderr and return ``None``: nbgrader scores
a test cell 0 if it writes to stderr, and reads a number a cell returns as
partial credit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from . import problems

__all__ = [
    "CheckFailure",
    "Misconception",
    "DIAGNOSES",
    "as_array",
    "assert_matches",
    "call_student",
]


# =============================================================================
# The machinery
# =============================================================================


class CheckFailure(AssertionError):
    """A wrong answer, with a message meant for the student."""


#: The known misconceptions, each with the explanation a student reads.
DIAGNOSES: dict[str, str] = {
    "summed_over_batch": (
        "gradient summed over the batch instead of per sample: your answer equals the SUM of "
        "the per-sample gradients. One backward pass over a batch adds every sample's "
        "contribution into the single .grad of each parameter; to keep them apart, compute "
        "one gradient per sample (a loop of batch-size-1 passes, or the per-sample outer "
        "product)."
    ),
    "averaged_over_batch": (
        "gradient averaged over the batch instead of per sample: your answer equals the MEAN "
        "of the per-sample gradients (a reduction='mean' loss divides by the batch size). "
        "Keep one row per sample."
    ),
    "rows_accumulated": (
        "each row holds the sum of the rows before it: in a loop of batch-size-1 backward "
        "passes, .grad was not reset between samples, so it kept adding up. Call "
        "model.zero_grad() (or set p.grad = None) before each sample's backward()."
    ),
    "rows_divided_by_batch": (
        "every row is divided by the batch size: you differentiated the MEAN over the batch "
        "(a reduction='mean' loss), which scales each sample's gradient by 1/N. A per-sample "
        "gradient is the gradient of that sample's own output, unscaled."
    ),
    "reused_layer_counted_once": (
        "a reused layer counted once: your answer is the contribution of a single use of the "
        "layer. When one parameter is used several times in a forward pass, the graph holds "
        "one node per use and backward ADDS their contributions into the one .grad: "
        "d/dw (w*(w*x)) = w*x + w*x, not w*x."
    ),
    "one_factor_of_2_missing": (
        "half the right value, which two different slips give: (a) a reused layer counted "
        "once -- w is used twice, and backward ADDS both uses: d/dw (w*(w*x)) = w*x + w*x, not "
        "w*x; or (b) the factor 2 of the square is missing -- the chain rule starts at the "
        "square: d/du u^2 = 2u."
    ),
    "both_factors_of_2_missing": (
        "a quarter of the right value: both factors of 2 are missing, the 2u of the square "
        "(d/du u^2 = 2u) and the second use of w (d/dw (w*(w*x)) = w*x + w*x)."
    ),
    "grad_not_reset_between_terms": (
        ".grad not reset between loss terms: your gradient for a term also contains the "
        "gradients of the terms before it. backward() accumulates into .grad; after copying "
        "one term's gradients aside, set p.grad = None (or zero it) before the next term -- "
        "or use autograd.grad, which leaves .grad alone."
    ),
    "retain_graph_forgotten": (
        "retain_graph forgotten: a second backward pass through the same graph needs the "
        "values the first pass freed. Pass retain_graph=True to every backward()/"
        "autograd.grad() call except the last one through the shared graph."
    ),
    "seed_wrong_shape": (
        "a backward seed of the wrong shape: the `gradient=` (or `grad_outputs=`) seed must "
        "have exactly the shape of the tensor you call backward on -- one weight per output "
        "element."
    ),
    "accumulated_across_steps": (
        "gradients accumulated across steps without zeroing: .grad keeps adding up across "
        "backward() calls, so each step used the sum of all previous gradients. Call "
        "optimizer.zero_grad() / model.zero_grad() (or set p.grad = None) before every "
        "backward pass."
    ),
    "accumulated_across_calls": (
        "gradients accumulated across calls without zeroing: calling your code a second time "
        "returned a multiple of the right gradient, because .grad still held the gradient of "
        "the first call. Zero the gradients (zero_grad()) before backward, or build fresh "
        "tensors on every call."
    ),
    "implicit_seed": (
        "backward() on a tensor with more than one element needs a seed: autograd computes a "
        "vector-Jacobian product v^T J and cannot guess v. Pass gradient=... with the shape "
        "of the output."
    ),
    "missing_requires_grad": (
        "a tensor that should be differentiated does not require grad: create the leaves with "
        "requires_grad=True (or call .requires_grad_()) before building the graph."
    ),
    "update_outside_no_grad": (
        "an in-place update of a parameter while autograd is recording: wrap the SGD update "
        "`p -= lr * p.grad` in `with no_grad():`."
    ),
    "transposed": (
        "your answer is the TRANSPOSE of the expected one: check which axis indexes the "
        "outputs and which the inputs (a Jacobian has one ROW per output element)."
    ),
}


@dataclass(frozen=True)
class Misconception:
    """A wrong answer a student is likely to give, computed by the reference.

    ``key`` names an entry of :data:`DIAGNOSES` (or any text to show as is);
    the answer is diagnosed with it when it matches ``value`` within tolerance.
    """

    key: str
    value: Any

    @property
    def text(self) -> str:
        return DIAGNOSES.get(self.key, self.key)


def as_array(value: Any, what: str = "the answer") -> np.ndarray:
    """A float64 NumPy copy of a chainrule tensor, PyTorch tensor, array, list or number."""
    if value is None:
        raise CheckFailure(f"{what}: got None. (A .grad that is None means backward never "
                           "reached this tensor -- or it is not a leaf and retain_grad() "
                           "was not called before backward.)")
    if isinstance(value, np.ndarray):
        return value.astype(np.float64)
    # PyTorch and chainrule tensors both know detach(); the rest goes through asarray.
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = value.detach()
            if hasattr(value, "cpu") and type(value).__module__.startswith("torch"):
                value = value.cpu()
            value = value.numpy()
        # chainrule may hold its arrays in another array namespace (CuPy, ...)
        if hasattr(value, "get"):
            value = value.get()
        return np.array(value, dtype=np.float64)
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CheckFailure(f"{what}: expected numbers (a tensor, an array or a list), "
                           f"got {type(value).__name__}: {value!r}") from exc


def _fmt(arr: np.ndarray) -> str:
    text = np.array2string(np.asarray(arr), precision=6, threshold=12, edgeitems=3,
                           max_line_width=88, suppress_small=False)
    return text.replace("\n", "\n            ")


def _matches(got: np.ndarray, value: Any, rtol: float, atol: float) -> bool:
    try:
        ref = as_array(value)
    except CheckFailure:
        return False
    return got.shape == ref.shape and bool(np.allclose(got, ref, rtol=rtol, atol=atol))


def _diagnosis(got: np.ndarray, misconceptions: Sequence[Misconception], rtol: float,
               atol: float) -> str:
    for m in misconceptions:
        if _matches(got, m.value, max(rtol, 1e-6), max(atol, 1e-9)):
            return f"\n  Diagnosis: {m.text}"
    return ""


def assert_matches(got: Any, expected: Any, *, what: str, rtol: float = 1e-6,
                   atol: float = 1e-8, misconceptions: Sequence[Misconception] = (),
                   hint: str | None = None) -> None:
    """Raise :class:`CheckFailure` unless ``got`` equals ``expected`` (shape and values).

    The tolerance is the caller's deliberate choice: about 1e-5 relative for a
    float32 answer compared with a float64 reference, 1e-9 for float64.
    """
    got_arr = as_array(got, what)
    exp_arr = as_array(expected, "the reference")
    if got_arr.shape != exp_arr.shape:
        if got_arr.size == exp_arr.size and got_arr.ndim <= 1 and exp_arr.ndim <= 1:
            got_arr = got_arr.reshape(exp_arr.shape)  # a list for a 1-D array is fine
        else:
            diag = _diagnosis(got_arr, misconceptions, rtol, atol)
            raise CheckFailure(
                f"{what}: wrong shape.\n  expected shape {tuple(exp_arr.shape)}, "
                f"got shape {tuple(got_arr.shape)}.\n  expected: {_fmt(exp_arr)}\n"
                f"  got:      {_fmt(got_arr)}{diag}" + (f"\n  Hint: {hint}" if hint else ""))
    if not np.all(np.isfinite(got_arr)):
        raise CheckFailure(f"{what}: your answer contains nan or inf.\n  got: {_fmt(got_arr)}")
    if np.allclose(got_arr, exp_arr, rtol=rtol, atol=atol):
        return
    diff = np.abs(got_arr - exp_arr)
    where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    n_bad = int(np.sum(~np.isclose(got_arr, exp_arr, rtol=rtol, atol=atol)))
    diag = _diagnosis(got_arr, misconceptions, rtol, atol)
    raise CheckFailure(
        f"{what}: wrong values ({n_bad} of {exp_arr.size} elements differ).\n"
        f"  expected: {_fmt(exp_arr)}\n  got:      {_fmt(got_arr)}\n"
        f"  largest difference {float(diff.max()):.3g} at index {tuple(int(i) for i in where)}"
        f" (tolerance: rtol={rtol:g}, atol={atol:g}){diag}" + (f"\n  Hint: {hint}" if hint else ""))


def _exception_diagnosis(exc: BaseException) -> str | None:
    text = str(exc)
    low = text.lower()
    if isinstance(exc, NotImplementedError):
        return ("not answered yet: replace `raise NotImplementedError()` with your code and "
                "run the cell.")
    if "backward through the graph a second time" in low or "second time" in low and "graph" in low:
        return DIAGNOSES["retain_graph_forgotten"]
    if "implicitly created only for scalar" in low:
        return DIAGNOSES["implicit_seed"]
    if "mismatch in shape" in low or ("shape" in low and ("grad" in low or "seed" in low)):
        return DIAGNOSES["seed_wrong_shape"]
    if "does not require grad" in low:
        return DIAGNOSES["missing_requires_grad"]
    if "leaf variable" in low and "in-place" in low:
        return DIAGNOSES["update_outside_no_grad"]
    return None


def call_student(fn: Callable, *args: Any, what: str, **kwargs: Any) -> Any:
    """Call a student's function; turn a known error into a diagnosis."""
    if not callable(fn):
        raise CheckFailure(f"{what}: expected a function, got {type(fn).__name__}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except CheckFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - we re-raise with a diagnosis
        diag = _exception_diagnosis(exc)
        msg = f"{what}: your code raised {type(exc).__name__}: {exc}"
        if diag:
            msg += f"\n  Diagnosis: {diag}"
        raise CheckFailure(msg) from exc


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailure(message)


def _torch():
    import torch
    return torch


def _chainrule():
    import chainrule
    return chainrule


def _is_chainrule_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "chainrule"


def _quiet_grad(t):
    """t.grad without PyTorch's warning about reading a non-leaf's .grad."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return t.grad


# =============================================================================
# Lesson 1: the chain rule on a small graph
# =============================================================================


def _torch_l1_graph(x, y, z):
    """a = x*y; b = a + z; c = a*b (the graph of the hand-derivation exercise)."""
    torch = _torch()
    xt, yt, zt = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (x, y, z))
    a = xt * yt
    b = a + zt
    c = a * b
    c.backward(torch.ones_like(c))
    return xt.grad.numpy(), yt.grad.numpy(), zt.grad.numpy()


def check_hand_gradients(fn: Callable, x, y, z) -> None:
    """Lesson 1, exercise 1: dc/dx, dc/dy, dc/dz of c = (x*y) * (x*y + z) by hand."""
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    got = call_student(fn, x.copy(), y.copy(), z.copy(), what="hand_gradients(x, y, z)")
    _require(isinstance(got, (tuple, list)) and len(got) == 3,
             "hand_gradients(x, y, z) must return three arrays (dc/dx, dc/dy, dc/dz), "
             f"got {type(got).__name__}")
    gx, gy, gz = _torch_l1_graph(x, y, z)
    a, b = x * y, x * y + z
    assert_matches(got[0], gx, what="dc/dx", rtol=1e-9,
                   misconceptions=[Misconception(
                       "you followed only one of the two paths from x to c: a feeds c directly "
                       "AND through b, and the chain rule adds the two paths: "
                       "dc/dx = (dc/da) * (da/dx) with dc/da = b + a.", y * b),
                       Misconception("you followed only one of the two paths from x to c "
                                     "(the one through b): dc/da = b + a, not a.", y * a)])
    assert_matches(got[1], gy, what="dc/dy", rtol=1e-9,
                   misconceptions=[Misconception("only one path counted: dc/da = b + a.", x * b),
                                   Misconception("only one path counted: dc/da = b + a.", x * a)])
    assert_matches(got[2], gz, what="dc/dz", rtol=1e-9,
                   misconceptions=[Misconception("z reaches c only through b: dc/dz = dc/db * "
                                                 "db/dz = a * 1.", b)])


def check_unbroadcast(fn: Callable, grad_shape: tuple, shape: tuple, seed: int = 0) -> None:
    """Lesson 1, exercise 2: reduce an output gradient to an operand's broadcast shape."""
    torch = _torch()
    rng = np.random.default_rng(seed)
    grad = rng.normal(size=grad_shape)
    operand = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    other = torch.zeros(grad_shape, dtype=torch.float64)
    (operand + other).backward(torch.tensor(grad))
    expected = operand.grad.numpy()
    got = call_student(fn, grad.copy(), tuple(shape), what=f"unbroadcast(grad of shape {grad_shape}, {shape})")
    n = grad.size / max(expected.size, 1)
    assert_matches(got, expected, what=f"unbroadcast(grad of shape {grad_shape}, shape={shape})",
                   rtol=1e-9, misconceptions=[
                       Misconception("you averaged over the broadcast axes; the backward rule of "
                                     "broadcasting SUMS them: every copy of a broadcast element "
                                     "contributed to the output.", expected / n)],
                   hint="sum over the leading axes the operand did not have, then (keepdims) "
                        "over every axis where the operand's size is 1 but the gradient's is not.")


def check_retained_graph(u, v, m, n=None) -> None:
    """Lesson 1, exercise 3: u.grad, v.grad and the retained m.grad of n = u*v + v**2."""
    torch = _torch()
    data = problems.lesson1_exercise_leaves()
    ut, vt = (torch.tensor(data[k], requires_grad=True) for k in ("u", "v"))
    mt = ut * vt
    mt.retain_grad()
    nt = mt + vt ** 2
    nt.backward(torch.ones_like(nt))
    _require(not (u is None and v is None and m is None),
             "not answered yet: replace `raise NotImplementedError()` with your code (it sets u, v "
             "and m) and run the cell.")
    for name, t in (("u", u), ("v", v), ("m", m)):
        _require(_is_chainrule_tensor(t), f"{name} must be a chainrule tensor, got {type(t).__name__}")
    _require(u.is_leaf and v.is_leaf, "u and v must be leaves created with requires_grad=True")
    _require(not m.is_leaf and m.grad_fn is not None,
             "m must be computed from u and v (m = u * v), so it has a grad_fn")
    assert_matches(u, data["u"], what="u (the data)", rtol=0, atol=1e-6)
    assert_matches(v, data["v"], what="v (the data)", rtol=0, atol=1e-6)
    _require(_quiet_grad(m) is not None,
             "m.grad is None: m is not a leaf, so autograd frees its gradient after use. "
             "Call m.retain_grad() BEFORE n.backward(...).")
    for name, t, ref in (("u.grad", u, ut), ("v.grad", v, vt), ("m.grad", m, mt)):
        g = _quiet_grad(ref).numpy()
        assert_matches(_quiet_grad(t), g, what=name, rtol=1e-6, atol=1e-6,
                       misconceptions=[Misconception("accumulated_across_calls", 2 * g)])


# =============================================================================
# Lesson 2: vector outputs and backward seeds
# =============================================================================


def _torch_jacobian(f_torch, x):
    torch = _torch()
    return torch.autograd.functional.jacobian(f_torch, torch.tensor(x, dtype=torch.float64)).numpy()


def check_jacobian_by_hand(fn: Callable, x) -> None:
    """Lesson 2, exercise 1: the Jacobian of f(x) = [x0*x1, x0**2 + 3*x1]."""
    torch = _torch()
    x = np.asarray(x, dtype=np.float64)
    got = call_student(fn, float(x[0]), float(x[1]), what=f"jacobian_by_hand({x[0]}, {x[1]})")
    expected = _torch_jacobian(lambda t: torch.stack([t[0] * t[1], t[0] ** 2 + 3 * t[1]]), x)
    assert_matches(got, expected, what=f"the Jacobian at x = {x.tolist()}", rtol=1e-9,
                   misconceptions=[Misconception("transposed", expected.T)])


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
    cr = _chainrule()
    f = JACOBIAN_PROBES[probe]
    x = np.asarray(x, dtype=np.float64)
    expected = _torch_jacobian(f, x)
    xc = cr.tensor(x.copy(), dtype=cr.float64, requires_grad=True)
    got = call_student(fn, f, xc, what=f"jacobian_rows(f, x) for {probe}")
    rows = expected.shape[0]
    assert_matches(got, expected, what=f"jacobian_rows for {probe}, x = {x.tolist()}", rtol=1e-9,
                   misconceptions=[Misconception("transposed", expected.T),
                                   Misconception("you returned a single vector-Jacobian product "
                                                 "with an all-ones seed (the column sums), not "
                                                 "one row per one-hot seed.",
                                                 np.tile(expected.sum(0), (rows, 1))),
                                   Misconception("the rows add up: each row holds the sum of the "
                                                 "rows before it. If you used backward(), "
                                                 "x.grad accumulates -- reset it between seeds, "
                                                 "or use autograd.grad.",
                                                 np.cumsum(expected, axis=0))])


def _torch_l1_vjp(weights):
    torch = _torch()
    d = problems.lesson1_leaves()
    x, y, z = (torch.tensor(d[k], requires_grad=True) for k in ("x", "y", "z"))
    b = (x + 2 * y) + z / 2
    b.backward(gradient=torch.tensor(np.asarray(weights, dtype=np.float64)))
    return x.grad.numpy(), y.grad.numpy(), z.grad.numpy()


def check_weighted_gradients(fn: Callable, weights) -> None:
    """Lesson 2, exercise 3: the gradient of sum_i weights[i] * b[i] with one backward call."""
    weights = np.asarray(weights, dtype=np.float64)
    got = call_student(fn, weights.copy(), what=f"weighted_gradients({weights.tolist()})")
    _require(isinstance(got, (tuple, list)) and len(got) == 3,
             f"weighted_gradients must return (x.grad, y.grad, z.grad), got {type(got).__name__}")
    refs = _torch_l1_vjp(weights)
    ones = _torch_l1_vjp(np.ones_like(weights))
    for name, g, r, o in zip(("x.grad", "y.grad", "z.grad"), got, refs, ones):
        assert_matches(g, r, what=f"{name} for weights {weights.tolist()}", rtol=1e-5, atol=1e-6,
                       misconceptions=[Misconception("you seeded with ones (the plain sum of b): "
                                                     "the seed IS the weight vector.", o),
                                       Misconception("accumulated_across_calls", 2 * r)])


# =============================================================================
# Lesson 3: one layer used several times
# =============================================================================


def _torch_two_uses(w, x, y):
    torch = _torch()
    wt = torch.tensor(float(w), dtype=torch.float64, requires_grad=True)
    loss = (wt * (wt * x) - y) ** 2
    loss.backward()
    return float(wt.grad)


def check_dL_dw_by_hand(fn: Callable, w: float, x: float, y: float) -> None:
    """Lesson 3, exercise 1: dL/dw for L = (w*(w*x) - y)**2, a hand formula."""
    got = call_student(fn, float(w), float(x), float(y), what=f"dL_dw_by_hand({w}, {x}, {y})")
    expected = _torch_two_uses(w, x, y)
    half = 2 * (w * w * x - y) * w * x  # dL/dw has two factors of 2: either one missing gives this
    assert_matches(got, expected, what=f"dL/dw at w={w}, x={x}, y={y}", rtol=1e-9,
                   misconceptions=[Misconception("one_factor_of_2_missing", half),
                                   Misconception("both_factors_of_2_missing", half / 2)])


def _torch_reused(W, x, y, n_uses, live=None):
    """dL/dW for L = sum((W^n x - y)^2); `live` lists the uses that carry gradient."""
    torch = _torch()
    Wt = torch.tensor(W, dtype=torch.float64, requires_grad=True)
    h = torch.tensor(x, dtype=torch.float64)
    for k in range(n_uses):
        Wk = Wt if live is None or k in live else Wt.detach()
        h = Wk @ h
    loss = ((h - torch.tensor(y, dtype=torch.float64)) ** 2).sum()
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
        mis = [Misconception("reused_layer_counted_once", _torch_reused(W, x, y, n_uses, live={n_uses - 1})),
               Misconception("reused_layer_counted_once", _torch_reused(W, x, y, n_uses, live={0}))]
    assert_matches(got, expected, what=f"dL/dW with n_uses={n_uses}", rtol=1e-8, atol=1e-10,
                   misconceptions=mis,
                   hint="walk the uses backwards: grad_W += outer(g, input of that use); "
                        "then g = W.T @ g.")


def _torch_unrolled(W, h0, target, steps, live=None):
    torch = _torch()
    layer = torch.nn.Linear(W.shape[1], W.shape[0], bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W))
    h = torch.tensor(h0)
    for k in range(steps):
        if live is None or k in live:
            h = torch.tanh(layer(h))
        else:
            h = torch.tanh(h @ layer.weight.detach().T)
    loss = torch.nn.MSELoss()(h, torch.tensor(target))
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
        mis = [Misconception("reused_layer_counted_once", last)]
        if call > 0:
            mis.append(Misconception("accumulated_across_calls", (call + 1) * expected))
        assert_matches(got, expected, what=f"weight.grad after {steps} uses"
                       + (f" (call {call + 1})" if calls > 1 else ""),
                       rtol=2e-4, atol=1e-6, misconceptions=mis)


# =============================================================================
# Lesson 4: per-sample gradients
# =============================================================================


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _torch_lesson4_model(weights):
    torch = _torch()
    model = torch.nn.Sequential(
        torch.nn.Linear(1, problems.LESSON4_HIDDEN, bias=False), torch.nn.Sigmoid(),
        torch.nn.Linear(problems.LESSON4_HIDDEN, 1, bias=False)).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.tensor(weights[name]))
    return model


def torch_per_sample(features, weights=None):
    """Reference per-sample gradients of the lesson-4 output: torch.func.vmap(grad)."""
    torch = _torch()
    from torch.func import functional_call, grad, vmap
    weights = problems.lesson4_weights() if weights is None else weights
    model = _torch_lesson4_model(weights)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def out(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze()

    g = vmap(grad(out), in_dims=(None, 0))(params, torch.tensor(features, dtype=torch.float64))
    return {k: v.numpy() for k, v in g.items()}


def _per_sample_misconceptions(expected: np.ndarray) -> list:
    n = expected.shape[0]
    s = expected.sum(0)
    return [Misconception("summed_over_batch", s), Misconception("summed_over_batch", s.reshape(-1, 1)),
            Misconception("summed_over_batch", s.reshape(1, -1)),
            Misconception("averaged_over_batch", s.reshape(-1, 1) / n),
            Misconception("averaged_over_batch", s.reshape(1, -1) / n),
            Misconception("summed_over_batch", np.broadcast_to(s.reshape(1, -1), expected.shape)),
            Misconception("averaged_over_batch", s / n), Misconception("averaged_over_batch", s.T / n),
            Misconception("averaged_over_batch", s.reshape(-1) / n),
            Misconception("rows_accumulated", np.cumsum(expected, axis=0)),
            Misconception("rows_divided_by_batch", expected / n),
            Misconception("transposed", expected.T)]


def check_per_sample_by_hand(fn: Callable, n: int = 6, seed: int = 4) -> None:
    """Lesson 4, exercise 1: per-sample d out/d W1 and d out/d W2, by a hand formula."""
    weights = problems.lesson4_weights(seed)
    x = problems.lesson4_features(n)
    got = call_student(fn, x.copy(), weights["0.weight"].copy(), weights["2.weight"].copy(),
                       what="per_sample_by_hand(x, W1, W2)")
    _require(isinstance(got, (tuple, list)) and len(got) == 2,
             "per_sample_by_hand must return two arrays (G1, G2), each of shape (N, 5)")
    ref = torch_per_sample(x, weights)
    G1, G2 = ref["0.weight"].reshape(n, -1), ref["2.weight"].reshape(n, -1)
    W1, W2 = weights["0.weight"], weights["2.weight"]
    s = _sigmoid(x @ W1.T)
    assert_matches(got[0], G1, what="G1 = d out / d W1, one row per sample", rtol=1e-9,
                   misconceptions=_per_sample_misconceptions(G1) + [
                       Misconception("you left out the inner factor x (d(W1 x)/dW1 = x).", W2 * s * (1 - s)),
                       Misconception("sigmoid'(v) = sigmoid(v) * (1 - sigmoid(v)), not sigmoid(v).", W2 * s * x)])
    assert_matches(got[1], G2, what="G2 = d out / d W2, one row per sample", rtol=1e-9,
                   misconceptions=_per_sample_misconceptions(G2))


def check_linear_per_sample(fn: Callable, n: int, n_in: int, n_out: int, seed: int = 0) -> None:
    """Lesson 4, exercise 2: the per-sample outer product of a linear layer."""
    torch = _torch()
    from torch.func import functional_call, grad, vmap
    rng = np.random.default_rng(seed)
    inputs, W = rng.normal(size=(n, n_in)), rng.normal(size=(n_out, n_in))
    signal = rng.normal(size=(n, n_out))
    layer = torch.nn.Linear(n_in, n_out, bias=False).double()

    def per_sample_loss(p, x, s):  # d/dW of s . (W x) is the layer's per-sample gradient
        return (functional_call(layer, p, (x,)) * s).sum()

    expected = vmap(grad(per_sample_loss), in_dims=(None, 0, 0))(
        {"weight": torch.tensor(W)}, torch.tensor(inputs), torch.tensor(signal))["weight"].numpy()
    got = call_student(fn, inputs.copy(), signal.copy(),
                       what=f"linear_per_sample(inputs {inputs.shape}, signal {signal.shape})")
    mis = [Misconception("summed_over_batch", expected.sum(0)),
           Misconception("averaged_over_batch", expected.sum(0) / n),
           Misconception("transposed", np.swapaxes(expected, 1, 2))]
    assert_matches(got, expected, what=f"per-sample weight gradients, shape (N, out, in) = "
                   f"{expected.shape}", rtol=1e-9, misconceptions=mis,
                   hint="row n is the outer product signal[n] (out) x inputs[n] (in).")


def check_per_sample_matrices(fn: Callable, features=None) -> None:
    """Lesson 4, exercise 3: ``fn(features)`` gives the (N, 5) per-sample matrices of the network."""
    features = problems.lesson4_features() if features is None else np.asarray(features)
    got = call_student(fn, features.copy(), what=f"per_sample_matrices(x of shape {features.shape})")
    _require(isinstance(got, (tuple, list)) and len(got) == 2,
             "per_sample_matrices must return two matrices (G1, G2), each of shape (N, 5)")
    check_per_sample_rows(*got, features)


def check_per_sample_rows(G1, G2, features) -> None:
    """G1 and G2, one row per sample of ``features``, against PyTorch's per-sample gradients."""
    ref = torch_per_sample(features)
    n = features.shape[0]
    E1, E2 = ref["0.weight"].reshape(n, -1), ref["2.weight"].reshape(n, -1)
    assert_matches(G1, E1, what=f"G1 (d out / d weight1 per sample, shape {E1.shape})",
                   rtol=1e-7, atol=1e-10, misconceptions=_per_sample_misconceptions(E1))
    assert_matches(G2, E2, what=f"G2 (d out / d weight2 per sample, shape {E2.shape})",
                   rtol=1e-7, atol=1e-10, misconceptions=_per_sample_misconceptions(E2))


def _torch_train(steps, lr, zero=True):
    torch = _torch()
    model = _torch_lesson4_model(problems.lesson4_weights())
    x = torch.tensor(problems.lesson4_features())
    y = torch.tensor(problems.lesson4_targets(problems.lesson4_features()))
    loss_fn = torch.nn.MSELoss()
    for _ in range(steps):
        if zero:
            model.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return {k: v.detach().numpy().copy() for k, v in model.named_parameters()}


def check_training(fn: Callable, steps: int = 5, lr: float = 0.5) -> None:
    """Lesson 4, exercise 4: a manual SGD loop with zeroed gradients."""
    got = call_student(fn, steps, lr, what=f"train(steps={steps}, lr={lr})")
    _require(isinstance(got, dict) and {"0.weight", "2.weight"} <= set(got),
             "train must return a dict {name: weight} with the keys '0.weight' and '2.weight' "
             "(as dict(model.named_parameters()) has)")
    expected = _torch_train(steps, lr)
    wrong = _torch_train(steps, lr, zero=False)
    for name in ("0.weight", "2.weight"):
        assert_matches(got[name], expected[name], what=f"{name} after {steps} SGD steps (lr={lr})",
                       rtol=1e-7, atol=1e-10,
                       misconceptions=[Misconception("accumulated_across_steps", wrong[name])])


# =============================================================================
# Lesson 5: per-loss-term gradients
# =============================================================================


def check_term_grads_by_hand(fn: Callable, x) -> None:
    """Lesson 5, exercise 1: dA/dx, dB/dx, dC/dx for A=(x**2).sum(), B=x.mean(), C=x.sum()**2."""
    torch = _torch()
    x = np.asarray(x, dtype=np.float64)
    got = call_student(fn, x.copy(), what=f"term_grads_by_hand(x of shape {x.shape})")
    _require(isinstance(got, (tuple, list)) and len(got) == 3,
             "term_grads_by_hand must return three arrays (dA/dx, dB/dx, dC/dx)")
    refs = []
    for term in (lambda t: (t ** 2).sum(), lambda t: t.mean(), lambda t: t.sum() ** 2):
        t = torch.tensor(x, requires_grad=True)
        refs.append(torch.autograd.grad(term(t), t)[0].numpy())
    names = ("dA/dx (A = (x**2).sum())", "dB/dx (B = x.mean())", "dC/dx (C = x.sum()**2)")
    extra = [[], [Misconception("the mean divides by the number of elements: d mean(x)/dx_i = "
                                "1/n, not 1.", np.ones_like(x))],
             [Misconception("dC/dx_i = 2 * sum(x) * d sum(x)/dx_i = 2 * sum(x); you used 2x.", 2 * x)]]
    cumulative = np.cumsum(np.stack(refs), axis=0)
    for i, (g, r, name) in enumerate(zip(got, refs, names)):
        mis = list(extra[i])
        if i:
            mis.append(Misconception("grad_not_reset_between_terms", cumulative[i]))
        assert_matches(g, r, what=name, rtol=1e-9, misconceptions=mis)


def _term_problem(seed):
    """Three loss terms of a small chainrule model and their PyTorch references."""
    torch = _torch()
    cr = _chainrule()
    rng = np.random.default_rng(seed)
    W, b, X = rng.normal(size=(3, 4)), rng.normal(size=(3,)), rng.normal(size=(6, 4))

    def terms(lib, W_, b_):
        h = (lib.tensor(X, dtype=lib.float64) @ W_.T + b_).tanh()
        # the last term does not use the bias: its gradient there is zero
        return [(h ** 2).mean(), h[:, 0].sum(), (h - 1).abs().sum() * 0.5, (W_ ** 2).sum() * 0.1]

    Wt, bt = (torch.tensor(v, requires_grad=True) for v in (W, b))
    ref = [tuple(np.zeros(p.shape) if g is None else g.numpy() for g, p in
                 zip(torch.autograd.grad(L, (Wt, bt), retain_graph=True, allow_unused=True), (Wt, bt)))
           for L in terms(torch, Wt, bt)]
    Wc, bc = (cr.tensor(v.copy(), dtype=cr.float64, requires_grad=True) for v in (W, b))
    return terms(cr, Wc, bc), [Wc, bc], ref


def check_per_term_grads(fn: Callable, seed: int = 0) -> None:
    """Lesson 5, exercise 2: the per-term gradient loop on a shared graph."""
    losses, params, ref = _term_problem(seed)
    got = call_student(fn, losses, params, what="per_term_grads(losses, params)")
    _require(isinstance(got, (list, tuple)) and len(got) == len(ref),
             f"per_term_grads must return one entry per loss term ({len(ref)}), got "
             f"{type(got).__name__} of length {len(got) if hasattr(got, '__len__') else '?'}")
    for i, (g_term, r_term) in enumerate(zip(got, ref)):
        _require(isinstance(g_term, (list, tuple)) and len(g_term) == len(params),
                 f"term {i}: expected a tuple with one gradient per parameter ({len(params)})")
        for j, (g, r) in enumerate(zip(g_term, r_term)):
            cum = sum(ref[k][j] for k in range(i + 1))
            mis = [Misconception("grad_not_reset_between_terms", cum)] if i else []
            if g is None:
                raise CheckFailure(f"gradient of loss term {i} w.r.t. parameter {j}: got None. "
                                   "That term does not use the parameter (allow_unused=True "
                                   "returns None for it); return zeros of the parameter's shape.")
            assert_matches(g, r, what=f"gradient of loss term {i} w.r.t. parameter {j}",
                           rtol=1e-9, atol=1e-12, misconceptions=mis)


def check_grad_untouched(fn: Callable, seed: int = 1) -> None:
    """Lesson 5, exercise 2 (hidden): the loop leaves .grad alone, as autograd.grad does."""
    losses, params, _ = _term_problem(seed)
    call_student(fn, losses, params, what="per_term_grads(losses, params)")
    for j, p in enumerate(params):
        _require(p.grad is None,
                 f"parameter {j} has a .grad after per_term_grads: the loop should leave .grad "
                 "untouched (autograd.grad returns the gradients instead of accumulating them; "
                 "with backward() you would have to clean up after yourself).")


def check_graph_freed(fn: Callable, seed: int = 2) -> None:
    """Lesson 5, exercise 2 (hidden): retain_graph only as long as needed."""
    cr = _chainrule()
    losses, params, _ = _term_problem(seed)
    call_student(fn, losses, params, what="per_term_grads(losses, params)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cr.autograd.grad(losses[-1], params, allow_unused=True)
    except RuntimeError:  # "Trying to backward through the graph a second time": freed, as it should be
        return
    raise CheckFailure("the graph is still alive after the last term: pass retain_graph=True "
                       "to every term except the LAST, so the last pass frees the saved values.")


# ----------------------------------------------------------------------------- PINN


def torch_pinn_terms(weights=None, points=None):
    """The three loss terms of the lesson-5 physics-informed network, in PyTorch float64."""
    torch = _torch()
    weights = problems.lesson5_weights() if weights is None else weights
    points = problems.lesson5_points() if points is None else points
    h = problems.LESSON5_HIDDEN
    net = torch.nn.Sequential(torch.nn.Linear(1, h), torch.nn.Tanh(), torch.nn.Linear(h, 1)).double()
    f64 = torch.float64
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.tensor(np.asarray(weights[name], dtype=float)))
    # One forward pass over all the points, as in the lesson: the terms share the network's graph.
    n_i, n_d = len(points["interior"]), len(points["dirichlet"])
    rows_i, rows_d, rows_n = slice(0, n_i), slice(n_i, n_i + n_d), slice(n_i + n_d, None)
    x = torch.tensor(np.concatenate([points["interior"], points["dirichlet"], points["neumann"]]),
                     dtype=f64, requires_grad=True)
    u = net(x)
    du = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
    d2u = torch.autograd.grad(du[rows_i].sum(), x, create_graph=True)[0]
    f = torch.tensor(problems.lesson5_source(points["interior"]), dtype=f64)
    interior = ((-d2u[rows_i] - f) ** 2).mean()
    dirichlet = (u[rows_d] ** 2).mean()
    neumann = ((du[rows_n] - problems.LESSON5_NEUMANN_VALUE) ** 2).mean()
    return net, [interior, dirichlet, neumann]


def torch_balance_step(alpha: float, beta: float, eta: float = problems.LESSON5_ETA,
                       mix: bool = False) -> dict:
    """Reference loss-balancing step (learning-rate annealing, Wang, Teng & Perdikaris 2021)."""
    torch = _torch()
    net, terms = torch_pinn_terms()
    params = list(net.parameters())
    grads = []
    for i, L in enumerate(terms):
        gs = torch.autograd.grad(L, params, retain_graph=i < len(terms) - 1, allow_unused=True)
        g = torch.cat([torch.zeros_like(p).reshape(-1) if t is None else t.reshape(-1)
                       for t, p in zip(gs, params)])
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
    _require(isinstance(got, dict) and keys <= set(got),
             f"balance_step must return a dict with the keys {sorted(keys)}")
    ref = torch_balance_step(alpha, beta)
    mixed = torch_balance_step(alpha, beta, mix=True)
    weighted = dict(ref)
    weighted["mean_abs"] = [ref["mean_abs"][0], alpha * ref["mean_abs"][1], beta * ref["mean_abs"][2]]
    tol = dict(rtol=1e-6, atol=1e-12)
    assert_matches(got["losses"], ref["losses"], what="the three loss values (interior, "
                   "Dirichlet, Neumann)", **tol)
    assert_matches(got["mean_abs"], ref["mean_abs"], what="mean |gradient| of each term",
                   misconceptions=[Misconception("grad_not_reset_between_terms", mixed["mean_abs"]),
                                   Misconception("you differentiated the WEIGHTED terms (alpha*L2, "
                                                 "beta*L3); the statistic is taken on each raw "
                                                 "term.", weighted["mean_abs"])], **tol)
    assert_matches(got["max_abs_interior"], ref["max_abs_interior"],
                   what="max |gradient| of the interior term", **tol)
    assert_matches(got["alpha"], ref["alpha"], what="the new alpha",
                   misconceptions=[Misconception("grad_not_reset_between_terms", mixed["alpha"])],
                   hint="alpha_hat = max|grad L1| / mean|grad L2|; alpha <- (1 - eta) alpha + eta alpha_hat",
                   **tol)
    assert_matches(got["beta"], ref["beta"], what="the new beta",
                   misconceptions=[Misconception("grad_not_reset_between_terms", mixed["beta"])],
                   **tol)
