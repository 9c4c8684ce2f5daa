"""Every op of issue 2, forward and backward, against PyTorch in float64.

Each test builds one expression ``f(lib, *tensors)`` that runs unchanged with
``lib=chainrule`` and ``lib=torch``; ``helpers.check`` compares values, gradients
for a random backward seed, and runs chainrule's gradcheck.
"""

from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule
from helpers import away_from_zero, check, check_second_order, distinct, positive, to_numpy

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3)
pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=3)


def run(f, *arrays, rng=None, **kw):
    """Check ``f(lib, *tensors)`` for lib=chainrule against lib=torch."""
    return check(partial(f, chainrule), partial(f, torch), *arrays, rng=rng, **kw)


# ---------------------------------------------------------------- elementwise unary

UNARY_DOMAIN = {
    "exp": np.random.Generator.standard_normal,
    "log": positive,
    "sqrt": positive,
    "abs": away_from_zero,
    "sigmoid": np.random.Generator.standard_normal,
    "tanh": np.random.Generator.standard_normal,
    "relu": away_from_zero,
    "neg": np.random.Generator.standard_normal,
}


@pytest.mark.parametrize("form", ["function", "method"])
@pytest.mark.parametrize("name", sorted(UNARY_DOMAIN))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary(name, form, shape, seed):
    rng = np.random.default_rng(seed)
    x = UNARY_DOMAIN[name](rng, shape)
    if form == "function":
        f = lambda lib, t: getattr(lib, name)(t)
    else:
        f = lambda lib, t: getattr(t, name)()
    run(f, x, rng=rng)


@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary_minus(shape, seed):
    rng = np.random.default_rng(seed)
    run(lambda lib, t: -t, rng.standard_normal(shape), rng=rng)


# ---------------------------------------------------------------- binary, broadcasting

BINARY = {
    "add": (lambda a, b: a + b, "add"),
    "sub": (lambda a, b: a - b, "sub"),
    "mul": (lambda a, b: a * b, "mul"),
    "div": (lambda a, b: a / b, "div"),
    "pow": (lambda a, b: a**b, "pow"),
}


def binary_inputs(name, rng, sa, sb):
    a = positive(rng, sa) if name == "pow" else rng.standard_normal(sa)
    b = away_from_zero(rng, sb) if name == "div" else rng.standard_normal(sb)
    return a, b


@pytest.mark.parametrize("form", ["operator", "function", "method"])
@pytest.mark.parametrize("name", sorted(BINARY))
@SETTINGS
@given(shapes=pairs, seed=seeds)
def test_binary_broadcasting(name, form, shapes, seed):
    """Gradients are reduced over the broadcast axes (both operands may broadcast)."""
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    op, fname = BINARY[name]
    if form == "operator":
        f = lambda lib, a, b: op(a, b)
    elif form == "function":
        f = lambda lib, a, b: getattr(lib, fname)(a, b)
    else:
        f = lambda lib, a, b: getattr(a, fname)(b)
    run(f, *binary_inputs(name, rng, sa, sb), rng=rng)


SCALAR_OPS = {
    "x + 2": (lambda x: x + 2, "any"),
    "2 + x": (lambda x: 2 + x, "any"),
    "x - 2.5": (lambda x: x - 2.5, "any"),
    "2 - x": (lambda x: 2 - x, "any"),
    "x * 3": (lambda x: x * 3, "any"),
    "3 * x": (lambda x: 3 * x, "any"),
    "x / 4": (lambda x: x / 4, "any"),
    "2 / x": (lambda x: 2 / x, "nonzero"),
    "2 ** x": (lambda x: 2**x, "any"),
    "0.5 ** x": (lambda x: 0.5**x, "any"),
    "x ** 2": (lambda x: x**2, "any"),
    "x ** 3": (lambda x: x**3, "any"),
    "x ** 0.5": (lambda x: x**0.5, "positive"),
    "x ** -1.5": (lambda x: x**-1.5, "positive"),
    "x ** -1": (lambda x: x**-1, "nonzero"),
    "x ** 1": (lambda x: x**1, "any"),
    "x.pow(2.0)": (lambda x: x.pow(2.0), "any"),
    "x.add(2)": (lambda x: x.add(2), "any"),
    "x.mul(-1.5)": (lambda x: x.mul(-1.5), "any"),
    "x.div(2)": (lambda x: x.div(2), "any"),
    "x.sub(1)": (lambda x: x.sub(1), "any"),
}
DOMAIN = {
    "any": np.random.Generator.standard_normal,
    "nonzero": away_from_zero,
    "positive": positive,
}


