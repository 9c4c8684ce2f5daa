"""chainrule.func's torch.func transforms against torch.func itself, float64, real values.

Each case runs the same function on both libraries (``lib`` is ``torch`` or ``chainrule``) and
compares every tensor of the results.
"""
import functools

import numpy as np
import pytest
import torch
import torch.func

import chainrule
import chainrule.func
from chainrule.batching import BatchedTensor
from chainrule.testing import assert_close
from test_func import lesson4_pair

RNG = np.random.default_rng(15)


def func_of(lib):
    return torch.func if lib is torch else chainrule.func


def tensors(lib, *arrays):
    return [lib.tensor(a) for a in arrays]


def same(ours, theirs, rtol=1e-10, atol=1e-12):
    """Both results have the same tree structure and the same values."""
    ours_leaves, ours_spec = chainrule.func.tree_flatten(ours)
    theirs_leaves, theirs_spec = chainrule.func.tree_flatten(theirs)
    assert len(ours_leaves) == len(theirs_leaves)
    for o, t in zip(ours_leaves, theirs_leaves):
        assert not isinstance(o, BatchedTensor), "a batched tensor escaped its vmap"
        assert tuple(o.shape) == tuple(t.shape)
        assert not o.requires_grad
        assert_close(o, t, rtol=rtol, atol=atol)


def both(program, *arrays):
    """``program(lib, *tensors)`` on torch and on chainrule, compared."""
    same(program(chainrule, *tensors(chainrule, *arrays)), program(torch, *tensors(torch, *arrays)))


X = RNG.standard_normal((5, 3))
W = RNG.standard_normal((4, 3))
B = RNG.standard_normal(4)


def predict(lib, weight, bias, x):
    return lib.tanh(lib.nn.functional.linear(x, weight, bias))


# --------------------------------------------------------------------------- grad and friends
def test_grad_of_sin_is_cos_and_grad_of_grad_is_minus_sin():
    def program(lib, x):
        f = func_of(lib)
        return (f.grad(lambda t: t.sin())(x[0, 0]), f.grad(f.grad(lambda t: t.sin()))(x[0, 0]),
                f.vmap(f.grad(lambda t: t.sin()))(x[:, 0]))
    both(program, X)


def test_grad_argnums_has_aux_and_grad_and_value():
    def program(lib, w, b, x):
        f = func_of(lib)

        def loss(w, b, x):
            out = predict(lib, w, b, x)
            return (out ** 2).sum(), out
        g_w = f.grad(lambda w, b, x: loss(w, b, x)[0])(w, b, x)
        (g_w2, g_b), aux = f.grad(loss, argnums=(0, 1), has_aux=True)(w, b, x)
        g_x, (value, aux2) = f.grad_and_value(loss, argnums=2, has_aux=True)(w, b, x)
        g_neg = f.grad(lambda w, b, x: loss(w, b, x)[0], argnums=-1)(w, b, x)
        return g_w, g_w2, g_b, aux, g_x, value, aux2, g_neg
    both(program, W, B, X)


def test_grad_of_a_dict_of_parameters():
    def program(lib, w, b, x):
        f = func_of(lib)
        params = {"weight": w, "bias": b}
        return f.grad(lambda p: predict(lib, p["weight"], p["bias"], x).sum())(params)
    both(program, W, B, X)


def test_vjp_and_jvp():
    def program(lib, w, b, x, v, t):
        f = func_of(lib)
        out, vjp_fn = f.vjp(functools.partial(predict, lib), w, b, x)
        out2, product = f.jvp(lambda x: predict(lib, w, b, x), (x,), (t,))
        return out, vjp_fn(v), vjp_fn(2 * v), out2, product
    both(program, W, B, X, RNG.standard_normal((5, 4)), RNG.standard_normal((5, 3)))


