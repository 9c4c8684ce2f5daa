"""The graph engine against PyTorch: random DAGs, retain_graph, accumulation,
second derivatives, hooks, retain_grad, leaves, grad_fn structure, grad modes,
and a 10**5-op chain."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule
from helpers import assert_same, to_numpy, cpu_repr

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

# ---------------------------------------------------------------- random DAGs
# Every node broadcasts to shape (2, 3); ops keep values in a tame range and are
# smooth (twice differentiable), so that second derivatives can be compared too.
LEAF_SHAPES = [(2, 3), (3,), (2, 1), (1, 3), ()]
OPS = {
    "add": (2, lambda lib, a, b: a + b),
    "sub": (2, lambda lib, a, b: a - b),
    "mul": (2, lambda lib, a, b: a * b.tanh()),
    "mul_raw": (2, lambda lib, a, b: a.tanh() * b.sigmoid()),
    "safe_div": (2, lambda lib, a, b: a / (1.5 + b * b)),
    "tanh": (1, lambda lib, a: lib.tanh(a)),
    "sigmoid": (1, lambda lib, a: a.sigmoid()),
    "exp_tanh": (1, lambda lib, a: a.tanh().exp()),
    "square": (1, lambda lib, a: a.tanh() ** 2 + a),
    "scale": (1, lambda lib, a: 0.5 * a - 1),
    "reflected": (1, lambda lib, a: 2 / (2 + a.sigmoid())),
    "mean0": (1, lambda lib, a: (a * lib.ones(2, 3, dtype=lib.float64)).mean(0, keepdim=True)),
    "sum1": (1, lambda lib, a: 0.3 * (a * lib.ones(2, 3, dtype=lib.float64)).sum(dim=-1, keepdim=True)),
    "matmul": (2, lambda lib, a, b: 0.3 * (a.tanh() * lib.ones(2, 3, dtype=lib.float64)) @ (b.tanh() * lib.ones(2, 3, dtype=lib.float64)).T @ lib.ones(2, 3, dtype=lib.float64)),
    "index": (1, lambda lib, a: lib.cat([(a * lib.ones(2, 3, dtype=lib.float64))[[1, 1]][:, 1:], (a * lib.ones(2, 3, dtype=lib.float64))[:, :1]], dim=1)),
    "stack_sum": (2, lambda lib, a, b: lib.stack([a * lib.ones(2, 3, dtype=lib.float64), b * lib.ones(2, 3, dtype=lib.float64)]).sum(0)),
}


@st.composite
def programs(draw):
    """A random DAG: leaves, then ops whose operands are any earlier node (so nodes get reused)."""
    n_leaves = draw(st.integers(1, 3))
    leaf_shapes = [draw(st.sampled_from(LEAF_SHAPES)) for _ in range(n_leaves)]
    steps = []
    for i in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(sorted(OPS)))
        arity = OPS[name][0]
        # bias towards recent nodes but allow any earlier node
        args = [draw(st.integers(0, n_leaves + i - 1)) for _ in range(arity)]
        steps.append((name, args))
    n_nodes = n_leaves + len(steps)
    outputs = draw(st.lists(st.integers(n_leaves, n_nodes - 1), min_size=1, max_size=3))
    retained = draw(st.lists(st.integers(n_leaves, n_nodes - 1), max_size=2, unique=True))
    return leaf_shapes, steps, outputs, retained, draw(st.integers(0, 2**32 - 1))


def build(lib, leaf_arrays, steps, retained=()):
    nodes = [lib.tensor(a.copy(), requires_grad=True) for a in leaf_arrays]
    for name, args in steps:
        nodes.append(OPS[name][1](lib, *(nodes[j] for j in args)))
    for j in retained:
        nodes[j].retain_grad()
    return nodes


def compare_grads(cr_nodes, th_nodes, which, what):
    for j in which:
        t = th_nodes[j].grad
        c = cr_nodes[j].grad
        if t is None:
            assert c is None, f"{what}: node {j} has .grad, torch's is None"
        else:
            assert c is not None, f"{what}: node {j} .grad is None"
            assert_same(c, t, f"{what}: grad of node {j}")


@SETTINGS
@given(prog=programs())
def test_random_dag_against_torch(prog):
    """Several outputs with random seeds, backward one after the other (retain_graph),
    gradients accumulating in the leaves and in retain_grad()'ed intermediates; then
    one more backward through the retained graph accumulates again."""
    leaf_shapes, steps, outputs, retained, seed = prog
    rng = np.random.default_rng(seed)
    leaf_arrays = [rng.standard_normal(s) for s in leaf_shapes]
    cr, th = build(chainrule, leaf_arrays, steps, retained), build(torch, leaf_arrays, steps, retained)
    for j in range(len(th)):
        assert_same(cr[j], th[j], f"forward node {j}")
    leaves = range(len(leaf_shapes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when reading a non-leaf's .grad
        for k, j in enumerate(outputs):
            s = rng.standard_normal(tuple(th[j].shape))
            cr[j].backward(chainrule.tensor(s), retain_graph=True)
            th[j].backward(torch.tensor(s), retain_graph=True)
            compare_grads(cr, th, leaves, f"after backward {k}")
            compare_grads(cr, th, retained, f"retained, after backward {k}")
        # second pass over the retained graph: gradients accumulate on top
        j = outputs[0]
        s = rng.standard_normal(tuple(th[j].shape))
        cr[j].backward(chainrule.tensor(s))
        th[j].backward(torch.tensor(s))
        compare_grads(cr, th, leaves, "after the second pass")
        compare_grads(cr, th, retained, "retained, after the second pass")
        others = [j for j in range(len(leaf_shapes), len(th)) if j not in retained]
        compare_grads(cr, th, others, "non-leaf without retain_grad")


@settings(SETTINGS, max_examples=25)
@given(prog=programs())
def test_random_dag_second_derivatives(prog):
    """autograd.grad(create_graph=True) gives differentiable gradients: a Hessian-vector
    product through the random DAG equals torch's."""
    leaf_shapes, steps, outputs, _, seed = prog
    rng = np.random.default_rng(seed)
    leaf_arrays = [rng.standard_normal(s) for s in leaf_shapes]
    j = outputs[-1]
    results = {}
    for lib in (chainrule, torch):
        nodes = build(lib, leaf_arrays, steps)
        leaves = nodes[: len(leaf_shapes)]
        r = np.random.default_rng(seed + 1)
        seed_out = lib.tensor(r.standard_normal(tuple(nodes[j].shape)))
        grads = lib.autograd.grad(nodes[j], leaves, grad_outputs=seed_out, create_graph=True, allow_unused=True)
        assert isinstance(grads, tuple) and len(grads) == len(leaves)
        assert all(x.grad is None for x in leaves), "autograd.grad must leave .grad alone"
        total = None
        for g in grads:
            if g is None:
                continue
            term = (g * lib.tensor(r.standard_normal(tuple(g.shape)))).sum()
            total = term if total is None else total + term
        first = [np.zeros(tuple(x.shape)) if g is None else to_numpy(g) for g, x in zip(grads, leaves)]
        if total is not None and total.requires_grad:
            total.backward()
        # a leaf the gradients do not depend on has no second derivative: zero
        second = [np.zeros(tuple(x.shape)) if x.grad is None else to_numpy(x.grad) for x in leaves]
        results[lib.__name__] = first, second
    for c, t in zip(results["chainrule"], results["torch"]):
        for a, b in zip(c, t):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------- second derivatives, by hand