@pytest.mark.parametrize("expr", sorted(SCALAR_OPS))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_scalar_and_reflected(expr, shape, seed):
    """Python-number operands on either side; the result stays float64 as in PyTorch."""
    rng = np.random.default_rng(seed)
    op, domain = SCALAR_OPS[expr]
    run(lambda lib, x: op(x), DOMAIN[domain](rng, shape), rng=rng)


@pytest.mark.parametrize("form", ["function", "method"])
@SETTINGS
@given(shape=shapes, seed=seeds, exponent=st.sampled_from([2, 3, 0.5, -1.5, 2.0]))
def test_pow_scalar_exponent_named(form, shape, seed, exponent):
    rng = np.random.default_rng(seed)
    if form == "function":
        f = lambda lib, x: lib.pow(x, exponent)
    else:
        f = lambda lib, x: x.pow(exponent)
    run(f, positive(rng, shape), rng=rng)


# ---------------------------------------------------------------- matmul


@st.composite
def matmul_shapes(draw):
    n, m, k = (draw(st.integers(1, 3)) for _ in range(3))
    batch = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3))
    ba, bb = batch.input_shapes
    kind = draw(st.sampled_from(["1d@1d", "1d@2d", "2d@1d", "2d@2d", "batched", "batched@2d", "2d@batched", "1d@batched", "batched@1d"]))
    return {
        "1d@1d": ((m,), (m,)),
        "1d@2d": ((m,), (m, k)),
        "2d@1d": ((n, m), (m,)),
        "2d@2d": ((n, m), (m, k)),
        "batched": ((*ba, n, m), (*bb, m, k)),
        "batched@2d": ((*ba, n, m), (m, k)),
        "2d@batched": ((n, m), (*bb, m, k)),
        "1d@batched": ((m,), (*bb, m, k)),
        "batched@1d": ((*ba, n, m), (m,)),
    }[kind]


@pytest.mark.parametrize("form", ["operator", "function", "method"])
@SETTINGS
@given(shapes=matmul_shapes(), seed=seeds)
def test_matmul(form, shapes, seed):
    rng = np.random.default_rng(seed)
    f = {
        "operator": lambda lib, a, b: a @ b,
        "function": lambda lib, a, b: lib.matmul(a, b),
        "method": lambda lib, a, b: a.matmul(b),
    }[form]
    run(f, rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1]), rng=rng)


@pytest.mark.parametrize("rows, cols", [(7, 3), (3, 7), (4, 4)])
def test_products_over_one_shared_axis(rows, cols):
    """An inner dimension of 1 (a one-feature input layer) takes chainrule's outer-product path,
    in both orientations: the values are PyTorch's exactly, and later ops see an ordinary array."""
    rng = np.random.default_rng(rows * 10 + cols)
    a, w = rng.standard_normal((rows, 1)), rng.standard_normal((cols, 1))
    run(lambda lib, a, w: a @ w.T, a, w, rng=rng)
    run(lambda lib, a, w, b: lib.nn.functional.linear(a, w, b).tanh().view(-1),
        a, w, rng.standard_normal(cols), rng=rng)
    exact = chainrule.tensor(a) @ chainrule.tensor(w).T
    np.testing.assert_array_equal(to_numpy(exact), (torch.tensor(a) @ torch.tensor(w).T).numpy())


# ---------------------------------------------------------------- reductions


@st.composite
def reduction_args(draw, min_dims=0, allow_tuple=True):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=4, min_side=1, max_side=3))
    nd = max(len(shape), 1)
    choice = draw(st.sampled_from(["none", "int", "tuple"] if allow_tuple and len(shape) else ["none", "int"]))
    if choice == "none":
        dim = None
    elif choice == "int":
        dim = draw(st.integers(-nd, nd - 1))
    else:
        dims = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
        dim = tuple(d - len(shape) if draw(st.booleans()) else d for d in dims)
    return shape, dim, draw(st.booleans())


@pytest.mark.parametrize("form", ["function", "method", "positional"])
@pytest.mark.parametrize("name", ["sum", "mean"])
@SETTINGS
@given(args=reduction_args(), seed=seeds)
def test_sum_mean(name, form, args, seed):
    shape, dim, keepdim = args
    rng = np.random.default_rng(seed)

    def f(lib, x):
        if dim is None:
            return getattr(lib, name)(x) if form == "function" else getattr(x, name)()
        if form == "function":
            return getattr(lib, name)(x, dim=dim, keepdim=keepdim)
        if form == "positional":
            return getattr(x, name)(dim, keepdim)
        return getattr(x, name)(dim=dim, keepdim=keepdim)

    run(f, rng.standard_normal(shape), rng=rng)


