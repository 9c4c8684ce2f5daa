"""The checking machinery every lesson's checks share.

A check compares a student's answer with a reference it computes itself, in PyTorch
(float64 where the comparison needs it), from the lesson data in
:mod:`coursework.problems` -- never from names in the notebook, so redefining a
variable cannot make a wrong answer pass.

When an answer is wrong a check raises :class:`CheckFailure` (an ``AssertionError``)
whose message says what was checked, the expected and the received values, where they
differ most, and -- when the wrong answer matches a known misconception -- a
diagnosis.  IPython shows a CheckFailure as its message alone, without the traceback
through this package (``_render_traceback_``).

Every message is written in English and shown in the notebook's language
(:mod:`coursework.i18n`).  Checks write nothing to stdout or stderr and return
``None``: nbgrader scores a test cell 0 if it writes to stderr, and reads a number a
cell returns as partial credit.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..i18n import LANGUAGES, N_, _, translate

__all__ = ["CheckFailure", "Misconception", "Diagnosis", "DIAGNOSES", "DIAGNOSIS_LABELS", "diagnosis",
           "diagnosis_in", "as_array", "assert_matches", "call_student"]


class CheckFailure(AssertionError):
    """A wrong answer, with a message meant for the student."""

    def __init__(self, message: str, diagnosis: str | None = None):
        super().__init__(message)
        self.diagnosis = diagnosis

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing the traceback: the student sees the
        # message, in red, and not the 25 lines of this package that produced it.  Lines
        # are wrapped: nbgrader's Validate dialog shows them unwrapped, cut at its edge.
        title = _("Check failed")
        lines = wrap_lines(f"{title}: {self}", RENDER_WIDTH)
        lines[0] = lines[0].replace(title, f"\x1b[0;31m{title}\x1b[0m", 1)
        return lines


#: Display columns of a rendered message (a CJK character takes two).
RENDER_WIDTH = 78
_CJK = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef"
_UNITS = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+\s*|\s+")
_NO_BREAK_BEFORE = set("，。；：、）！？》」")


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def wrap_lines(message: str, width: int) -> list[str]:
    """``message`` in lines of at most ``width`` display columns: English breaks at spaces, Chinese
    between characters (never before its closing punctuation); continuation lines are indented."""
    out = []
    for line in message.splitlines() or [""]:
        body = line.lstrip(" ")
        indent, more = line[:len(line) - len(body)], line[:len(line) - len(body)] + "  "
        current, prefix = "", indent
        for unit in _UNITS.findall(body):
            fits = _columns(prefix + current + unit.rstrip()) <= width
            if current.strip() and not fits and unit[0] not in _NO_BREAK_BEFORE:
                out.append(prefix + current.rstrip())
                current, prefix = "", more
                unit = unit.lstrip()
            current += unit
        out.append(prefix + current.rstrip())
    return out


@dataclass(frozen=True)
class Diagnosis:
    """A known misconception: a readable label for the class report, the text for the student."""

    key: str
    label: str
    text: str


#: key -> Diagnosis, filled by :func:`diagnosis` in this module and in each lesson's module.
_REGISTRY: dict[str, Diagnosis] = {}
#: key -> the English text a student reads (what the grading reports match against).
DIAGNOSES: dict[str, str] = {}
#: key -> the readable label the class report counts.
DIAGNOSIS_LABELS: dict[str, str] = {}


def diagnosis(key: str, label: str, text: str) -> str:
    """Register a known misconception; return its key (what a :class:`Misconception` names)."""
    if key in _REGISTRY and _REGISTRY[key].text != text:
        raise ValueError(f"two diagnoses named {key!r}")
    _REGISTRY[key] = Diagnosis(key, label, text)
    DIAGNOSES[key] = text
    DIAGNOSIS_LABELS[key] = label
    return key


def diagnosis_text(key: str) -> str:
    """The registered diagnosis ``key`` in the current language; any other text as it is."""
    known = _REGISTRY.get(key)
    return _(known.text) if known else key


def diagnosis_in(message: str) -> str | None:
    """The key of the diagnosis a failure message shows, in whichever language it is written."""
    for lang in LANGUAGES:
        for key, d in _REGISTRY.items():
            head = translate(d.text, lang)[:48]
            if head and head in message:
                return key
    return None


NOT_ANSWERED = diagnosis("not_answered", N_("not answered"), N_(
    "not answered yet: write your answer in the exercise's cell (in place of `raise "
    "NotImplementedError()`, if it is still there), run that cell, then this test."))
SUMMED_OVER_BATCH = diagnosis("summed_over_batch", N_("gradient summed over the batch"), N_(
    "gradient summed over the batch instead of per sample: your answer equals the SUM of the "
    "per-sample gradients. One backward pass over a batch adds every sample's contribution into "
    "the single .grad of each parameter; to keep them apart, compute one gradient per sample (a "
    "loop of batch-size-1 passes, or the per-sample outer product)."))
AVERAGED_OVER_BATCH = diagnosis("averaged_over_batch", N_("gradient averaged over the batch"), N_(
    "gradient averaged over the batch instead of per sample: your answer equals the MEAN of the "
    "per-sample gradients (a reduction='mean' loss divides by the batch size). Keep one row per "
    "sample."))
ROWS_ACCUMULATED = diagnosis("rows_accumulated", N_(".grad not reset between samples"), N_(
    "each row holds the sum of the rows before it: in a loop of batch-size-1 backward passes, "
    ".grad was not reset between samples, so it kept adding up. Call model.zero_grad() (or set "
    "p.grad = None) before each sample's backward()."))
ROWS_DIVIDED_BY_BATCH = diagnosis("rows_divided_by_batch", N_("per-sample rows divided by the batch size"), N_(
    "every row is divided by the batch size: you differentiated the MEAN over the batch (a "
    "reduction='mean' loss), which scales each sample's gradient by 1/N. A per-sample gradient is "
    "the gradient of that sample's own output, unscaled."))
REUSED_LAYER_COUNTED_ONCE = diagnosis("reused_layer_counted_once", N_("reused layer counted once"), N_(
    "a reused layer counted once: your answer is the contribution of a single use of the layer. "
    "When one parameter is used several times in a forward pass, the graph holds one node per use "
    "and backward ADDS their contributions into the one .grad: d/dw (w*(w*x)) = w*x + w*x, not "
    "w*x."))
ONE_FACTOR_OF_2_MISSING = diagnosis("one_factor_of_2_missing", N_("one factor of 2 missing (one use, or the square)"), N_(
    "half the right value, which two different slips give: (a) a reused layer counted once -- w is "
    "used twice, and backward ADDS both uses: d/dw (w*(w*x)) = w*x + w*x, not w*x; or (b) the "
    "factor 2 of the square is missing -- the chain rule starts at the square: d/du u^2 = 2u."))
BOTH_FACTORS_OF_2_MISSING = diagnosis("both_factors_of_2_missing", N_("both factors of 2 missing"), N_(
    "a quarter of the right value: both factors of 2 are missing, the 2u of the square "
    "(d/du u^2 = 2u) and the second use of w (d/dw (w*(w*x)) = w*x + w*x)."))
GRAD_NOT_RESET_BETWEEN_TERMS = diagnosis("grad_not_reset_between_terms", N_(".grad not reset between loss terms"), N_(
    ".grad not reset between loss terms: your gradient for a term also contains the gradients of "
    "the terms before it. backward() accumulates into .grad; after copying one term's gradients "
    "aside, set p.grad = None (or zero it) before the next term -- or use autograd.grad, which "
    "leaves .grad alone."))
RETAIN_GRAPH_FORGOTTEN = diagnosis("retain_graph_forgotten", N_("retain_graph forgotten"), N_(
    "retain_graph forgotten: a second backward pass through the same graph needs the values the "
    "first pass freed. Pass retain_graph=True to every backward()/autograd.grad() call except the "
    "last one through the shared graph."))
SEED_WRONG_SHAPE = diagnosis("seed_wrong_shape", N_("backward seed of the wrong shape"), N_(
    "a backward seed of the wrong shape: the `gradient=` (or `grad_outputs=`) seed must have "
    "exactly the shape of the tensor you call backward on -- one weight per output element."))
ACCUMULATED_ACROSS_STEPS = diagnosis("accumulated_across_steps", N_("gradients accumulated across steps"), N_(
    "gradients accumulated across steps without zeroing: .grad keeps adding up across backward() "
    "calls, so each step used the sum of all previous gradients. Call optimizer.zero_grad() / "
    "model.zero_grad() (or set p.grad = None) before every backward pass."))
ACCUMULATED_ACROSS_CALLS = diagnosis("accumulated_across_calls", N_("gradients accumulated across calls"), N_(
    "gradients accumulated across calls without zeroing: calling your code a second time returned "
    "a multiple of the right gradient, because .grad still held the gradient of the first call. "
    "Zero the gradients (zero_grad()) before backward, or build fresh tensors on every call."))
IMPLICIT_SEED = diagnosis("implicit_seed", N_("backward() on a non-scalar without a seed"), N_(
    "backward() on a tensor with more than one element needs a seed: autograd computes a "
    "vector-Jacobian product v^T J and cannot guess v. Pass gradient=... with the shape of the "
    "output."))
MISSING_REQUIRES_GRAD = diagnosis("missing_requires_grad", N_("requires_grad missing"), N_(
    "a tensor that should be differentiated does not require grad: create the leaves with "
    "requires_grad=True (or call .requires_grad_()) before building the graph."))
UPDATE_OUTSIDE_NO_GRAD = diagnosis("update_outside_no_grad", N_("parameter update outside no_grad"), N_(
    "an in-place update of a parameter while autograd is recording: wrap the SGD update "
    "`p -= lr * p.grad` in `with no_grad():`."))
TRANSPOSED = diagnosis("transposed", N_("transposed answer"), N_(
    "your answer is the TRANSPOSE of the expected one: check which axis indexes the outputs and "
    "which the inputs (a Jacobian has one ROW per output element)."))
TORCH_TENSOR_GIVEN = diagnosis("torch_tensor_given", N_("PyTorch tensor where a chainrule one was asked"), N_(
    "this exercise is about chainrule: you gave PyTorch tensors. Build them with chainrule.tensor(...) "
    "(the same arguments as torch.tensor) and compute with chainrule."))


@dataclass(frozen=True)
class Misconception:
    """A wrong answer a student is likely to give, computed by the reference.

    ``key`` names a registered :func:`diagnosis` (or is a text to show as it is); the answer is
    diagnosed with it when it matches ``value`` within tolerance.
    """

    key: str
    value: Any

    @property
    def text(self) -> str:
        return diagnosis_text(self.key)


def failure(message: str, key: str | None = None) -> CheckFailure:
    """A CheckFailure whose message ends with the diagnosis ``key``, if any."""
    if key:
        message += "\n  " + _("Diagnosis: {text}").format(text=diagnosis_text(key))
    return CheckFailure(message, key)


def as_array(value: Any, what: str | None = None) -> np.ndarray:
    """A float64 NumPy copy of a chainrule tensor, PyTorch tensor, array, list or number."""
    what = what or _("the answer")
    if value is None:
        raise CheckFailure(_("{what}: got None. (A .grad that is None means backward never reached this "
                             "tensor -- or it is not a leaf and retain_grad() was not called before "
                             "backward.)").format(what=what))
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
        raise CheckFailure(_("{what}: expected numbers (a tensor, an array or a list), got {kind}: "
                             "{value}").format(what=what, kind=type(value).__name__, value=repr(value))
                           ) from exc


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


def _diagnosed(got: np.ndarray, misconceptions: Sequence[Misconception], rtol: float,
               atol: float) -> str | None:
    for m in misconceptions:
        if _matches(got, m.value, max(rtol, 1e-6), max(atol, 1e-9)):
            return m.key
    return None


def assert_matches(got: Any, expected: Any, *, what: str, rtol: float = 1e-6,
                   atol: float = 1e-8, misconceptions: Sequence[Misconception] = (),
                   hint: str | None = None) -> None:
    """Raise :class:`CheckFailure` unless ``got`` equals ``expected`` (shape and values).

    The tolerance is the caller's deliberate choice: about 1e-5 relative for a float32
    answer compared with a float64 reference, 1e-9 for float64.  ``hint`` is shown as
    given: translate it with ``_()`` where it is written.
    """
    got_arr = as_array(got, what)
    exp_arr = as_array(expected, _("the reference"))
    hint_line = "\n  " + _("Hint: {hint}").format(hint=hint) if hint else ""
    if got_arr.shape != exp_arr.shape:
        if got_arr.size == exp_arr.size and got_arr.ndim <= 1 and exp_arr.ndim <= 1:
            got_arr = got_arr.reshape(exp_arr.shape)  # a list for a 1-D array is fine
        else:
            key = _diagnosed(got_arr, misconceptions, rtol, atol)
            raise failure(_("{what}: wrong shape.\n  expected shape {expected_shape}, got shape {got_shape}.\n"
                            "  expected: {expected}\n  got:      {got}").format(
                what=what, expected_shape=tuple(exp_arr.shape), got_shape=tuple(got_arr.shape),
                expected=_fmt(exp_arr), got=_fmt(got_arr)) + hint_line, key)
    if not np.all(np.isfinite(got_arr)):
        raise CheckFailure(_("{what}: your answer contains nan or inf.\n  got: {got}").format(
            what=what, got=_fmt(got_arr)))
    if np.allclose(got_arr, exp_arr, rtol=rtol, atol=atol):
        return
    diff = np.abs(got_arr - exp_arr)
    where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    n_bad = int(np.sum(~np.isclose(got_arr, exp_arr, rtol=rtol, atol=atol)))
    key = _diagnosed(got_arr, misconceptions, rtol, atol)
    raise failure(_("{what}: wrong values ({bad} of {size} elements differ).\n  expected: {expected}\n"
                    "  got:      {got}\n  largest difference {diff} at index {index} (tolerance: "
                    "rtol={rtol}, atol={atol})").format(
        what=what, bad=n_bad, size=exp_arr.size, expected=_fmt(exp_arr), got=_fmt(got_arr),
        diff=f"{float(diff.max()):.3g}", index=tuple(int(i) for i in where), rtol=f"{rtol:g}",
        atol=f"{atol:g}") + hint_line, key)


def _exception_diagnosis(exc: BaseException) -> str | None:
    low = str(exc).lower()
    if isinstance(exc, NotImplementedError):
        return NOT_ANSWERED
    if "backward through the graph a second time" in low or "second time" in low and "graph" in low:
        return RETAIN_GRAPH_FORGOTTEN
    if "implicitly created only for scalar" in low:
        return IMPLICIT_SEED
    if "mismatch in shape" in low or ("shape" in low and ("grad" in low or "seed" in low)):
        return SEED_WRONG_SHAPE
    if "does not require grad" in low:
        return MISSING_REQUIRES_GRAD
    if "leaf variable" in low and "in-place" in low:
        return UPDATE_OUTSIDE_NO_GRAD
    return None


def call_student(fn: Callable, *args: Any, what: str, **kwargs: Any) -> Any:
    """Call a student's function; turn a known error into a diagnosis."""
    if not callable(fn):
        raise CheckFailure(_("{what}: expected a function, got {kind}.").format(
            what=what, kind=type(fn).__name__))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except CheckFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - we re-raise with a diagnosis
        raise failure(_("{what}: your code raised {kind}: {error}").format(
            what=what, kind=type(exc).__name__, error=exc), _exception_diagnosis(exc)) from exc


