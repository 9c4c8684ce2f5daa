"""chainrule.nn / nn.functional / optim against torch.nn / torch.optim (float64)."""

import warnings

import numpy as np
import pytest
import torch

import chainrule
import chainrule.nn as nn
import chainrule.nn.functional as F
import chainrule.optim as optim
from helpers import assert_same, to_numpy


def load_from_torch(cr_module, th_module):
    """Copy torch's parameters into the chainrule module, by name, with in-place ops under no_grad."""
    ours = dict(cr_module.named_parameters())
    theirs = dict(th_module.named_parameters())
    assert list(ours) == list(theirs)
    with chainrule.no_grad():
        for name, p in ours.items():
            q = theirs[name].detach().numpy()
            assert tuple(p.shape) == q.shape, name
            p.zero_()
            p += chainrule.tensor(q, dtype=p.dtype)
    for name, p in ours.items():
        assert p.is_leaf and p.requires_grad and p.grad is None, name


def mlp(lib, sizes=(3, 5, 4, 2)):
    return lib.nn.Sequential(
        lib.nn.Linear(sizes[0], sizes[1]),
        lib.nn.Tanh(),
        lib.nn.Linear(sizes[1], sizes[2]),
        lib.nn.Sigmoid(),
        lib.nn.Linear(sizes[2], sizes[3], bias=False),
        lib.nn.ReLU(),
    )


def pair(build, seed=0):
    torch.manual_seed(seed)
    th = build(torch).double()
    cr = build(chainrule)
    assert cr.double() is cr, "Module.double() returns the module itself"
    load_from_torch(cr, th)
    return cr, th


# ---------------------------------------------------------------- Linear


def test_linear_parameters_shapes_dtype_and_init():
    lin = nn.Linear(4, 3)
    assert tuple(lin.weight.shape) == (3, 4) and tuple(lin.bias.shape) == (3,)
    assert lin.weight.dtype == chainrule.float32
    assert isinstance(lin.weight, nn.Parameter) and isinstance(lin.weight, chainrule.Tensor)
    assert lin.weight.requires_grad and lin.weight.is_leaf
    bound = 1 / np.sqrt(4)  # torch's kaiming-uniform default: U(-1/sqrt(in), 1/sqrt(in))
    w, b = to_numpy(lin.weight), to_numpy(lin.bias)
    assert np.all(np.abs(w) <= bound) and np.all(np.abs(b) <= bound)
    assert np.unique(w).size == w.size, "weights are random, not constant"
    assert nn.Linear(4, 3, bias=False).bias is None
    assert [n for n, _ in nn.Linear(4, 3, bias=False).named_parameters()] == ["weight"]


def test_parameter_wraps_tensor():
    p = nn.Parameter(chainrule.tensor([1.0, 2.0]))
    assert p.requires_grad and p.is_leaf and isinstance(p, chainrule.Tensor)
    (p * p).sum().backward()
    assert_same(p.grad, [2.0, 4.0])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("in_shape", [(6, 3), (3,), (2, 6, 3)])
def test_linear_forward_backward(bias, in_shape):
    cr, th = pair(lambda lib: lib.nn.Linear(3, 4, bias=bias))
    x = np.random.default_rng(0).standard_normal(in_shape)
    xc, xt = chainrule.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = cr(xc), th(xt)
    assert_same(yc, yt, "forward")
    seed = np.random.default_rng(1).standard_normal(tuple(yt.shape))
    yc.backward(chainrule.tensor(seed))
    yt.backward(torch.tensor(seed))
    assert_same(xc.grad, xt.grad, "input grad")
    assert_same(cr.weight.grad, th.weight.grad, "weight grad")
    if bias:
        assert_same(cr.bias.grad, th.bias.grad, "bias grad")


# ---------------------------------------------------------------- Sequential, activations, Module