@pytest.mark.parametrize("form", ["function", "method"])
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_max_all(form, shape, seed):
    rng = np.random.default_rng(seed)
    f = (lambda lib, x: lib.max(x)) if form == "function" else (lambda lib, x: x.max())
    out, _ = run(f, distinct(rng, shape), rng=rng)
    assert tuple(out.shape) == ()


@pytest.mark.parametrize("form", ["function", "method", "positional"])
@SETTINGS
@given(args=reduction_args(min_dims=1, allow_tuple=False).filter(lambda a: a[1] is not None), seed=seeds)
def test_max_dim(form, args, seed):
    """max(dim) returns (values, indices) like torch.return_types.max; grads flow to the argmax."""
    shape, dim, keepdim = args
    rng = np.random.default_rng(seed)
    x = distinct(rng, shape)

    def call(lib, t):
        if form == "function":
            return lib.max(t, dim=dim, keepdim=keepdim)
        if form == "positional":
            return t.max(dim, keepdim)
        return t.max(dim=dim, keepdim=keepdim)

    run(lambda lib, t: call(lib, t).values, x, rng=rng)
    run(lambda lib, t: call(lib, t)[0], x, rng=rng, gradcheck=False)
    ours, theirs = call(chainrule, chainrule.tensor(x)), call(torch, torch.tensor(x))
    values, indices = ours  # unpacks like a namedtuple
    np.testing.assert_array_equal(to_numpy(indices), theirs.indices.numpy())
    np.testing.assert_array_equal(to_numpy(ours.indices), theirs.indices.numpy())
    np.testing.assert_allclose(to_numpy(values), theirs.values.numpy())


# ---------------------------------------------------------------- shape ops


@st.composite
def reshape_args(draw):
    shape = draw(shapes)
    target = list(draw(st.permutations(list(shape))))
    target.insert(draw(st.integers(0, len(target))), 1)
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target)


@pytest.mark.parametrize("form", ["reshape*", "reshape()", "function", "view*", "view()"])
@SETTINGS
@given(args=reshape_args(), seed=seeds)
def test_reshape_view(form, args, seed):
    shape, target = args
    rng = np.random.default_rng(seed)
    f = {
        "reshape*": lambda lib, x: x.reshape(*target),
        "reshape()": lambda lib, x: x.reshape(target),
        "function": lambda lib, x: lib.reshape(x, target),
        "view*": lambda lib, x: x.view(*target),
        "view()": lambda lib, x: x.view(target),
    }[form]
    run(f, rng.standard_normal(shape), rng=rng)


@st.composite
def two_dims(draw, min_dims=1):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=4, min_side=1, max_side=3))
    n = len(shape)
    return shape, draw(st.integers(-n, n - 1)), draw(st.integers(-n, n - 1))


@pytest.mark.parametrize("form", ["function", "method"])
@SETTINGS
@given(args=two_dims(), seed=seeds)
def test_transpose(form, args, seed):
    shape, d0, d1 = args
    rng = np.random.default_rng(seed)
    f = (lambda lib, x: lib.transpose(x, d0, d1)) if form == "function" else (lambda lib, x: x.transpose(d0, d1))
    run(f, rng.standard_normal(shape), rng=rng)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=2, max_dims=2, max_side=4), seed=seeds)
def test_T(shape, seed):
    rng = np.random.default_rng(seed)
    run(lambda lib, x: x.T, rng.standard_normal(shape), rng=rng)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, max_side=3), seed=seeds)
def test_mT(shape, seed):
    rng = np.random.default_rng(seed)
    run(lambda lib, x: x.mT, rng.standard_normal(shape), rng=rng)


@pytest.mark.parametrize("form", ["varargs", "tuple", "function", "negative"])
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=3), data=st.data(), seed=seeds)
def test_permute(form, shape, data, seed):
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    rng = np.random.default_rng(seed)
    f = {
        "varargs": lambda lib, x: x.permute(*perm),
        "tuple": lambda lib, x: x.permute(perm),
        "function": lambda lib, x: lib.permute(x, perm),
        "negative": lambda lib, x: x.permute(*(p - len(shape) for p in perm)),
    }[form]
    run(f, rng.standard_normal(shape), rng=rng)