def test_jacrev_jacfwd_hessian_with_argnums():
    def program(lib, w, b, x):
        f = func_of(lib)
        return (f.jacrev(functools.partial(predict, lib), argnums=2)(w, b, x[0]),
                f.jacfwd(functools.partial(predict, lib), argnums=2)(w, b, x[0]),
                f.jacrev(functools.partial(predict, lib), argnums=(0, 1))(w, b, x[0]),
                f.jacfwd(functools.partial(predict, lib), argnums=(0, 1))(w, b, x[0]),
                f.hessian(lambda x: predict(lib, w, b, x).sum())(x[0]))
    both(program, W, B, X)


def test_compositions_jacrev_of_jacrev_and_vmap_of_jacrev():
    def program(lib, w, b, x):
        f = func_of(lib)

        def energy(x):
            return (predict(lib, w, b, x) * x.sum()).sum()
        return (f.jacrev(f.jacrev(energy))(x[0]),
                f.vmap(f.jacrev(lambda x: predict(lib, w, b, x)))(x),
                f.vmap(f.hessian(energy))(x),
                f.jacfwd(f.jacrev(energy))(x[1]))
    both(program, W, B, X)


def test_levels_keep_vmap_and_grad_apart():
    """grad inside vmap: one gradient per sample of a parameter shared by all; grad outside
    vmap: the gradient of a sum over the samples that vmap computed at once."""
    def program(lib, w, b, x):
        f = func_of(lib)
        per_sample = f.vmap(f.grad(lambda w, x: predict(lib, w, b, x).sum()), in_dims=(None, 0))(w, x)
        of_vmap = f.grad(lambda w: f.vmap(lambda x: predict(lib, w, b, x).sum())(x).sum())(w)
        # the captured x is a constant for the inner grad, not the outer one's variable
        nested = f.grad(lambda x: f.grad(lambda y: (x * y).sum())(x * 2.0).sum())(x[0])
        per_sample_of_grad_of_vmap = f.vmap(f.grad(lambda w, x: f.vmap(
            lambda row: predict(lib, w, b, row).sum())(x).sum()), in_dims=(None, 0))(w, x.reshape(5, 1, 3))
        # per-sample gradients inside an outer grad (and inside plain autograd)
        outer = f.grad(lambda w: f.vmap(f.grad(lambda w, x: predict(lib, w, b, x).sum()),
                                        in_dims=(None, 0))(w, x).pow(2).sum())(w)
        w_leaf = w.detach().requires_grad_(True)
        per_sample_of_leaf = f.vmap(f.grad(lambda w, x: predict(lib, w, b, x).sum()), in_dims=(None, 0))(w_leaf, x)
        (through_autograd,) = lib.autograd.grad(per_sample_of_leaf.pow(2).sum(), [w_leaf])
        return per_sample, of_vmap, nested, per_sample_of_grad_of_vmap, outer, through_autograd
    both(program, W, B, X)


# --------------------------------------------------------------------------- vmap
def test_vmap_in_dims_out_dims_and_nesting():
    def program(lib, a, m):
        f = func_of(lib)
        return (f.vmap(lambda r, m: m @ r, in_dims=(1, None))(a.T, m),
                f.vmap(lambda r: r.exp() * r.sum(), out_dims=1)(a),
                f.vmap(lib.dot)(a, a.exp()),
                f.vmap(f.vmap(lib.mul, in_dims=(None, 0)), in_dims=(0, None))(a[:, 0], a[0]),
                f.vmap(lambda r: (r, r.sum()), out_dims=(1, 0))(a.reshape(5, 3, 1)),
                f.vmap(lambda r: r.sum(), in_dims=-1)(a),
                f.vmap(lambda r: m.sum())(a))
    both(program, X, W)


def test_vmap_over_dicts_lists_and_tuples():
    def program(lib, a, b):
        f = func_of(lib)
        out = f.vmap(lambda d, pair: {"sum": d["x"] * pair[0] + d["y"], "list": [pair[1].tanh()]},
                     in_dims=({"x": 0, "y": None}, (0, 1)))({"x": a, "y": b[0]}, (a, a.T))
        return out
    both(program, X, RNG.standard_normal((2, 3)))


