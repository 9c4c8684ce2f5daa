"""Behaviours students hit where chainrule must do what PyTorch does.

Every test runs the same case in torch (2.13) and in chainrule: a ``case(lib)`` written once
against both libraries, then compared (values in float64 where they matter, and errors by
torch's own message text).
"""

import re

import numpy as np
import pytest
import torch

import chainrule
from helpers import to_numpy

INPLACE = "one of the variables needed for gradient computation has been modified by an inplace operation"
NO_GRAD_FN = "element 0 of tensors does not require grad and does not have a grad_fn"
SECOND_TIME = "Trying to backward through the graph a second time"


def raises_like_torch(case, exc, message):
    """``case(lib)`` raises ``exc`` whose message starts like ``message``, in torch then in chainrule."""
    for lib in (torch, chainrule):
        with pytest.raises(exc, match=re.escape(message)):
            case(lib)


def both(case):
    """``case(lib)`` for torch and for chainrule: (torch's result, chainrule's result)."""
    return case(torch), case(chainrule)


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.").removeprefix("chainrule.")


def assert_like(cr, th, what="value"):
    """Same shape, dtype and values (nan equal to nan, inf to inf) as torch's tensor."""
    assert isinstance(cr, chainrule.Tensor), f"{what}: got {type(cr).__name__}, not a chainrule.Tensor"
    assert dtype_name(cr.dtype) == dtype_name(th.dtype), f"{what}: dtype {cr.dtype} != torch's {th.dtype}"
    torch.testing.assert_close(torch.from_numpy(np.array(to_numpy(cr))), th.detach(), equal_nan=True,
                               check_dtype=False, msg=lambda m: f"{what}: {m}")


def assert_all_like_torch(case, names=("value", "grad")):
    """``case(lib)`` returns tensors; each of chainrule's is like torch's (``names`` say which)."""
    for th, cr, what in zip(*both(case), names):
        assert_like(cr, th, what)


# ---------------------------------------------------------------- A. views share the version counter

# Each makes a view of a (2, 3) tensor, as in torch.
VIEWS = {
    "detach": lambda w: w.detach(),
    "view": lambda w: w.view(6),
    "reshape": lambda w: w.reshape(6),
    "transpose": lambda w: w.transpose(0, 1),
    "T": lambda w: w.T,
    "mT": lambda w: w.mT,
    "permute": lambda w: w.permute(1, 0),
    "unsqueeze": lambda w: w.unsqueeze(0),
    "squeeze": lambda w: w.squeeze(),
    "slice": lambda w: w[0:1],
    "index": lambda w: w[0],
    "column": lambda w: w[:, 1],
}


def test_inplace_through_detach_of_saved_output_is_detected():
    """y = x.exp(); y.detach() += 1 changes what ExpBackward saved: backward must refuse."""

    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x.exp()
        d = y.detach()
        d += 1
        y.sum().backward()

    raises_like_torch(case, RuntimeError, INPLACE)


def test_inplace_through_view_of_saved_leaf_is_detected():
    """w.view(2).zero_() under no_grad changes the w that x * w saved: backward must refuse."""

    def case(lib):
        x = lib.tensor([[1.0, 2.0]], requires_grad=True)
        w = lib.tensor([[3.0, 4.0]], requires_grad=True)
        y = x * w
        with lib.no_grad():
            w.view(2).zero_()
        y.sum().backward()

    raises_like_torch(case, RuntimeError, INPLACE)


def test_inplace_through_slice_of_saved_output_is_detected():
    """y[0:1].add_(1) under no_grad changes the exp output saved for backward: backward must refuse."""

    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x.exp()
        with lib.no_grad():
            y[0:1].add_(1)
        y.sum().backward()

    raises_like_torch(case, RuntimeError, INPLACE)


@pytest.mark.parametrize("make_view", VIEWS.values(), ids=VIEWS.keys())
def test_inplace_through_any_view_of_saved_tensor_is_detected(make_view):
    """An in-place update through any view (detach, view, reshape, T, permute, slicing...) is seen at backward."""

    def case(lib):
        x = lib.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
        w = lib.tensor(np.arange(7.0, 13.0).reshape(2, 3), requires_grad=True)
        y = x * w
        with lib.no_grad():
            make_view(w).mul_(2)
        y.sum().backward()

    raises_like_torch(case, RuntimeError, INPLACE)


def test_inplace_on_detached_clone_is_fine():
    """y.detach().clone() is a copy: changing it leaves backward (and the gradient) alone."""

    def case(lib):
        x = lib.tensor(np.array([1.0, 2.0]), requires_grad=True)
        y = x.exp()
        d = y.detach().clone()
        d += 1
        y.sum().backward()
        return x.grad

    th, cr = both(case)
    assert_like(cr, th, "grad")


def test_inplace_through_data_is_not_tracked():
    """Unlike detach(), .data has its own version counter in torch: backward runs (on the changed values)."""

    def case(lib):
        x = lib.tensor(np.array([1.0, 2.0]), requires_grad=True)
        y = x.exp()
        d = y.data
        d += 1
        y.sum().backward()
        return x.grad

    th, cr = both(case)
    assert_like(cr, th, "grad")


