"""chainrule.func against PyTorch: per-sample gradients, Jacobians, per-loss-term gradients."""
import numpy as np
import pytest
import torch
from torch.func import functional_call, grad, vmap

import chainrule
from chainrule.testing import assert_close, to_numpy

RNG = np.random.default_rng(1234)


def twin_models(build_torch, build_chainrule):
    """A PyTorch model and a chainrule model with the same float64 weights."""
    torch.manual_seed(0)
    t_model = build_torch().double()
    c_model = build_chainrule().double()
    for (t_name, t_p), (c_name, c_p) in zip(t_model.named_parameters(), c_model.named_parameters()):
        assert t_name == c_name
        c_p.data = chainrule.tensor(t_p.detach().numpy())
    return t_model, c_model


def lesson4_pair():
    return twin_models(
        lambda: torch.nn.Sequential(torch.nn.Linear(1, 5, bias=False), torch.nn.Sigmoid(),
                                    torch.nn.Linear(5, 1, bias=False), torch.nn.Identity()),
        lambda: chainrule.nn.Sequential(chainrule.nn.Linear(1, 5, bias=False), chainrule.nn.Sigmoid(),
                                        chainrule.nn.Linear(5, 1, bias=False), chainrule.nn.Identity()))


def mlp_pair():
    return twin_models(
        lambda: torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)),
        lambda: chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.Tanh(),
                                        chainrule.nn.Linear(4, 2)))


class TwiceTorch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Linear(2, 2)
        self.head = torch.nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.head(torch.tanh(self.inner(torch.tanh(self.inner(x)))))