def test_second_and_third_derivative_of_cube():
    x = chainrule.tensor([1.5, -2.0], dtype=chainrule.float64, requires_grad=True)
    (g,) = chainrule.autograd.grad((x**3).sum(), x, create_graph=True)
    assert_same(g, 3 * np.array([1.5, -2.0]) ** 2, "first")
    (h,) = chainrule.autograd.grad(g.sum(), x, create_graph=True)
    assert_same(h, 6 * np.array([1.5, -2.0]), "second")
    (t,) = chainrule.autograd.grad(h.sum(), x)
    assert_same(t, [6.0, 6.0], "third")
    assert x.grad is None


def test_double_backward_via_backward_create_graph():
    """backward(create_graph=True) leaves a differentiable .grad, as in torch."""
    warnings.simplefilter("ignore")  # torch warns about the grad<->param reference cycle
    vals = np.array([0.3, -1.2, 2.0])
    res = []
    for lib in (chainrule, torch):
        x = lib.tensor(vals, requires_grad=True)
        y = (x.tanh() * x).sum()
        y.backward(create_graph=True)
        g = x.grad
        assert g.requires_grad
        (h,) = lib.autograd.grad(g.sum(), x)
        res.append((to_numpy(g), to_numpy(h)))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-10)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=1e-10)