def test_sequential_indexing_names_and_forward():
    cr, th = pair(mlp)
    assert len(cr) == len(th) == 6
    assert isinstance(cr[0], nn.Linear) and isinstance(cr[1], nn.Tanh)
    assert isinstance(cr[-1], nn.ReLU) and isinstance(cr[3], nn.Sigmoid)
    assert cr[4].bias is None
    assert [n for n, _ in cr.named_parameters()] == [n for n, _ in th.named_parameters()]
    assert [n for n, _ in cr.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight"]
    assert len(list(cr.parameters())) == 5
    assert all(p1 is p2 for p1, (_, p2) in zip(cr.parameters(), cr.named_parameters()))
    x = np.random.default_rng(2).standard_normal((7, 3))
    yc, yt = cr(chainrule.tensor(x)), th(torch.tensor(x))
    assert_same(yc, yt)
    assert_same(cr[0](chainrule.tensor(x)), th[0](torch.tensor(x)), "first layer alone")


@pytest.mark.parametrize("name", ["Sigmoid", "Tanh", "ReLU"])
def test_activation_modules(name):
    x = np.random.default_rng(3).standard_normal((4, 5)) + 0.05
    xc, xt = chainrule.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = getattr(nn, name)()(xc), getattr(torch.nn, name)()(xt)
    assert_same(yc, yt)
    (yc * yc).sum().backward()
    (yt * yt).sum().backward()
    assert_same(xc.grad, xt.grad)


class Net:
    """The same two-layer net with a loose Parameter, written once for both libraries."""

    @staticmethod
    def build(lib):
        class _Net(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden = lib.nn.Linear(2, 3)
                self.act = lib.nn.Tanh()
                self.head = lib.nn.Sequential(lib.nn.Linear(3, 1))
                self.scale = lib.nn.Parameter(lib.ones(1))

            def forward(self, x):
                return self.head(self.act(self.hidden(x))) * self.scale

        return _Net()


def test_module_subclass_registration_and_call():
    cr, th = pair(Net.build)
    names = [n for n, _ in cr.named_parameters()]
    assert names == [n for n, _ in th.named_parameters()]
    assert set(names) == {"scale", "hidden.weight", "hidden.bias", "head.0.weight", "head.0.bias"}
    assert all(p.dtype == chainrule.float64 for p in cr.parameters())
    x = np.random.default_rng(4).standard_normal((5, 2))
    yc, yt = cr(chainrule.tensor(x)), th(torch.tensor(x))
    assert_same(yc, yt)
    yc.sum().backward()
    yt.sum().backward()
    for (n, p), (_, q) in zip(cr.named_parameters(), th.named_parameters()):
        assert_same(p.grad, q.grad, n)
    cr.zero_grad()
    th.zero_grad()
    for (n, p), (_, q) in zip(cr.named_parameters(), th.named_parameters()):
        assert q.grad is None  # torch >= 2.0: zero_grad(set_to_none=True)
        assert p.grad is None, f"{n}: zero_grad() leaves .grad = None, as torch does"


def test_module_double_and_float():
    m = mlp(chainrule)
    assert all(p.dtype == chainrule.float32 for p in m.parameters())
    m.double()
    assert all(p.dtype == chainrule.float64 for p in m.parameters())
    assert all(p.requires_grad and p.is_leaf and isinstance(p, nn.Parameter) for p in m.parameters())
    y = m(chainrule.ones(2, 3, dtype=chainrule.float64))
    assert y.dtype == chainrule.float64
    y.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == chainrule.float64 for p in m.parameters())


# ---------------------------------------------------------------- losses and functional


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss(reduction):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    res = []
    for lib in (chainrule, torch):
        x = lib.tensor(a, requires_grad=True)
        y = lib.tensor(b)
        l1 = lib.nn.MSELoss(reduction=reduction)(x, y)
        l2 = lib.nn.functional.mse_loss(x, y, reduction=reduction)
        assert tuple(l1.shape) == ()
        (l1 + 2 * l2).backward()
        res.append((l1, l2, x.grad))
    for c, t in zip(*res):
        assert_same(c, t)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("target_shape", [(4, 3), (3,)])
def test_mse_loss_is_one_node_with_both_gradients_and_second_order(reduction, target_shape):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal(target_shape)
    res = []
    for lib in (chainrule, torch):
        x = lib.tensor(a, requires_grad=True)
        y = lib.tensor(b, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the broadcast target warns, in both libraries
            loss = lib.nn.functional.mse_loss(x, y, reduction=reduction)
        assert loss.grad_fn.name() == "MseLossBackward0"
        gx, gy = lib.autograd.grad(loss, (x, y), create_graph=True)
        (gxx,) = lib.autograd.grad((gx * gx).sum() + (gy ** 3).sum(), (x,))
        res.append((loss, gx, gy, gxx))
    for c, t in zip(*res):
        assert_same(c, t)
    x = chainrule.tensor(a, requires_grad=True)
    y = chainrule.tensor(b, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert chainrule.autograd.gradcheck(lambda u, v: F.mse_loss(u, v, reduction=reduction), (x, y))


def test_mse_loss_with_batched_seeds_matches_separate_backward_passes():
    rng = np.random.default_rng(8)
    x = chainrule.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    y = chainrule.tensor(rng.standard_normal((2, 3)))
    seeds = chainrule.tensor([1.0, -2.0, 0.5], dtype=chainrule.float64)
    (batched,) = chainrule.autograd.grad(F.mse_loss(x, y), (x,), seeds, is_grads_batched=True)
    for k in range(3):
        (single,) = chainrule.autograd.grad(F.mse_loss(x, y), (x,), seeds[k])
        np.testing.assert_allclose(batched[k].numpy(), single.numpy(), rtol=1e-12)


def test_mse_loss_default_is_mean():
    x = chainrule.tensor([1.0, 2.0, 4.0])
    y = chainrule.tensor([1.0, 0.0, 0.0])
    assert abs(nn.MSELoss()(x, y).item() - 20.0 / 3) < 1e-5
    assert abs(F.mse_loss(x, y).item() - 20.0 / 3) < 1e-5


FUNCTIONAL = {
    "relu": lambda F_, x, w, b: F_.relu(x),
    "sigmoid": lambda F_, x, w, b: F_.sigmoid(x),
    "tanh": lambda F_, x, w, b: F_.tanh(x),
    "linear": lambda F_, x, w, b: F_.linear(x, w, b),
    "linear_no_bias": lambda F_, x, w, b: F_.linear(x, w),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_functional(name):
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((5, 3)) + 0.05, rng.standard_normal((2, 3)), rng.standard_normal(2)]
    res = []
    for lib in (chainrule, torch):
        ts = [lib.tensor(a, requires_grad=True) for a in arrays]
        out = FUNCTIONAL[name](lib.nn.functional, *ts)
        (out * out).sum().backward()
        res.append([out] + [t.grad for t in ts])
    for i, (c, t) in enumerate(zip(*res)):
        if t is None:
            assert c is None, f"item {i}"
        else:
            assert_same(c, t, f"item {i}")


# ---------------------------------------------------------------- optimisation


def train(lib, model, opt, steps, x, y):
    losses = []
    loss_fn = lib.nn.MSELoss()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("momentum", [0, 0.9])
def test_sgd_matches_torch(momentum):
    cr, th = pair(mlp)
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    opt_c = optim.SGD(cr.parameters(), lr=0.2, momentum=momentum)
    opt_t = torch.optim.SGD(th.parameters(), lr=0.2, momentum=momentum)
    lc = train(chainrule, cr, opt_c, 6, chainrule.tensor(x), chainrule.tensor(y))
    lt = train(torch, th, opt_t, 6, torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(lc, lt, rtol=1e-10)
    assert lt[-1] < lt[0]
    for (n, p), (_, q) in zip(cr.named_parameters(), th.named_parameters()):
        assert_same(p, q, n)
        assert p.is_leaf and p.requires_grad


def test_sgd_positional_lr_and_zero_grad():
    w = nn.Parameter(chainrule.tensor([1.0, -2.0], dtype=chainrule.float64))
    opt = optim.SGD([w], 0.5)
    (w * w).sum().backward()
    opt.step()
    assert_same(w, [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None  # torch's default set_to_none=True


def test_manual_sgd_loop_under_no_grad():
    """The lesson-4 loop: p -= lr * p.grad and p.grad.zero_() under no_grad, as in torch."""
    cr, th = pair(mlp)
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    losses = {}
    for lib, model in ((chainrule, cr), (torch, th)):
        xs, ys = lib.tensor(x), lib.tensor(y)
        losses[lib] = []
        for _ in range(4):
            loss = ((model(xs) - ys) ** 2).mean()
            loss.backward()
            with lib.no_grad():
                for p in model.parameters():
                    p -= 0.3 * p.grad
                    p.grad.zero_()
            losses[lib].append(loss.item())
    np.testing.assert_allclose(losses[chainrule], losses[torch], rtol=1e-10)
    for (n, p), (_, q) in zip(cr.named_parameters(), th.named_parameters()):
        assert_same(p, q, n)
        assert_same(p.grad, np.zeros(tuple(q.shape)), n + " grad zeroed")
        assert p.is_leaf and p.requires_grad and p.grad_fn is None


def test_shared_layer_parameters_listed_once():
    """A layer used twice (lesson 3) appears once in parameters(), as in torch."""
    for lib in (chainrule, torch):
        lin = lib.nn.Linear(2, 2)
        seq = lib.nn.Sequential(lin, lib.nn.Tanh(), lin)
        assert len(list(seq.parameters())) == 2
        assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]


def test_sequential_slice_is_a_sequential():
    cr, th = pair(mlp)
    head_c, head_t = cr[:2], th[:2]
    assert isinstance(head_c, nn.Sequential) and len(head_c) == 2
    assert head_c[0] is cr[0]
    x = np.random.default_rng(9).standard_normal((3, 3))
    assert_same(head_c(chainrule.tensor(x)), head_t(torch.tensor(x)))