def test_vmap_of_a_module_and_model_ensembling():
    torch.manual_seed(0)
    t_models = [torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
                for _ in range(3)]
    c_models = [chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.ReLU(),
                                        chainrule.nn.Linear(4, 2)).double() for _ in range(3)]
    for t_model, c_model in zip(t_models, c_models):
        for p, q in zip(t_model.parameters(), c_model.parameters()):
            q.data = chainrule.tensor(p.detach().numpy())
    x = RNG.standard_normal((3, 6, 3))

    def program(lib, models, x):
        f = func_of(lib)
        params, buffers = f.stack_module_state(models)
        call = lambda p, b, x: f.functional_call(models[0], (p, b), (x,))  # noqa: E731
        assert all(p.requires_grad for p in params.values())
        return (f.vmap(call)(params, buffers, x).detach(),
                f.vmap(call, in_dims=(0, 0, None))(params, buffers, x[0]).detach(),
                {k: v.detach() for k, v in params.items()})
    same(program(chainrule, c_models, chainrule.tensor(x)), program(torch, t_models, torch.tensor(x)))
    assert c_models[0][0].weight.shape == (4, 3)  # functional_call put the module back as it was


def test_per_sample_gradients_of_a_classifier_match_torch_and_per_sample_grad():
    torch.manual_seed(1)
    t_model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    c_model = chainrule.nn.Sequential(chainrule.nn.Linear(4, 6), chainrule.nn.Tanh(),
                                      chainrule.nn.Linear(6, 3)).double()
    for p, q in zip(t_model.parameters(), c_model.parameters()):
        q.data = chainrule.tensor(p.detach().numpy())
    x, y = RNG.standard_normal((7, 4)), RNG.integers(0, 3, 7)

    def program(lib, model, x, y):
        f = func_of(lib)
        params = {k: v.detach() for k, v in model.named_parameters()}

        def loss(params, sample, target):
            logits = f.functional_call(model, (params, {}), (sample.unsqueeze(0),))
            return lib.nn.functional.cross_entropy(logits, target.unsqueeze(0))
        return f.vmap(f.grad(loss), in_dims=(None, 0, 0))(params, x, y)
    ours = program(chainrule, c_model, chainrule.tensor(x), chainrule.tensor(y))
    same(ours, program(torch, t_model, torch.tensor(x), torch.tensor(y)))


def test_randomness():
    x = chainrule.zeros(4, 3)
    with pytest.raises(RuntimeError) as ours:
        chainrule.func.vmap(lambda r: r + chainrule.randn(3))(x)
    with pytest.raises(RuntimeError) as theirs:
        torch.func.vmap(lambda r: r + torch.randn(3))(torch.zeros(4, 3))
    assert str(ours.value) == str(theirs.value)
    same_rows = chainrule.func.vmap(lambda r: r + chainrule.randn(3), randomness="same")(x)
    assert (same_rows == same_rows[0]).all().item()
    different = chainrule.func.vmap(lambda r: r + chainrule.rand(3), randomness="different")(x)
    assert tuple(different.shape) == (4, 3) and not (different == different[0]).all().item()
    assert ((different >= 0) & (different < 1)).all().item()
    with pytest.raises(RuntimeError, match="Only allowed values for randomness are 'error', "
                                           "'different', or 'same'. Got sometimes"):
        chainrule.func.vmap(lambda r: r, randomness="sometimes")


# --------------------------------------------------------------------------- random graphs
UNARY = ["exp_small", "tanh", "sigmoid", "sin", "square", "neg", "relu", "abs_plus", "sqrt_abs"]
BINARY = ["add", "mul", "sub", "div_safe", "maximum", "where"]
REDUCE = ["sum_last", "mean_first", "max_last", "min_all", "softmax_last", "cumsum_last", "transpose", "reshape_flat",
          "unsqueeze_expand", "index_slice", "matmul_w", "stack_cat"]