def test_grad_without_create_graph_is_not_differentiable():
    x = chainrule.tensor([1.0, 2.0], dtype=chainrule.float64, requires_grad=True)
    (g,) = chainrule.autograd.grad((x * x).sum(), [x])
    assert not g.requires_grad and g.grad_fn is None
    assert_same(g, [2.0, 4.0])


def test_autograd_grad_several_inputs_and_outputs():
    a, b = np.array([1.0, 2.0]), np.array([[0.5], [-1.0]])
    res = []
    for lib in (chainrule, torch):
        x, w = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        y1 = (x * w).sum()
        y2 = (w.exp() * x).mean()
        res.append(lib.autograd.grad([y1, y2], [x, w]))
        assert x.grad is None and w.grad is None
    assert isinstance(res[0], tuple) and len(res[0]) == 2
    for c, t in zip(*res):
        assert_same(c, t)


# ---------------------------------------------------------------- accumulation, retain_grad, leaves


def test_accumulation_across_backward_calls_until_zeroed():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    for k in range(1, 4):
        (x * x).sum().backward()
        assert_same(x.grad, k * np.array([2.0, 4.0]), f"after {k} calls")
    x.grad.zero_()
    assert_same(x.grad, [0.0, 0.0])
    (3 * x).sum().backward()
    assert_same(x.grad, [3.0, 3.0])
    x.grad = None
    (x * 2).sum().backward()
    assert_same(x.grad, [2.0, 2.0])


def test_accumulation_within_one_graph():
    x = chainrule.tensor([3.0], requires_grad=True)
    y = x * x + x + x * 2  # x used four times
    y.backward()
    assert_same(x.grad, [2 * 3.0 + 1 + 2])