@pytest.mark.parametrize("form", ["function", "method"])
@SETTINGS
@given(shape=shapes, data=st.data(), seed=seeds)
def test_unsqueeze(form, shape, data, seed):
    n = len(shape)
    dim = data.draw(st.integers(-n - 1, n))
    rng = np.random.default_rng(seed)
    f = (lambda lib, x: lib.unsqueeze(x, dim)) if form == "function" else (lambda lib, x: x.unsqueeze(dim))
    run(f, rng.standard_normal(shape), rng=rng)


@pytest.mark.parametrize("form", ["all", "dim", "function_all", "function_dim"])
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=2), data=st.data(), seed=seeds)
def test_squeeze(form, shape, data, seed):
    """squeeze() drops every size-1 axis; squeeze(d) drops axis d only if it has size 1."""
    n = len(shape)
    dim = data.draw(st.integers(-n, n - 1))
    rng = np.random.default_rng(seed)
    f = {
        "all": lambda lib, x: x.squeeze(),
        "dim": lambda lib, x: x.squeeze(dim),
        "function_all": lambda lib, x: lib.squeeze(x),
        "function_dim": lambda lib, x: lib.squeeze(x, dim),
    }[form]
    run(f, rng.standard_normal(shape), rng=rng)


# ---------------------------------------------------------------- cat / stack


@pytest.mark.parametrize("form", ["list_kw", "tuple_positional"])
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), data=st.data(), seed=seeds)
def test_cat(form, shape, data, seed):
    n = len(shape)
    dim = data.draw(st.integers(-n, n - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    rng = np.random.default_rng(seed)
    arrays = []
    for s in sizes:
        sh = list(shape)
        sh[dim] = s
        arrays.append(rng.standard_normal(sh))
    if form == "list_kw":
        f = lambda lib, *ts: lib.cat(list(ts), dim=dim)
    else:
        f = lambda lib, *ts: lib.cat(tuple(ts), dim)
    run(f, *arrays, rng=rng)


@pytest.mark.parametrize("form", ["list_kw", "tuple_positional"])
@SETTINGS
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), data=st.data(), seed=seeds)
def test_stack(form, shape, data, seed):
    n = len(shape)
    dim = data.draw(st.integers(-n - 1, n))
    count = data.draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape) for _ in range(count)]
    if form == "list_kw":
        f = lambda lib, *ts: lib.stack(list(ts), dim=dim)
    else:
        f = lambda lib, *ts: lib.stack(tuple(ts), dim)
    run(f, *arrays, rng=rng)


def test_cat_default_dim_and_reuse():
    """cat's dim defaults to 0; a tensor used twice gets both gradient contributions."""
    rng = np.random.default_rng(1)
    run(lambda lib, a, b: lib.cat([a, b, a]) * 2, rng.standard_normal((2, 3)), rng.standard_normal((1, 3)), rng=rng)
    run(lambda lib, a: lib.stack([a, a, a]).sum(0), rng.standard_normal((2, 3)), rng=rng)


# ---------------------------------------------------------------- where / clamp


@pytest.mark.parametrize("form", ["function", "method"])
@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), seed=seeds)
def test_where(form, shapes, seed):
    """where(cond, x, y) with cond, x and y broadcasting together; cond from a comparison."""
    sc, sx, sy = shapes.input_shapes
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(sc)

    def f(lib, x, y):
        cond = lib.tensor(c) > 0
        return lib.where(cond, x, y) if form == "function" else x.where(cond, y)

    run(f, rng.standard_normal(sx), rng.standard_normal(sy), rng=rng)


def test_where_with_scalar_branch():
    rng = np.random.default_rng(2)
    c = rng.standard_normal((3, 4))
    run(lambda lib, x: lib.where(lib.tensor(c) > 0, x, 0.0), rng.standard_normal((3, 4)), rng=rng)
    run(lambda lib, x: lib.where(x > 0, x, x * 0.1), away_from_zero(rng, (3, 4)), rng=rng)


def clamp_inputs(rng, shape, lo=-0.5, hi=0.5):
    """Values at least 0.1 away from both bounds (no kink nearby)."""
    pieces = [rng.uniform(-2, lo - 0.1, shape), rng.uniform(lo + 0.1, hi - 0.1, shape), rng.uniform(hi + 0.1, 2, shape)]
    pick = rng.integers(0, 3, shape)
    return np.choose(pick, pieces)