class TwiceChainrule(chainrule.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = chainrule.nn.Linear(2, 2)
        self.head = chainrule.nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.head(chainrule.tanh(self.inner(chainrule.tanh(self.inner(x)))))


def loop_reference(t_model, x, y=None, loss_fn=None):
    """Each sample's gradient from its own batch-size-1 backward pass (torch.autograd.grad)."""
    params = list(t_model.parameters())
    rows = []
    for s in range(x.shape[0]):
        out = t_model(x[s:s + 1])
        objective = out.sum() if loss_fn is None else loss_fn(out, y[s:s + 1])
        rows.append(torch.autograd.grad(objective, params, allow_unused=True))
    names = [n for n, _ in t_model.named_parameters()]
    return {n: torch.stack([r[i] for r in rows]) for i, n in enumerate(names)}


def vmap_reference(t_model, x, y=None, loss_fn=None):
    params = {k: v.detach() for k, v in t_model.named_parameters()}

    def objective(p, xs, ys):
        out = functional_call(t_model, p, (xs.unsqueeze(0),))
        return out.sum() if loss_fn is None else loss_fn(out, ys.unsqueeze(0))

    ys = x if y is None else y
    return vmap(grad(objective), in_dims=(None, 0, 0))(params, x, ys)


def check_against_references(pair, n, in_features, loss=None, out_features=1):
    t_model, c_model = pair
    x = RNG.standard_normal((n, in_features))
    y = RNG.standard_normal((n, out_features))
    t_loss = None if loss is None else torch.nn.MSELoss(reduction=loss)
    c_loss = None if loss is None else chainrule.nn.MSELoss(reduction=loss)
    ours = chainrule.func.per_sample_grad(c_model, chainrule.tensor(x), chainrule.tensor(y), c_loss)
    loop = loop_reference(t_model, torch.tensor(x), torch.tensor(y), t_loss)
    vmapped = vmap_reference(t_model, torch.tensor(x), torch.tensor(y), t_loss)
    assert list(ours) == [name for name, _ in t_model.named_parameters()]
    for name in ours:
        assert tuple(ours[name].shape) == (n,) + tuple(dict(t_model.named_parameters())[name].shape)
        assert_close(ours[name], loop[name], rtol=1e-10, atol=1e-12, msg=f"{name} vs loop")
        assert_close(ours[name], vmapped[name], rtol=1e-10, atol=1e-12, msg=f"{name} vs vmap")
    return ours, t_model, x, y


def test_lesson4_network_output_gradients_per_sample():
    ours, t_model, x, _ = check_against_references(lesson4_pair(), 1000, 1)
    assert tuple(ours["0.weight"].shape) == (1000, 5, 1)
    assert tuple(ours["2.weight"].shape) == (1000, 1, 5)
    # .grad after out.backward(ones) is the SUM of the rows, not their mean and not per sample
    out = t_model(torch.tensor(x))
    out.backward(torch.ones_like(out))
    summed = to_numpy(ours["0.weight"]).sum(axis=0)
    np.testing.assert_allclose(summed, t_model[0].weight.grad.numpy(), rtol=1e-10)
    assert not np.allclose(to_numpy(ours["0.weight"]).mean(axis=0), t_model[0].weight.grad.numpy())


def test_flat_matrix_is_rows_in_named_parameters_order():
    _, c_model = lesson4_pair()
    x = chainrule.tensor(RNG.standard_normal((7, 1)))
    per_name = chainrule.func.per_sample_grad(c_model, x)
    matrix = chainrule.func.per_sample_grad(c_model, x, flat=True)
    assert tuple(matrix.shape) == (7, 10)
    expected = np.concatenate([to_numpy(g).reshape(7, -1) for g in per_name.values()], axis=1)
    np.testing.assert_array_equal(to_numpy(matrix), expected)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mlp_with_bias_and_mse_loss(reduction):
    check_against_references(mlp_pair(), 16, 3, loss=reduction, out_features=2)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mean_and_sum_rows_relate_to_batch_grad(reduction):
    t_model, c_model = mlp_pair()
    x, y = RNG.standard_normal((9, 3)), RNG.standard_normal((9, 2))
    rows = chainrule.func.per_sample_grad(c_model, chainrule.tensor(x), chainrule.tensor(y),
                                          chainrule.nn.MSELoss(reduction=reduction))
    loss = torch.nn.MSELoss(reduction=reduction)(t_model(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    combine = np.mean if reduction == "mean" else np.sum
    np.testing.assert_allclose(combine(to_numpy(rows["0.weight"]), axis=0),
                               t_model[0].weight.grad.numpy(), rtol=1e-10)


def test_layer_applied_twice_sums_its_uses_per_sample():
    check_against_references(twin_models(TwiceTorch, TwiceChainrule), 12, 2)
    check_against_references(twin_models(TwiceTorch, TwiceChainrule), 12, 2, loss="mean")


def test_lesson3_numbers_per_sample():
    layer = chainrule.nn.Linear(1, 1, bias=False)
    layer.weight.data = chainrule.tensor([[0.9472]])
    model = chainrule.nn.Sequential(layer, layer)
    rows = chainrule.func.per_sample_grad(model, chainrule.tensor([[10.0], [2.0]]),
                                          chainrule.tensor([[5.0], [1.0]]), chainrule.nn.MSELoss())
    w = 0.9472
    hand = [4 * (w * w * x - y) * w * x for x, y in ((10.0, 5.0), (2.0, 1.0))]
    np.testing.assert_allclose(to_numpy(rows["0.weight"]).ravel(), hand, rtol=1e-4)
    assert abs(to_numpy(rows["0.weight"]).ravel()[0] - 150.48) < 0.01


def test_function_loss_must_return_one_loss_per_sample():
    _, c_model = mlp_pair()
    x, y = chainrule.tensor(RNG.standard_normal((5, 3))), chainrule.tensor(RNG.standard_normal((5, 2)))
    rows = chainrule.func.per_sample_grad(c_model, x, y, lambda out, t: ((out - t) ** 2).mean(dim=1))
    expected = chainrule.func.per_sample_grad(c_model, x, y, chainrule.nn.MSELoss())
    assert_close(rows["0.weight"], expected["0.weight"], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"one loss per sample, shape \(5,\)"):
        chainrule.func.per_sample_grad(c_model, x, y, lambda out, t: ((out - t) ** 2).mean())


def test_output_with_several_elements_per_sample_needs_a_loss():
    _, c_model = mlp_pair()
    with pytest.raises(ValueError, match="one element per sample"):
        chainrule.func.per_sample_grad(c_model, chainrule.tensor(RNG.standard_normal((4, 3))))


class ScaledWeight(chainrule.nn.Module):
    """Uses its parameter through an op (w * 2) before it meets the batch: no per-sample rule."""

    def __init__(self):
        super().__init__()
        self.w = chainrule.nn.Parameter(chainrule.ones(3, 1, dtype=chainrule.float64))

    def forward(self, x):
        return x @ (self.w * 2.0)


class ElementwiseScale(chainrule.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = chainrule.nn.Parameter(chainrule.tensor([0.5, -1.0, 2.0], dtype=chainrule.float64))

    def forward(self, x):
        return (x * self.scale).tanh().sum(dim=1)


def test_parameter_through_an_op_without_rule_is_a_clear_error():
    with pytest.raises(NotImplementedError, match="MulBackward0"):
        chainrule.func.per_sample_grad(ScaledWeight(), chainrule.tensor(RNG.standard_normal((4, 3))))


def test_elementwise_parameter_and_matmul_weight_have_rules():
    x = RNG.standard_normal((6, 3))
    model = ElementwiseScale()
    rows = chainrule.func.per_sample_grad(model, chainrule.tensor(x))
    scale = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    expected = vmap(grad(lambda s, xs: torch.tanh(xs * s).sum()), in_dims=(None, 0))(scale, torch.tensor(x))
    assert_close(rows["scale"], expected, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- Jacobians
JACOBIAN_CASES = {
    "tanh of a matrix product": lambda lib, A: (lambda v: (A @ v).tanh()),
    "broadcast and reduce": lambda lib, A: (lambda v: (v.unsqueeze(0) * A).sum(dim=1).exp()),
    "indexing and stacking": lambda lib, A: (lambda v: lib.stack([v[0] * v[1], v[2] ** 3, v.sum()])),
    "transpose and max": lambda lib, A: (lambda v: (A.T * v.unsqueeze(-1)).max(dim=0)[0]),
}


@pytest.mark.parametrize("case", list(JACOBIAN_CASES))
def test_jacobian_matches_torch(case):
    A = RNG.standard_normal((4, 3))
    v = RNG.standard_normal(3)
    ours = chainrule.func.jacobian(JACOBIAN_CASES[case](chainrule, chainrule.tensor(A)), chainrule.tensor(v))
    ref = torch.autograd.functional.jacobian(JACOBIAN_CASES[case](torch, torch.tensor(A)), torch.tensor(v))
    assert_close(ours, ref, rtol=1e-12, atol=1e-14)


def test_jacobian_of_a_matrix_function_and_several_inputs():
    X, W = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))
    ours = chainrule.func.jacobian(lambda x, w: (x @ w).sigmoid(), (chainrule.tensor(X), chainrule.tensor(W)))
    ref = torch.autograd.functional.jacobian(lambda x, w: (x @ w).sigmoid(), (torch.tensor(X), torch.tensor(W)))
    for o, r in zip(ours, ref):
        assert_close(o, r, rtol=1e-12, atol=1e-14)


def test_is_grads_batched_matches_torch():
    data = RNG.standard_normal((3, 4))
    seeds = RNG.standard_normal((5, 4))
    results = []
    for lib in (chainrule, torch):
        x = lib.tensor(data, requires_grad=True)
        y = (x.tanh() * x).sum(dim=0) / 2.0
        (g,) = lib.autograd.grad(y, x, lib.tensor(seeds), is_grads_batched=True)
        results.append(g)
    assert tuple(results[0].shape) == (5, 3, 4)
    assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- per-loss gradients
def test_per_loss_grads_small_check_of_the_course_brief():
    x = chainrule.rand(1, 10, dtype=chainrule.float64, requires_grad=True)
    A = (x ** 2).sum()
    B = x.mean()
    (dA,), (dB,) = chainrule.func.per_loss_grads([A, B], [x])
    assert_close(dA, 2 * x.detach(), rtol=1e-14, atol=0)
    assert_close(dB, np.full((1, 10), 0.1), rtol=1e-14, atol=0)
    assert x.grad is None  # autograd.grad leaves .grad alone


def test_per_loss_grads_frees_the_shared_graph_after_the_last_term():
    x = chainrule.rand(1, 10, dtype=chainrule.float64, requires_grad=True)
    shared = x.tanh()
    first, second = (shared ** 2).sum(), shared.mean()
    chainrule.func.per_loss_grads([first, second], [x])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        first.backward()


def pinn_terms(lib, model):
    """Three loss terms of a 1-D Poisson problem sharing one forward pass."""
    xs = lib.tensor(np.linspace(0.1, 0.9, 7).reshape(-1, 1))
    boundary = lib.tensor([[0.0], [1.0]])
    u = model(lib.cat([xs, boundary]))
    interior, edge = u[:7], u[7:]
    dirichlet = (edge ** 2).mean()
    neumann = ((edge[1] - edge[0]) ** 2).sum()
    residual = ((interior - xs * (1 - xs)) ** 2).mean()
    return [dirichlet, neumann, residual]


def test_per_loss_grads_match_both_pytorch_recipes():
    t_model, c_model = mlp_pair()
    t_model, c_model = twin_models(
        lambda: torch.nn.Sequential(torch.nn.Linear(1, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)),
        lambda: chainrule.nn.Sequential(chainrule.nn.Linear(1, 6), chainrule.nn.Tanh(), chainrule.nn.Linear(6, 1)))
    ours = chainrule.func.per_loss_grads(pinn_terms(chainrule, c_model), list(c_model.parameters()))
    t_params = list(t_model.parameters())
    # recipe 1: autograd.grad with retain_graph for every term but the last
    terms = pinn_terms(torch, t_model)
    recipe1 = [torch.autograd.grad(t, t_params, retain_graph=k < 2) for k, t in enumerate(terms)]
    # recipe 2: backward, copy the .grads aside, reset them to None
    terms = pinn_terms(torch, t_model)
    recipe2 = []
    for k, t in enumerate(terms):
        t.backward(retain_graph=k < 2)
        recipe2.append(tuple(p.grad.clone() for p in t_params))
        for p in t_params:
            p.grad = None
    for term_ours, term1, term2 in zip(ours, recipe1, recipe2):
        for g, r1, r2 in zip(term_ours, term1, term2):
            assert_close(g, r1, rtol=1e-12, atol=1e-14)
            assert_close(g, r2, rtol=1e-12, atol=1e-14)
    # forgetting the reset mixes the terms: the second copy is then the sum of terms 1 and 2
    assert not np.allclose(to_numpy(ours[1][0]), to_numpy(ours[0][0] + ours[1][0]))
    weights = chainrule.func.balance_weights(ours, reference=2)
    peak = max(float(np.abs(g.numpy()).max()) for g in recipe1[2])
    for i in (0, 1):
        mean_abs = np.mean(np.concatenate([np.abs(g.numpy()).ravel() for g in recipe1[i]]))
        assert weights[i] == pytest.approx(peak / mean_abs, rel=1e-12)
    assert weights[2] == 1.0


def test_second_pass_through_a_constant_product_reports_the_freed_graph():
    w = chainrule.tensor([1.0, 2.0], requires_grad=True)
    loss = (w ** 2).sum() * 0.1
    chainrule.autograd.grad(loss, [w])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        chainrule.autograd.grad(loss, [w])


def test_batched_outer_product_is_differentiable():
    """The per-sample rule of Linear is an op of its own; its gradients pass gradcheck."""
    from chainrule.ops import BatchedOuter
    a = chainrule.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    b = chainrule.tensor(RNG.standard_normal((4, 2)), requires_grad=True)
    out = BatchedOuter()(a, b)
    assert_close(out, np.einsum("si,sj->sij", to_numpy(a.detach()), to_numpy(b.detach())), rtol=1e-14, atol=0)
    assert chainrule.autograd.gradcheck(lambda x, y: BatchedOuter()(x, y), [a, b])