@pytest.mark.parametrize("make_view", VIEWS.values(), ids=VIEWS.keys())
def test_inplace_on_view_is_visible_in_base(make_view):
    """Changing a view changes the tensor it views (they share memory)."""

    def case(lib):
        base = lib.tensor(np.arange(6.0).reshape(2, 3))
        make_view(base).add_(10)
        return base

    th, cr = both(case)
    assert_like(cr, th, "base after an in-place op on its view")


# ---------------------------------------------------------------- B. integer casts break the graph

@pytest.mark.parametrize("cast", ["long", "to_int64"])
def test_integer_cast_does_not_require_grad(cast):
    """x.long() (or x.to(int64)) holds integers: it cannot carry a gradient, so it leaves the graph."""

    def case(lib):
        x = lib.tensor(np.array([1.5, 2.7, -3.2]), requires_grad=True)
        i = x.long() if cast == "long" else x.to(lib.int64)
        return i, i.requires_grad, i.grad_fn

    (th, th_rg, th_fn), (cr, cr_rg, cr_fn) = both(case)
    assert_like(cr, th)
    assert (cr_rg, cr_fn) == (th_rg, th_fn) == (False, None)


def test_integer_cast_times_x_differentiates_through_x_only():
    """(x.long() * x).sum() has gradient x.long(): the cast factor is a constant."""

    def case(lib):
        x = lib.tensor(np.array([1.5, 2.7, -3.2]), requires_grad=True)
        (x.long() * x).sum().backward()
        return x.grad

    th, cr = both(case)
    assert_like(cr, th, "grad")


def test_backward_through_integer_cast_only_raises():
    """(x.long() * 2).sum().backward(): nothing left requires grad."""

    def case(lib):
        x = lib.tensor(np.array([1.5, 2.7, -3.2]), requires_grad=True)
        (x.long() * 2).sum().backward()

    raises_like_torch(case, RuntimeError, NO_GRAD_FN)


# ---------------------------------------------------------------- C. gradcheck

def wrong_second_output(x):
    """Output 1 is x * x, but autograd sees x * const: its analytic gradient is x, not 2x."""
    return x * 2, x * x.detach()


def test_gradcheck_checks_every_output_of_a_tuple():
    """A wrong gradient in the second output of a tuple must be reported, not only the first's."""

    def case(lib):
        x = lib.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
        lib.autograd.gradcheck(wrong_second_output, (x,))

    raises_like_torch(case, RuntimeError, "Jacobian mismatch for output 1 with respect to input 0")


def test_gradcheck_tuple_output_returns_false_without_raising():
    """raise_exception=False: a wrong second output makes gradcheck return False."""

    def case(lib):
        x = lib.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
        return lib.autograd.gradcheck(wrong_second_output, (x,), raise_exception=False)

    th, cr = both(case)
    assert th is False and cr is False


def test_gradcheck_needs_an_input_requiring_grad():
    """gradcheck with no input requiring grad checks nothing: it must say so."""

    def case(lib):
        x = lib.tensor(np.array([1.0, 2.0, 3.0]))
        lib.autograd.gradcheck(lambda t: t * 2, (x,))

    raises_like_torch(case, ValueError, "gradcheck expects at least one input tensor to require gradient")


def test_gradcheck_accepts_non_tensor_inputs():
    """gradcheck(fn, (x, 2.0)): the number is passed through to fn unchanged."""

    def case(lib):
        x = lib.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
        return lib.autograd.gradcheck(lambda t, s: t * s, (x, 2.0))

    th, cr = both(case)
    assert th is True and cr is True


# ---------------------------------------------------------------- D. optimiser parameters

def test_sgd_refuses_a_bare_tensor():
    """SGD(w, lr=0.1) instead of SGD([w], ...): an error naming the mistake, not a silent iteration over rows."""

    def case(lib):
        w = lib.ones(2, requires_grad=True)
        lib.optim.SGD(w, lr=0.1)

    raises_like_torch(case, TypeError,
                      "params argument given to the optimizer should be an iterable of Tensors or dicts, but got ")


# ---------------------------------------------------------------- E. NumPy scalars on the left

NUMPY_LEFT = {
    "f64*x": lambda x: np.float64(2.0) * x,
    "f32*x": lambda x: np.float32(2.0) * x,
    "f64-x": lambda x: np.float64(1.0) - x,
    "f64/x": lambda x: np.float64(2.0) / x,
}


@pytest.mark.parametrize("op", NUMPY_LEFT.values(), ids=NUMPY_LEFT.keys())
def test_numpy_scalar_on_left_without_grad(op):
    """np.float64(2.) * x must give a chainrule Tensor (not a NumPy array), with torch's dtype."""

    def case(lib):
        return op(lib.tensor(np.array([1.0, 2.0, 4.0], dtype=np.float32)))

    th, cr = both(case)
    assert_like(cr, th)