CLAMPS = {
    "method min max": lambda lib, x: x.clamp(-0.5, 0.5),
    "method kw": lambda lib, x: x.clamp(min=-0.5, max=0.5),
    "method min only": lambda lib, x: x.clamp(min=-0.5),
    "method max only": lambda lib, x: x.clamp(max=0.5),
    "function": lambda lib, x: lib.clamp(x, -0.5, 0.5),
    "function kw": lambda lib, x: lib.clamp(x, min=-0.5, max=0.5),
    "function max only": lambda lib, x: lib.clamp(x, max=0.5),
}


@pytest.mark.parametrize("form", sorted(CLAMPS))
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_clamp(form, shape, seed):
    rng = np.random.default_rng(seed)
    run(CLAMPS[form], clamp_inputs(rng, shape), rng=rng)


# ---------------------------------------------------------------- indexing

INDEXES = {
    "int": lambda x: x[1],
    "negative int": lambda x: x[-1],
    "two ints": lambda x: x[2, -2],
    "slice": lambda x: x[1:3],
    "slice step": lambda x: x[::2],
    "slice negative": lambda x: x[-3:-1],
    "column": lambda x: x[:, 1],
    "ellipsis": lambda x: x[..., -1],
    "None": lambda x: x[None],
    "None middle": lambda x: x[:, None, 1:],
    "mixed": lambda x: x[1:4, ::2, 0],
    "int list repeated": lambda x: x[[0, 0, 2, -1, 0]],
    "int list on dim 1": lambda x: x[:, [1, 1, 0]],
    "two int lists": lambda x: x[[0, 0, 3], [1, 1, -1]],
    "int list + slice": lambda x: x[[2, 2], 1:],
    "empty slice": lambda x: x[2:2],
}


@pytest.mark.parametrize("expr", sorted(INDEXES))
@settings(SETTINGS, max_examples=8)
@given(seed=seeds)
def test_indexing(expr, seed):
    """Basic and integer-array indexing; repeated indices accumulate their gradients."""
    rng = np.random.default_rng(seed)
    run(lambda lib, x: INDEXES[expr](x), rng.standard_normal((4, 3, 2)), rng=rng)


def test_indexing_with_integer_tensor():
    rng = np.random.default_rng(3)
    idx = np.array([1, 1, 0, 3, 1])
    run(lambda lib, x: x[lib.tensor(idx)], rng.standard_normal((4, 3)), rng=rng)
    run(lambda lib, x: x[:, lib.tensor(idx[:3] % 3)], rng.standard_normal((4, 3)), rng=rng)


def test_indexing_with_boolean_mask():
    rng = np.random.default_rng(4)
    m = rng.standard_normal((4, 3))
    run(lambda lib, x: x[lib.tensor(m) > 0], rng.standard_normal((4, 3)), rng=rng)


# ---------------------------------------------------------------- float32 / composite