def require(condition: bool, message: str, key: str | None = None) -> None:
    if not condition:
        raise failure(message, key)


def require_results(got: Any, count: int, what: str, items: str) -> None:
    """``got`` is a tuple or list of ``count`` results; else say what came back and what was asked."""
    if isinstance(got, (tuple, list)) and len(got) == count:
        return
    if isinstance(got, (tuple, list)):
        raise CheckFailure(_("{what} must return {count} results ({items}); it returned {n}.").format(
            what=what, count=count, items=items, n=len(got)))
    raise CheckFailure(_("{what} must return {count} results ({items}); it returned one {kind}.").format(
        what=what, count=count, items=items, kind=_kind_name(got)))


def _kind_name(value: Any) -> str:
    module = type(value).__module__.split(".")[0]
    if module == "torch" and type(value).__name__ == "Tensor":
        return _("PyTorch tensor (torch.Tensor)")
    if module == "chainrule":
        return _("chainrule tensor")
    return type(value).__name__


def torch():
    import torch as _torch
    return _torch


def chainrule():
    import chainrule as _chainrule
    return _chainrule


def is_chainrule_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "chainrule"


def require_chainrule_tensor(value: Any, name: str) -> None:
    """``name`` is a chainrule tensor; a PyTorch tensor is the known slip of doing it in torch."""
    if is_chainrule_tensor(value):
        return
    if type(value).__module__.split(".")[0] == "torch":
        raise failure(_("{name} is a PyTorch tensor (torch.Tensor); this exercise asks for a chainrule "
                        "tensor.").format(name=name), TORCH_TENSOR_GIVEN)
    raise CheckFailure(_("{name} must be a chainrule tensor, got {kind}.").format(
        name=name, kind=_kind_name(value)))


def quiet_grad(t):
    """t.grad without PyTorch's warning about reading a non-leaf's .grad."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return t.grad