@pytest.mark.parametrize("op", NUMPY_LEFT.values(), ids=NUMPY_LEFT.keys())
def test_numpy_scalar_on_left_with_grad(op):
    """np.float64(2.) * x with x requiring grad: a Tensor in the graph, torch's dtype and gradient."""

    def case(lib):
        x = lib.tensor(np.array([1.0, 2.0, 4.0], dtype=np.float32), requires_grad=True)
        y = op(x)
        assert y.requires_grad
        y.sum().backward()
        return y, x.grad

    assert_all_like_torch(case)


# ---------------------------------------------------------------- F. f-strings of 0-d tensors

def test_format_spec_of_scalar_tensor():
    """f"{loss:.4f}" on a 0-d tensor formats its value, as for a float."""

    def case(lib):
        return f"{lib.tensor(np.float32(3.14159265)):.4f}"

    th, cr = both(case)
    assert cr == th == "3.1416"


def test_format_spec_of_scalar_tensor_requiring_grad():
    """f"{loss:.3f}" also works on a loss that is part of a graph."""

    def case(lib):
        x = lib.tensor(1.5, requires_grad=True)
        return f"{x * 2:.3f}"

    th, cr = both(case)
    assert cr == th == "3.000"


def test_empty_format_of_scalar_tensor():
    """f"{t}" for a 0-d tensor gives the value as a Python number would print, not 'tensor(...)'."""

    def case(lib):
        return f"{lib.tensor(np.float32(3.14159265))}"

    th, cr = both(case)
    assert cr == th


# ---------------------------------------------------------------- G. backward through a freed graph

SECOND_BACKWARD = {
    "x*2": lambda x: x * 2,
    "2*x": lambda x: 2 * x,
    "x/2": lambda x: x / 2,
}


@pytest.mark.parametrize("f", SECOND_BACKWARD.values(), ids=SECOND_BACKWARD.keys())
def test_second_backward_through_freed_graph_raises(f):
    """A second .backward() without retain_graph=True raises, even for x * 2 (torch saved the 2)."""

    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        s = f(x).sum()
        s.backward()
        s.backward()

    raises_like_torch(case, RuntimeError, SECOND_TIME)


def test_second_autograd_grad_through_freed_graph_raises():
    """autograd.grad twice on the same graph without retain_graph=True raises."""

    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        s = (x * 2).sum()
        lib.autograd.grad(s, x)
        lib.autograd.grad(s, x)

    raises_like_torch(case, RuntimeError, SECOND_TIME)


def test_second_backward_of_addition_accumulates():
    """(x + 2).sum() saves nothing: a second backward works and .grad accumulates to 2."""

    def case(lib):
        x = lib.tensor(np.array([1.0, 2.0]), requires_grad=True)
        s = (x + 2).sum()
        s.backward()
        s.backward()
        return x.grad

    th, cr = both(case)
    assert_like(cr, th, "grad")


# ---------------------------------------------------------------- H. grad-mode decorators and statements

def test_no_grad_decorator_without_parentheses():
    """@no_grad (no parentheses) on a function: nothing inside is recorded."""

    def case(lib):
        @lib.no_grad
        def double(x):
            return x * 2

        x = lib.tensor([1.0, 2.0], requires_grad=True)
        return double(x).requires_grad, double.__name__

    th, cr = both(case)
    assert cr == th == (False, "double")


def test_enable_grad_decorator_without_parentheses():
    """@enable_grad (no parentheses): recording is on inside, even within no_grad."""

    def case(lib):
        @lib.enable_grad
        def double(x):
            return x * 2

        x = lib.tensor([1.0, 2.0], requires_grad=True)
        with lib.no_grad():
            return double(x).requires_grad, double.__name__

    th, cr = both(case)
    assert cr == th == (True, "double")


def test_set_grad_enabled_as_a_statement():
    """set_grad_enabled(False) as a plain call turns recording off until set_grad_enabled(True)."""

    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        try:
            lib.set_grad_enabled(False)
            off = (lib.is_grad_enabled(), (x * 2).requires_grad)
            lib.set_grad_enabled(True)
            on = (lib.is_grad_enabled(), (x * 2).requires_grad)
        finally:
            lib.set_grad_enabled(True)
        return off, on

    th, cr = both(case)
    assert cr == th == ((False, False), (True, True))


# ---------------------------------------------------------------- I. dtype promotion

PROMOTIONS = {
    "int/2": lambda lib: lib.tensor([1, 2, 3]) / 2,
    "int*1.5": lambda lib: lib.tensor([1, 2, 3]) * 1.5,
    "int*2": lambda lib: lib.tensor([1, 2, 3]) * 2,
    "int.exp()": lambda lib: lib.tensor([1, 2, 3]).exp(),
    "0-d f64 * f32": lambda lib: lib.tensor(2.0, dtype=lib.float64) * lib.tensor([1.0, 2.0]),
    "where(c, 1., 0.)": lambda lib: lib.where(lib.tensor([True, False]), 1.0, 0.0),
    "cat([f32, i64])": lambda lib: lib.cat([lib.tensor([1.5]), lib.tensor([2])]),
}