@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "matmul", "sum", "mean"])
def test_float32_stays_float32(name):
    """Default dtype is float32; results and gradients stay float32 and match torch's float32."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((4, 2)).astype(np.float32)
    ops = {
        "exp": lambda lib, x, y: x.exp(),
        "tanh": lambda lib, x, y: lib.tanh(x),
        "sigmoid": lambda lib, x, y: x.sigmoid(),
        "matmul": lambda lib, x, y: x @ y,
        "sum": lambda lib, x, y: (x * 2).sum(dim=1),
        "mean": lambda lib, x, y: x.mean(),
    }
    xc, yc = chainrule.tensor(a, requires_grad=True), chainrule.tensor(b, requires_grad=True)
    xt, yt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    oc, ot = ops[name](chainrule, xc, yc), ops[name](torch, xt, yt)
    assert oc.dtype == chainrule.float32
    np.testing.assert_allclose(to_numpy(oc), ot.detach().numpy(), rtol=1e-5, atol=1e-6)
    oc.sum().backward()
    ot.sum().backward()
    assert xc.grad.dtype == chainrule.float32
    np.testing.assert_allclose(to_numpy(xc.grad), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_data_from_list_is_float32_by_default():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    assert x.dtype == chainrule.float32
    assert chainrule.tensor([1.0, 2.0], dtype=chainrule.float64).dtype == chainrule.float64
    y = (x * 3).sum()
    y.backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [3.0, 3.0])


# ---------------------------------------------------------------- PyTorch's conventions at kinks and ties

KINKS = {
    "relu at 0": (lambda lib, x: x.relu(), [-1.0, 0.0, 2.0]),
    "abs at 0": (lambda lib, x: x.abs(), [-1.0, 0.0, 2.0]),
    "clamp at its bounds": (lambda lib, x: x.clamp(-1.0, 1.0), [-1.0, 0.0, 1.0, 2.0]),
    "clamp min only at bound": (lambda lib, x: x.clamp(min=0.0), [0.0, 1.0, -1.0]),
    "max() with ties": (lambda lib, x: x.max(), [1.0, 3.0, 3.0, 2.0]),
    "max(dim) with ties": (lambda lib, x: x.max(dim=0).values, [[1.0, 5.0], [1.0, 5.0], [0.0, 2.0]]),
    "where on equal branches": (lambda lib, x: lib.where(x > 0, x, 2 * x), [0.0, 1.0, -1.0]),
}


@pytest.mark.parametrize("case", sorted(KINKS))
def test_kink_and_tie_conventions_match_torch(case):
    """At non-differentiable points the gradient is PyTorch's choice (relu'(0)=0, abs'(0)=0,
    clamp passes the gradient at its bounds, max() splits it evenly among ties)."""
    f, values = KINKS[case]
    check(partial(f, chainrule), partial(f, torch), np.array(values), gradcheck=False)


def test_type_promotion_like_torch():
    a32 = chainrule.tensor([1.0, 2.0], requires_grad=True)
    b64 = chainrule.tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = a32 * b64
    assert y.dtype == chainrule.float64  # as torch.float32 * torch.float64
    y.sum().backward()
    assert a32.grad.dtype == chainrule.float32 and b64.grad.dtype == chainrule.float64
    np.testing.assert_allclose(to_numpy(a32.grad), [3.0, 4.0])
    assert (a32 * 2.5).dtype == chainrule.float32  # Python numbers do not promote
    assert (2 ** a32).dtype == chainrule.float32


# ---------------------------------------------------------------- second order, every op

SECOND_ORDER = {
    "exp": (lambda lib, x, y: x.exp() * y, "any"),
    "log": (lambda lib, x, y: lib.log(x) * y, "positive"),
    "sqrt": (lambda lib, x, y: x.sqrt() * y, "positive"),
    "abs": (lambda lib, x, y: x.abs() * y * y, "nonzero"),
    "sigmoid": (lambda lib, x, y: (x * y).sigmoid(), "any"),
    "tanh": (lambda lib, x, y: lib.tanh(x * y), "any"),
    "relu": (lambda lib, x, y: x.relu() * y * x, "nonzero"),
    "div": (lambda lib, x, y: x / y, "nonzero"),
    "rdiv": (lambda lib, x, y: 2 / x + y, "nonzero"),
    "pow tensor": (lambda lib, x, y: x ** y, "positive"),
    "pow scalar": (lambda lib, x, y: x**3 * y - x**-0.5, "positive"),
    "rpow": (lambda lib, x, y: 2**x * y, "any"),
    "matmul": (lambda lib, x, y: (x @ y.T) ** 2, "any"),
    "matmul 1-D": (lambda lib, x, y: (x[0] @ y[1]) * x[1], "any"),
    "sum mean": (lambda lib, x, y: (x * y).sum(1, keepdim=True) * x.mean(0), "any"),
    "max": (lambda lib, x, y: x.max(dim=1).values * y.max() * x.sum(0)[:2], "distinct"),
    "reshape transpose": (lambda lib, x, y: (x.reshape(3, 2).transpose(0, 1) * y).permute(1, 0).unsqueeze(0).squeeze() ** 2, "any"),
    "index": (lambda lib, x, y: x[[0, 0, 1], 1:] * y[:, None, ::2].sum(), "any"),
    "cat stack": (lambda lib, x, y: lib.cat([x * y, x], dim=1) * lib.stack([y, x]).sum(0).sum(), "any"),
    "where": (lambda lib, x, y: lib.where(x > 0, x * y, y * y), "nonzero"),
    "clamp": (lambda lib, x, y: (x * y).clamp(-0.5, 0.5) * x, "clamp"),
}


@pytest.mark.parametrize("case", sorted(SECOND_ORDER))
@settings(SETTINGS, max_examples=10)
@given(seed=seeds)
def test_second_order(case, seed):
    """create_graph=True: every op's backward is itself differentiable, matching torch."""
    rng = np.random.default_rng(seed)
    f, domain = SECOND_ORDER[case]
    make = {"any": np.random.Generator.standard_normal, "positive": positive, "nonzero": away_from_zero,
            "distinct": distinct, "clamp": lambda r, s: clamp_inputs(r, s) / 2}[domain]

    check_second_order(f, make(rng, (2, 3)), make(rng, (2, 3)), rng=rng)