def apply_op(lib, name, a, b, w):
    """One op of a random graph, the same in both libraries; shapes stay (3, 4)."""
    return {
        "exp_small": lambda: (a * 0.3).exp(), "tanh": lambda: a.tanh(), "sigmoid": lambda: a.sigmoid(),
        "sin": lambda: a.sin(), "square": lambda: a * a, "neg": lambda: -a, "relu": lambda: a.relu(),
        "abs_plus": lambda: a.abs() + 0.5, "sqrt_abs": lambda: (a.abs() + 1.0).sqrt(),
        "add": lambda: a + b, "mul": lambda: a * b, "sub": lambda: a - 2.0 * b,
        "div_safe": lambda: a / (b * b + 1.0), "maximum": lambda: lib.maximum(a, b),
        "where": lambda: lib.where(a > b, a, b * 0.5),
        "sum_last": lambda: a.sum(-1, keepdim=True) + b, "max_last": lambda: a.max(-1, keepdim=True)[0] * b,
        "min_all": lambda: a.min() + a, "mean_first": lambda: a.mean(0) * b,
        "softmax_last": lambda: lib.softmax(a, dim=-1),
        "cumsum_last": lambda: lib.cumsum(a, dim=1) * 0.3,
        "transpose": lambda: a.T.reshape(3, 4), "reshape_flat": lambda: a.reshape(-1).reshape(3, 4),
        "unsqueeze_expand": lambda: a[:, :1].expand(3, 4) + a,
        "index_slice": lambda: lib.cat([a[:, 2:], a[:, :2]], dim=1),
        "matmul_w": lambda: (a @ w).tanh(), "stack_cat": lambda: lib.stack([a, b], dim=0).sum(0),
    }[name]()


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_under_vmap_and_vmap_of_grad(seed):
    rng = np.random.default_rng(seed)
    ops = list(rng.choice(UNARY + BINARY + REDUCE, size=6))
    in_dims = (int(rng.integers(0, 3)), None if seed % 3 == 0 else 0)
    batch = 5
    a_shape = [3, 4]
    a_shape.insert(in_dims[0], batch)
    a = rng.standard_normal(a_shape)
    b = rng.standard_normal((3, 4)) if in_dims[1] is None else rng.standard_normal((batch, 3, 4))
    w = rng.standard_normal((4, 4)) * 0.5

    def graph(lib, a, b, w):
        value = a
        for name in ops:
            value = apply_op(lib, name, value, b, w)
        return value

    def program(lib, a, b, w):
        f = func_of(lib)
        values = f.vmap(lambda a, b: graph(lib, a, b, w), in_dims=in_dims)(a, b)
        grads = f.vmap(f.grad(lambda a, b: graph(lib, a, b, w).sum(), argnums=(0, 1)), in_dims=in_dims)(a, b)
        return values, grads
    same(program(chainrule, *tensors(chainrule, a, b, w)), program(torch, *tensors(torch, a, b, w)),
         rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("seed", [0, 5, 7, 14, 15, 20, 33, 41])
def test_random_graphs_under_jacobians_of_vmap_and_vmap_of_jacobians(seed):
    rng = np.random.default_rng(seed)
    ops = list(rng.choice(UNARY + BINARY + REDUCE, size=4))
    a, b, w = rng.standard_normal((3, 3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((4, 4)) * 0.5

    def program(lib, a, b, w):
        f = func_of(lib)

        def graph(a):
            for name in ops:
                a = apply_op(lib, name, a, b, w)
            return a
        return (f.vmap(f.jacrev(graph))(a), f.vmap(f.jacfwd(graph))(a),
                f.jacrev(lambda a: f.vmap(graph)(a))(a[:2]), f.vmap(f.hessian(lambda a: graph(a).sum()))(a[:2]))
    same(program(chainrule, *tensors(chainrule, a, b, w)), program(torch, *tensors(torch, a, b, w)),
         rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_under_nested_vmap_and_grad_of_nested_vmap(seed):
    rng = np.random.default_rng(1000 + seed)
    ops = list(rng.choice(UNARY + BINARY + REDUCE, size=5))
    outer_dim, inner_dim, out_dim = int(rng.integers(0, 4)), int(rng.integers(0, 3)), int(rng.integers(0, 3))
    shape = [3, 4]
    shape.insert(inner_dim, 2)
    shape.insert(outer_dim, 5)
    a, b, w = rng.standard_normal(shape), rng.standard_normal((3, 4)), rng.standard_normal((4, 4)) * 0.5

    def program(lib, a, b, w):
        f = func_of(lib)

        def graph(a, b):
            for name in ops:
                a = apply_op(lib, name, a, b, w)
            return a
        nested = f.vmap(f.vmap(graph, in_dims=(inner_dim, None), out_dims=out_dim), in_dims=(outer_dim, None))
        return nested(a, b), f.grad(lambda a: nested(a, b).sum())(a)
    same(program(chainrule, *tensors(chainrule, a, b, w)), program(torch, *tensors(torch, a, b, w)),
         rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- bad input
def messages(program):
    """The exception each library raises for ``program(lib)``: same type and same words."""
    found = []
    for lib in (chainrule, torch):
        with pytest.raises(Exception) as error:
            program(lib)
        found.append(error)
    ours, theirs = found
    return ours, theirs


def assert_same_error(program):
    ours, theirs = messages(program)
    assert ours.type is theirs.type, (ours.value, theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_mismatched_batch_sizes():
    assert_same_error(lambda lib: func_of(lib).vmap(lambda a, b: a + b)(lib.zeros(3, 2), lib.zeros(4, 2)))


@pytest.mark.parametrize("in_dims", [2, -3, 0.5, (0, 0), None, [0], ({"b": 0},), (0, {"a": 0})])
def test_in_dims_that_do_not_fit(in_dims):
    def vmapped_identity(a):
        return a
    assert_same_error(lambda lib: func_of(lib).vmap(vmapped_identity, in_dims=in_dims)(lib.zeros(3, 2)))
    assert_same_error(lambda lib: func_of(lib).vmap(lambda d: d["a"], in_dims=in_dims)({"a": lib.zeros(3, 2)}))


@pytest.mark.parametrize("out_dims", [2, (0, 1), "x"])
def test_out_dims_that_do_not_fit(out_dims):
    def vmapped_identity(a):
        return a
    assert_same_error(lambda lib: func_of(lib).vmap(vmapped_identity, out_dims=out_dims)(lib.zeros(3, 2)))


def test_bad_argnums_and_cotangents():
    assert_same_error(lambda lib: func_of(lib).grad(lambda a: a.sum(), argnums=(0, 0))(lib.zeros(3)))
    assert_same_error(lambda lib: func_of(lib).grad(lambda a: a.sum(), argnums=1.5)(lib.zeros(3)))
    assert_same_error(lambda lib: func_of(lib).jacrev(lambda a: 3.0)(lib.zeros(3)))
    assert_same_error(lambda lib: func_of(lib).vjp(lambda a: a * 2, lib.zeros(3))[1]((lib.zeros(3), lib.zeros(3))))


def test_in_dims_for_a_number_and_no_inputs():
    def double(a):
        return a * 2
    assert_same_error(lambda lib: func_of(lib).vmap(double, in_dims=(0,))(5))
    assert_same_error(lambda lib: func_of(lib).vmap(double)())


def test_grad_of_a_non_scalar_output_and_of_no_tensor():
    assert_same_error(lambda lib: func_of(lib).grad(lambda a: a * 2)(lib.zeros(3, 2)))
    assert_same_error(lambda lib: func_of(lib).grad(lambda a: 3.0)(lib.zeros(3, 2)))
    assert_same_error(lambda lib: func_of(lib).grad(lambda a: a.sum(), has_aux=True)(lib.zeros(3)))
    assert_same_error(lambda lib: func_of(lib).grad(lambda a: a.sum(), argnums=2)(lib.zeros(3)))


def test_vmap_of_a_function_returning_no_tensor():
    def no_tensor(a):
        return None

    def a_number(a):
        return 3.0
    assert_same_error(lambda lib: func_of(lib).vmap(no_tensor)(lib.zeros(3, 2)))
    assert_same_error(lambda lib: func_of(lib).vmap(a_number)(lib.zeros(3, 2)))


def test_data_dependent_control_flow_and_item():
    assert_same_error(lambda lib: func_of(lib).vmap(lambda a: a if a.sum() > 0 else -a)(lib.ones(3, 2)))
    assert_same_error(lambda lib: func_of(lib).vmap(lambda a: a.sum().item())(lib.ones(3, 2)))


def test_an_op_without_a_batching_rule_is_named():
    class Cube(chainrule.function.Function):  # a new op, written without a batching rule
        def forward(self, xp, a):
            return a * a * a

        def backward(self, grad):
            return (3.0 * grad * self.inputs[0] ** 2,)
    assert tuple(Cube()(chainrule.ones(3)).shape) == (3,)
    with pytest.raises(RuntimeError, match=r"vmap: chainrule has no batching rule for Cube \(CubeBackward0\)"):
        chainrule.func.vmap(lambda a: Cube()(a))(chainrule.ones(3, 2))


def test_max_and_min_along_a_dim_and_over_all_elements():
    def program(lib, x):
        f = func_of(lib)
        return (f.vmap(lambda a: a.max())(x), f.vmap(lambda a: a.min(dim=1).values)(x),
                f.vmap(lambda a: a.max(dim=0).indices)(x), f.vmap(f.grad(lambda a: a.max()))(x),
                f.vmap(f.grad(lambda a: a.min(dim=-1, keepdim=True).values.sum()))(x),
                f.grad(lambda a: f.vmap(lambda r: r.max())(a).sum())(x),
                f.vmap(lambda a: a.max(), in_dims=2)(x))
    both(program, RNG.standard_normal((4, 3, 5)))


def test_vmap_runs_the_function_once_on_the_whole_batch():
    calls = []

    def traced(row):
        calls.append(tuple(row.shape))
        return row * 2.0
    out = chainrule.func.vmap(traced)(chainrule.ones(1000, 3))
    assert calls == [(3,)] and tuple(out.shape) == (1000, 3)


def test_values_read_outside_a_rule_and_in_place_updates_are_refused_clearly():
    with pytest.raises(RuntimeError, match="vmap: chainrule has no batching rule for argmax"):
        chainrule.func.vmap(lambda a: a.argmax())(chainrule.ones(3, 2))

    def in_place(a):
        a += 1.0
        return a
    with pytest.raises(RuntimeError, match="vmap: chainrule does not batch in-place updates"):
        chainrule.func.vmap(in_place)(chainrule.ones(3, 2))
    with pytest.raises(RuntimeError, match="read the values of a batched tensor outside a batching rule"):
        chainrule.func.vmap(lambda a: chainrule.tensor(a))(chainrule.ones(3, 2))


def test_lesson4_network_vmap_of_grad_matches_torch_func_and_per_sample_grad():
    t_model, c_model = lesson4_pair()
    x = RNG.standard_normal((1000, 1))

    def program(lib, model, x):
        f = func_of(lib)
        params = {k: v.detach() for k, v in model.named_parameters()}

        def output(p, sample):
            return f.functional_call(model, p, (sample.unsqueeze(0),)).sum()
        return f.vmap(f.grad(output), in_dims=(None, 0))(params, x)
    ours = program(chainrule, c_model, chainrule.tensor(x))
    same(ours, program(torch, t_model, torch.tensor(x)))
    same(ours, chainrule.func.per_sample_grad(c_model, chainrule.tensor(x)))