def test_retain_graph_twice_doubles():
    x = chainrule.tensor([1.0, -1.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = to_numpy(x.grad).copy()
    y.backward()
    assert_same(x.grad, 2 * g1)


def test_retain_grad_and_is_leaf():
    x = chainrule.tensor([2.0, 1.0], requires_grad=True)
    a = x * 3
    b = x * 4
    a.retain_grad()
    (a * b).sum().backward()
    assert x.is_leaf and not a.is_leaf and not b.is_leaf
    assert_same(a.grad, [8.0, 4.0])  # = b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert b.grad is None
    assert_same(x.grad, 24 * np.array([2.0, 1.0]))
    c = chainrule.tensor([1.0])
    assert c.is_leaf and not c.requires_grad and c.grad_fn is None
    d = c * 2  # no input requires grad: still a leaf, no grad_fn
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None


def test_requires_grad_propagation_and_requires_grad_():
    x = chainrule.tensor([1.0, 2.0])
    w = chainrule.tensor([3.0, 4.0])
    assert not (x * w).requires_grad
    w.requires_grad_()
    assert w.requires_grad and w.is_leaf
    y = (x * w).sum()
    assert y.requires_grad
    y.backward()
    assert_same(w.grad, [1.0, 2.0])
    assert x.grad is None
    w.requires_grad_(False)
    assert not w.requires_grad


def test_detach():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert_same(d, [2.0, 4.0])
    z = (y * d).sum()  # d is a constant here
    z.backward()
    assert_same(x.grad, [4.0, 8.0])


# ---------------------------------------------------------------- hooks


def test_register_hook_against_torch():
    """A hook sees the gradient; a hook that returns a tensor replaces it downstream."""
    vals = np.array([0.5, -1.0, 2.0])
    seen, grads = {}, {}
    for lib in (chainrule, torch):
        x = lib.tensor(vals, requires_grad=True)
        a = x.tanh()
        b = a * x
        a.register_hook(lambda g, lib=lib: seen.setdefault(lib.__name__, []).append(to_numpy(g).copy()))
        b.register_hook(lambda g: g * 3)
        x.register_hook(lambda g, lib=lib: seen.setdefault(lib.__name__ + "-leaf", []).append(to_numpy(g).copy()))
        b.sum().backward()
        grads[lib.__name__] = to_numpy(x.grad)
    np.testing.assert_allclose(grads["chainrule"], grads["torch"], rtol=1e-12)
    for key in ("", "-leaf"):
        assert len(seen["chainrule" + key]) == len(seen["torch" + key]) == 1
        np.testing.assert_allclose(seen["chainrule" + key][0], seen["torch" + key][0], rtol=1e-12)


def test_hook_returning_none_keeps_gradient_and_hooks_fire_per_backward():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    y = x * x
    y.register_hook(lambda g: calls.append(1))
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    assert len(calls) == 2
    assert_same(x.grad, [4.0, 8.0])


# ---------------------------------------------------------------- grad_fn structure


def node_name(node):
    return node.name()  # PyTorch nodes and chainrule nodes both name themselves


def signature(node, leaves):
    """The graph below ``node`` as nested tuples: op names, leaves by position, None for constants."""
    if node is None:
        return None
    if hasattr(node, "variable"):
        return ("leaf", next(i for i, v in enumerate(leaves) if v is node.variable))
    return (node_name(node), tuple(signature(n, leaves) for n, _ in node.next_functions))


def test_grad_fn_next_functions_match_torch():
    sigs = []
    for lib in (chainrule, torch):
        x = lib.tensor([2.0, 1.0], requires_grad=True)
        y = lib.tensor([1.0, 3.0], requires_grad=True)
        z = lib.tensor([5.0, 2.0], requires_grad=True)
        a = x + 2 * y
        b = a + z / 2
        c = (b * a - y.detach()).exp()
        assert x.grad_fn is None
        for fn, idx in c.grad_fn.next_functions:
            assert isinstance(idx, int)
        sigs.append(signature(c.grad_fn, [x, y, z]))
    assert sigs[0] == sigs[1]
    assert sigs[1][0] == "ExpBackward0"


def test_repr_like_torch():
    x = chainrule.tensor([2.0, 1.0], requires_grad=True)
    a = x + chainrule.tensor([2.0, 6.0])
    assert cpu_repr(a) == "tensor([4., 7.], grad_fn=<AddBackward0>)"
    assert cpu_repr(x) == "tensor([2., 1.], requires_grad=True)"
    assert cpu_repr(x.detach()) == "tensor([2., 1.])"
    assert "AddBackward0" in repr(a.grad_fn)


# ---------------------------------------------------------------- grad modes


def test_no_grad_and_enable_grad_context_managers():
    x = chainrule.tensor([1.0], requires_grad=True)
    with chainrule.no_grad():
        y = x * 2
        with chainrule.enable_grad():
            z = x * 3
        w = x * 4
    v = x * 5
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert not w.requires_grad
    assert v.requires_grad


def test_no_grad_restored_after_exception():
    x = chainrule.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError):
        with chainrule.no_grad():
            raise ValueError("boom")
    assert (x * 2).requires_grad


def test_no_grad_and_enable_grad_decorators():
    x = chainrule.tensor([1.0], requires_grad=True)

    @chainrule.no_grad()
    def frozen(t):
        return t * 2

    @chainrule.enable_grad()
    def live(t):
        return t * 2

    assert not frozen(x).requires_grad
    assert (x * 1).requires_grad
    with chainrule.no_grad():
        assert live(x).requires_grad
        assert not (x * 1).requires_grad
    assert frozen.__name__ == "frozen"


# ---------------------------------------------------------------- long chain


def test_long_chain_backpropagates_without_recursion_error():
    n = 10**5
    x = chainrule.tensor(1.0, dtype=chainrule.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0000001
    assert abs(y.item() - 1.0000001**n) < 1e-9
    y.backward()
    assert abs(x.grad.item() - 1.0000001**n) < 1e-9
    del y  # freeing a deep graph must not overflow the stack either


def test_requires_grad_attribute_setter():
    x = chainrule.tensor([1.0, 2.0])
    x.requires_grad = True
    (x * x).sum().backward()
    assert_same(x.grad, [2.0, 4.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf variables"):
        (torch.ones(1, requires_grad=True) * 2).requires_grad = False