@pytest.mark.parametrize("case", PROMOTIONS.values(), ids=PROMOTIONS.keys())
def test_dtype_promotion(case):
    """Mixed dtypes give torch's result dtype (integers divided give float32; 0-d tensors don't upcast)."""
    th, cr = both(case)
    assert_like(cr, th)


def test_matmul_of_mixed_float_dtypes_raises():
    """float32 @ float64 is refused by matmul (no promotion there), with torch's message."""

    def case(lib):
        return lib.ones(2, 3) @ lib.ones(3, 2, dtype=lib.float64)

    raises_like_torch(case, RuntimeError, "expected m1 and m2 to have the same dtype, but got: float != double")


def test_linear_layer_on_float64_input_raises():
    """A float32 nn.Linear applied to float64 data: torch's dtype error, not a silent cast."""

    def case(lib):
        layer = lib.nn.Linear(3, 2)
        return layer(lib.ones(4, 3, dtype=lib.float64))

    raises_like_torch(case, RuntimeError, "mat1 and mat2 must have the same dtype, but got Double and Float")


# ---------------------------------------------------------------- J. random *_like factories

@pytest.mark.parametrize("name", ["randn_like", "rand_like"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_like_keeps_shape_and_dtype(name, dtype):
    """randn_like(t) / rand_like(t) have t's shape and dtype."""

    def case(lib):
        out = getattr(lib, name)(lib.zeros(2, 3, dtype=getattr(lib, dtype)))
        return tuple(out.shape), dtype_name(out.dtype), out.requires_grad

    th, cr = both(case)
    assert cr == th
    if name == "rand_like":
        values = to_numpy(chainrule.rand_like(chainrule.zeros(100)))
        assert np.all((values >= 0) & (values < 1))


# ---------------------------------------------------------------- K. item assignment

def test_setitem_under_no_grad_on_leaf_bumps_version():
    """x[1] = 2.5 under no_grad works on a leaf, but backward of a graph that saved x then refuses."""

    def case(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = (x * x).sum()
        with lib.no_grad():
            x[1] = 2.5
        assert x.is_leaf and x.requires_grad
        np.testing.assert_array_equal(to_numpy(x), [1.0, 2.5, 3.0])
        y.backward()

    raises_like_torch(case, RuntimeError, INPLACE)


def test_setitem_with_boolean_mask():
    """t[t == 0] = 1. replaces the zeros of a plain tensor."""

    def case(lib):
        t = lib.tensor(np.array([0.0, 1.0, 0.0, 3.0]))
        t[t == 0] = 1.0
        return t

    th, cr = both(case)
    assert_like(cr, th)


def test_setitem_on_leaf_requiring_grad_raises():
    """x[1] = 2. outside no_grad on a leaf requiring grad: torch's in-place-on-leaf error."""

    def case(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        x[1] = 2.0

    raises_like_torch(case, RuntimeError,
                      "a view of a leaf Variable that requires grad is being used in an in-place operation.")


# ---------------------------------------------------------------- L. pow at its edges

def test_pow_zero_base_scalar():
    """0.0 ** x: values 1, 0, inf and torch's gradients (0 where the base is 0 and x >= 0)."""

    def case(lib):
        x = lib.tensor(np.array([0.0, 0.5, 1.0, 2.0, -1.0]), requires_grad=True)
        y = 0.0 ** x
        y.sum().backward()
        return y, x.grad

    assert_all_like_torch(case)


def test_pow_negative_base_scalar_at_integer_exponents():
    """(-2.0) ** x at integer x: real values, and nan gradients (log of a negative base), as torch."""

    def case(lib):
        x = lib.tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]), requires_grad=True)
        y = (-2.0) ** x
        y.sum().backward()
        return y, x.grad

    assert_all_like_torch(case)


def test_pow_tensor_base_with_zeros():
    """a ** b where a has zeros (b > 0): the gradient wrt b is 0 there, not nan; wrt a as torch."""

    def case(lib):
        a = lib.tensor(np.array([0.0, 1.0, 2.0, 0.0]), requires_grad=True)
        b = lib.tensor(np.array([2.0, 0.5, 3.0, 0.5]), requires_grad=True)
        y = a ** b
        y.sum().backward()
        return y, a.grad, b.grad

    (th, th_a, th_b), (cr, cr_a, cr_b) = both(case)
    assert_like(cr, th)
    assert_like(cr_a, th_a, "grad wrt a")
    assert_like(cr_b, th_b, "grad wrt b")


# ---------------------------------------------------------------- M. max

def test_max_over_dim_of_scalar_tensor():
    """tensor(3.).max(0) works on a 0-d tensor: value 3 and index 0, both 0-d."""

    def case(lib):
        result = lib.tensor(3.0).max(0)
        return result.values, result.indices

    (th_v, th_i), (cr_v, cr_i) = both(case)
    assert_like(cr_v, th_v, "values")
    assert_like(cr_i, th_i, "indices")


def test_binary_max_is_elementwise_maximum():
    """max(a, b) with two tensors is the elementwise maximum; each gradient goes to the larger."""

    def case(lib):
        a = lib.tensor(np.array([1.0, 5.0, -3.0, 2.0]), requires_grad=True)
        b = lib.tensor(np.array([4.0, 2.0, -1.0, 0.5]), requires_grad=True)
        m = lib.max(a, b)
        (m * lib.tensor(np.array([1.0, 2.0, 3.0, 4.0]))).sum().backward()
        return m, a.grad, b.grad

    (th, th_a, th_b), (cr, cr_a, cr_b) = both(case)
    assert_like(cr, th)
    assert_like(cr_a, th_a, "grad wrt a")
    assert_like(cr_b, th_b, "grad wrt b")


def test_binary_max_splits_gradient_on_ties():
    """max(a, b) where a == b: torch gives each input half of the gradient."""

    def case(lib):
        a = lib.tensor(np.array([3.0, 1.0]), requires_grad=True)
        b = lib.tensor(np.array([3.0, 2.0]), requires_grad=True)
        lib.max(a, b).sum().backward()
        return a.grad, b.grad

    (th_a, th_b), (cr_a, cr_b) = both(case)
    assert_like(cr_a, th_a, "grad wrt a")
    assert_like(cr_b, th_b, "grad wrt b")


# ---------------------------------------------------------------- N. inf and nan results are silent

def test_inf_and_nan_results_write_nothing_to_stderr():
    """log(0), 1/0 and 0 * inf warn nothing in torch; a warning would fail a graded notebook cell."""
    import subprocess
    import sys

    script = ("import chainrule; x = chainrule.tensor([0.0, 1.0], requires_grad=True); "
              "y = (x.log() * (1 / x)).sum(); y.backward(); print(y.item(), x.grad.tolist())")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    th = torch.tensor([0.0, 1.0], requires_grad=True)
    y = (th.log() * (1 / th)).sum()
    y.backward()
    assert run.stderr == ""
    assert run.stdout == f"{y.item()} {th.grad.tolist()}\n"  # -inf [inf, 1.0]


# ---------------------------------------------------------------- O. who holds a .grad

def test_grad_held_before_a_second_backward_sees_the_sum():
    """g = x.grad, then another backward: torch adds into the same tensor, so g shows the sum."""

    def case(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (x * x).sum().backward()
        held = x.grad
        (x * x).sum().backward()
        return held, x.grad

    (th_held, th_grad), (cr_held, cr_grad) = both(case)
    assert_like(cr_held, th_held, "the .grad held from the first backward")
    assert cr_held is cr_grad


def test_retained_grads_do_not_share_memory():
    """Scaling one retained .grad in place leaves the others (and the leaf's) alone, as in torch."""

    def case(lib):
        a = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = a.reshape(2)
        y.retain_grad()
        z = y * 1.0
        z.retain_grad()
        w = z + 0.0
        w.retain_grad()
        w.sum().backward()
        with lib.no_grad():
            y.grad.mul_(5)
        return a.grad, z.grad, w.grad

    assert_all_like_torch(case, ("a.grad", "z.grad", "w.grad"))


# ---------------------------------------------------------------- P. grad_fn names

GRAD_FN_CASES = {  # each builds a result from x (2, 3), v (3,), m (3, 3), all requiring grad
    "2 - x": lambda lib, x, v, m: 2 - x,
    "x - 2": lambda lib, x, v, m: x - 2,
    "x ** 2": lambda lib, x, v, m: x ** 2,
    "x ** x": lambda lib, x, v, m: x ** x,
    "2 ** x": lambda lib, x, v, m: 2 ** x,
    "v @ v": lambda lib, x, v, m: v @ v,
    "x @ m": lambda lib, x, v, m: x @ m,
    "m @ v": lambda lib, x, v, m: m @ v,
    "sum()": lambda lib, x, v, m: x.sum(),
    "sum(0)": lambda lib, x, v, m: x.sum(0),
    "mean()": lambda lib, x, v, m: x.mean(),
    "mean(1, keepdim)": lambda lib, x, v, m: x.mean(1, keepdim=True),
    "max()": lambda lib, x, v, m: x.max(),
    "max(0)": lambda lib, x, v, m: x.max(0)[0],
    "clamp(0, 1)": lambda lib, x, v, m: x.clamp(0, 1),
    "clamp(min=0)": lambda lib, x, v, m: x.clamp(min=0),
    "float()": lambda lib, x, v, m: x.float(),
    "reshape(6)": lambda lib, x, v, m: x.reshape(6),
    "view(6)": lambda lib, x, v, m: x.view(6),
    "x[0]": lambda lib, x, v, m: x[0],
    "x[:1]": lambda lib, x, v, m: x[:1],
    "x[:, 1]": lambda lib, x, v, m: x[:, 1],
    "x[0, :1]": lambda lib, x, v, m: x[0, :1],
    "x[[0, 1]]": lambda lib, x, v, m: x[[0, 1]],
    "x[x > 0]": lambda lib, x, v, m: x[x > 0],
    "x.t()": lambda lib, x, v, m: x.t(),
    "v.t()": lambda lib, x, v, m: v.t(),
    "squeeze()": lambda lib, x, v, m: x.unsqueeze(1).squeeze(),
    "squeeze(1)": lambda lib, x, v, m: x.unsqueeze(1).squeeze(1),
    "x[None]": lambda lib, x, v, m: x[None],
    "x[:, None]": lambda lib, x, v, m: x[:, None],
    "maximum": lambda lib, x, v, m: lib.maximum(x, x * 2),
    "mse none": lambda lib, x, v, m: lib.nn.functional.mse_loss(x, x.detach() + 1, reduction="none"),
    "mse": lambda lib, x, v, m: lib.nn.functional.mse_loss(x, x.detach() + 1),
    "tanh'": lambda lib, x, v, m: lib.autograd.grad(x.tanh().sum(), x, create_graph=True)[0],
    "sigmoid'": lambda lib, x, v, m: lib.autograd.grad(x.sigmoid().sum(), x, create_graph=True)[0],
}


@pytest.mark.parametrize("case", GRAD_FN_CASES)
def test_grad_fn_names_match_torch(case):
    """The grad_fn a student prints next to torch's has the same name."""

    def build(lib):
        x = lib.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=lib.float64, requires_grad=True)
        v = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        m = lib.eye(3, dtype=lib.float64).requires_grad_()
        return GRAD_FN_CASES[case](lib, x, v, m).grad_fn

    th, cr = both(build)
    assert cr.name() == type(th).__name__
    assert repr(cr).startswith(f"<{type(th).__name__} object at ")


# ---------------------------------------------------------------- Q. error messages start with torch's

ERROR_CASES = {
    "dot of different lengths": lambda lib: lib.ones(3) @ lib.ones(4),
    "batch of matrices @ matrix": lambda lib: lib.ones(2, 3, 4) @ lib.ones(5, 2),
    "vector @ matrix": lambda lib: lib.ones(3) @ lib.ones(4, 2),
    "matrix @ vector": lambda lib: lib.ones(2, 3) @ lib.ones(4),
    "batch @ batch": lambda lib: lib.ones(2, 3, 4) @ lib.ones(2, 5, 2),
    "batch dims that do not broadcast": lambda lib: lib.ones(2, 3, 4) @ lib.ones(3, 4, 2),
    "cat of 0-d tensors": lambda lib: lib.cat([lib.tensor(1.0), lib.tensor(2.0)]),
    "cat of different sizes": lambda lib: lib.cat([lib.ones(2, 2), lib.ones(2, 3)]),
    "cat of a bare tensor": lambda lib: lib.cat(lib.ones(2, 2)),
    "in-place update that broadcasts": lambda lib: lib.ones(2).add_(lib.ones(2, 2)),
    "negative slice step": lambda lib: lib.ones(3)[::-1],
    "iteration over a 0-d tensor": lambda lib: list(lib.tensor(3.0)),
    "index out of bounds": lambda lib: lib.ones(3)[5],
    "expand to a bad size": lambda lib: lib.ones(3).expand(2, 4),
    "t() of a batch": lambda lib: lib.ones(2, 2, 2).t(),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_start_with_torchs_words(case):
    """The error a student meets reads as torch's (chainrule may add a hint after it)."""
    with pytest.raises(Exception) as from_torch:
        ERROR_CASES[case](torch)
    with pytest.raises(from_torch.type, match=re.escape(str(from_torch.value))):
        ERROR_CASES[case](chainrule)


# ---------------------------------------------------------------- R. chainrule.testing.assert_close

def test_assert_close_none_against_a_tensor():
    """assert_close(x.grad, expected) with a .grad left None fails as torch's does: 'None mismatch'."""
    for lib, check in ((torch, torch.testing.assert_close), (chainrule, chainrule.testing.assert_close)):
        with pytest.raises(AssertionError, match="None mismatch"):
            check(None, lib.ones(2))
    chainrule.testing.assert_close(None, None)


def test_assert_close_wants_both_tolerances_or_neither():
    """rtol without atol is refused with torch's ValueError."""
    message = "Both 'rtol' and 'atol' must be either specified or omitted, but got no atol."
    for lib, check in ((torch, torch.testing.assert_close), (chainrule, chainrule.testing.assert_close)):
        with pytest.raises(ValueError, match=re.escape(message)):
            check(lib.ones(2), lib.ones(2), rtol=1e-3)


def test_assert_close_message_shows_plain_numbers():
    """The numbers in the message read as numbers (2.0), not as NumPy reprs (np.float64(2.0))."""
    with pytest.raises(AssertionError, match=re.escape("got 2.0, expected 2.5")):
        chainrule.testing.assert_close(chainrule.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))


# ---------------------------------------------------------------- S. .grad of a non-leaf

def test_reading_grad_of_a_non_leaf_warns_like_torch():
    """y.grad of a non-leaf that does not retain its gradient is None, with torch's warning."""
    messages = []
    for lib in (torch, chainrule):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.sum().backward()
        with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed") as caught:
            assert y.grad is None
        messages.append(str(caught[0].message))
    assert messages[1] in messages[0]  # torch's adds a link and where it was triggered


def test_reading_grad_of_a_leaf_or_a_retained_non_leaf_is_silent():
    """Leaves and retain_grad() non-leaves give their .grad without a warning."""
    import warnings

    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.retain_grad()
    y.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None and y.grad is not None


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")  # torch's
def test_accumulating_after_create_graph_backwards_keeps_the_grad_fn():
    """Two create_graph backwards, then a plain one: values and grad_fn as torch's (in place)."""

    def case(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        (x ** 3).sum().backward(create_graph=True)
        (x ** 3).sum().backward(create_graph=True)
        first = x.grad
        (x ** 3).sum().backward()
        return first, x.grad

    (th_first, th_grad), (cr_first, cr_grad) = both(case)
    assert_like(cr_grad, th_grad, "x.grad")
    assert (cr_first is cr_grad) == (th_first is th_grad)
    assert (cr_grad.grad_fn is None) == (th_grad.grad_fn is None)


# ---------------------------------------------------------------- T. min, flatten, reflected & and |

REDUCTION_CASES = {
    "x.min()": lambda lib, x: x.min(),
    "x.min(0).values": lambda lib, x: x.min(0).values,
    "min(x, -1, keepdim)": lambda lib, x: lib.min(x, -1, keepdim=True)[0],
    "minimum(x, 2)": lambda lib, x: lib.minimum(x, lib.full_like(x, 2.0)),
    "min(x, x.flip)": lambda lib, x: lib.min(x, x[[1, 0]]),
    "x.max(1).values": lambda lib, x: x.max(1).values,
    "flatten()": lambda lib, x: x.reshape(2, 2, 2).flatten() * 1.0,
    "flatten(1)": lambda lib, x: x.reshape(2, 2, 2).flatten(1) * 1.0,
    "flatten(0, 1)": lambda lib, x: x.reshape(2, 2, 2).flatten(0, 1) * 1.0,
}


@pytest.mark.parametrize("case", REDUCTION_CASES)
def test_min_and_flatten_values_and_gradients(case):
    """Values, gradients (ties shared as torch shares them) and grad_fn names as torch's."""

    def run(lib):
        x = lib.tensor([[1.0, 5.0, 2.0, 2.0], [3.0, 2.0, 2.0, 0.5]], dtype=lib.float64, requires_grad=True)
        out = REDUCTION_CASES[case](lib, x)
        out.backward(lib.ones_like(out) * lib.arange(1.0, out.numel() + 1, dtype=lib.float64).reshape(out.shape))
        return out, x.grad, out.grad_fn

    (th_out, th_grad, th_fn), (cr_out, cr_grad, cr_fn) = both(run)
    assert_like(cr_out, th_out, "value")
    assert_like(cr_grad, th_grad, "x.grad")
    assert cr_fn.name() == type(th_fn).__name__


def test_min_with_dim_returns_values_and_indices_like_torch():
    """x.min(0) is a (values, indices) pair that prints as torch's return type."""
    th, cr = both(lambda lib: lib.tensor([[1.0, 5.0], [3.0, 2.0]]).min(0))
    assert_like(cr.indices, th.indices, "indices")
    assert repr(cr) == repr(th).replace("torch.", "chainrule.")


def test_number_and_mask_combine_from_either_side():
    """3 & mask and mask | 1 work from either side, as in torch."""
    th, cr = both(lambda lib: ((3 & (lib.arange(4) > 1)), (0 | (lib.arange(4) > 2))))
    for a, b in zip(cr, th):
        assert_like(a, b)


# ---------------------------------------------------------------- U. who else holds a gradient, grad modes, item assignment

def test_gradients_a_hook_saw_or_returned_are_not_changed_later():
    """A hook may keep the gradient it sees, or return one its caller holds: later backward
    passes must not add into those (torch copies them before making them a .grad)."""

    def case(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        seen = []
        x.register_hook(lambda g: seen.append(g))
        held = lib.tensor([10.0, 10.0], dtype=lib.float64)
        y = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y.register_hook(lambda g: held)
        for scale in (2.0, 3.0):
            (x * scale).sum().backward()
            (y * scale).sum().backward()
        return seen[0], held, x.grad, y.grad

    assert_all_like_torch(case, ("seen by the hook", "returned by the hook", "x.grad", "y.grad"))


def test_backward_with_inputs_keeps_gradients_apart():
    """backward(inputs=[a, b]) then another backward: each .grad its own, the seed untouched."""

    def case(lib):
        a = lib.ones(2, dtype=lib.float64, requires_grad=True)
        b = lib.ones(2, dtype=lib.float64, requires_grad=True)
        (a + b).sum().backward(inputs=[a, b])
        (a * 3).sum().backward()
        seed = lib.ones(2, dtype=lib.float64)
        (a + 0).backward(seed, inputs=[a])
        (a * 1).sum().backward()
        return a.grad, b.grad, seed

    assert_all_like_torch(case, ("a.grad", "b.grad", "the seed"))


@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")  # torch's, not ours
def test_numpy_functions_and_arrays_meet_tensors_as_in_torch():
    """np.exp(t) still computes (an array); an array operand joins the op as a tensor would."""
    t = chainrule.tensor([1.0, 2.0])
    np.testing.assert_allclose(np.exp(t), np.exp([1.0, 2.0]), rtol=1e-6)
    th = torch.tensor([1.0, 2.0]) * np.array([2.0, 3.0])
    assert_like(t * np.array([2.0, 3.0]), th)
    assert_like(np.array([2.0, 3.0]) == t, torch.tensor([False, False]))


def test_a_set_grad_enabled_object_can_be_entered_again():
    """with s: twice, and s made before another switch, behave as torch's."""

    def case(lib):
        modes = []
        try:
            s = lib.set_grad_enabled(False)
            with s:
                modes.append(lib.is_grad_enabled())
            with s:
                modes.append(lib.is_grad_enabled())
            modes.append(lib.is_grad_enabled())
            s = lib.set_grad_enabled(False)
            lib.set_grad_enabled(True)
            with s:
                modes.append(lib.is_grad_enabled())
            modes.append(lib.is_grad_enabled())
        finally:
            lib.set_grad_enabled(True)
        return modes

    th, cr = both(case)
    assert cr == th


def test_views_of_copies_do_not_share_a_version():
    """An advanced index or a copying reshape is a copy: changing it leaves backward alone."""

    def case(lib):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
        h = x.exp()
        picked = h[lib.tensor([0, 2])]
        masked = h[h > 3.0]
        with lib.no_grad():
            picked.mul_(2)
            masked.mul_(2)
        h.sum().backward()
        return x.grad

    th, cr = both(case)
    assert_like(cr, th, "x.grad")


def test_gradcheck_skips_outputs_that_need_no_gradient():
    """Only differentiable outputs are checked, as in torch."""
    for lib in (torch, chainrule):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        assert lib.autograd.gradcheck(lambda a: (a * 2, a.detach() * 3), (x,))


def test_item_assignment_of_a_value_that_requires_grad_is_refused():
    """out[1:] = w * 2 would lose w's gradient: chainrule refuses instead of a wrong .grad."""
    w = chainrule.tensor([1.0, 2.0], requires_grad=True)
    out = chainrule.zeros(3)
    with pytest.raises(RuntimeError, match="does not record item assignment"):
        out[1:] = w * 2


ASSIGNMENTS = {
    "integer tensor key": lambda lib, x: x.__setitem__(lib.tensor([0, 1]), 1.0),
    "list key": lambda lib, x: x.__setitem__([1], lib.tensor([5.0])),
    "mask key": lambda lib, x: x.__setitem__(x == 0, 7.0),
    "rows with a leading 1": lambda lib, x: x.__setitem__(slice(0, 1), lib.ones(1, 1, 4)),
}


@pytest.mark.parametrize("case", ASSIGNMENTS)
def test_item_assignment_values(case):
    """t[key] = value writes what torch writes."""

    def run(lib):
        x = lib.zeros(2, 4)
        ASSIGNMENTS[case](lib, x)
        return x

    th, cr = both(run)
    assert_like(cr, th)


@pytest.mark.parametrize("target,key,value", [((4,), slice(0, 2), (3,)), ((2, 3), 0, (2, 3))])
def test_item_assignment_of_the_wrong_shape_names_the_region(target, key, value):
    """The message speaks of the assigned region's shape, in torch's words."""
    with pytest.raises(RuntimeError) as from_torch:
        torch.zeros(*target)[key] = torch.ones(*value)
    expected = str(from_torch.value).replace("torch.FloatTensor", "chainrule.Tensor")
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        chainrule.zeros(*target)[key] = chainrule.ones(*value)


# ---------------------------------------------------------------- V. optimizer parameter groups

def test_sgd_parameter_groups_and_learning_rate_changes_train_as_torch():
    """Per-group options, a default lr, and param_groups[i]["lr"] changed between steps."""

    def case(lib):
        lib.manual_seed(0)
        first = lib.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=lib.float64, requires_grad=True)
        second = lib.tensor([1.0, -0.5], dtype=lib.float64, requires_grad=True)
        optimizer = lib.optim.SGD([{"params": [first]}, {"params": [second], "lr": 0.5}],
                                  lr=0.1, momentum=0.9)
        x = lib.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=lib.float64)
        for step in range(4):
            optimizer.zero_grad()
            ((x @ first + second) ** 2).sum().backward()
            optimizer.step()
            optimizer.param_groups[0]["lr"] *= 0.5
        plain = lib.optim.SGD([lib.zeros(1, requires_grad=True)])
        return first.detach(), second.detach(), plain.param_groups[0]["lr"], optimizer.param_groups[1]["lr"]

    (th_first, th_second, th_lr, th_lr1), (cr_first, cr_second, cr_lr, cr_lr1) = both(case)
    assert_like(cr_first, th_first, "first group's parameter")
    assert_like(cr_second, th_second, "second group's parameter")
    assert (cr_lr, cr_lr1) == (th_lr, th_lr1)


def test_sgd_refuses_a_negative_momentum_like_torch():
    raises_like_torch(lambda lib: lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.1, momentum=-1),
                      ValueError, "Invalid momentum value: -1")
