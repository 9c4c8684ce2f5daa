"""The five questions of the course brief, with its numbers, each also run in torch."""

import warnings

import numpy as np
import pytest
import torch

import chainrule
from helpers import assert_same, to_numpy, cpu_repr


def grad_fn_name(t):
    return None if t.grad_fn is None else t.grad_fn.name()


# ---------------------------------------------------------------- 1. chain rule on a small graph


def lesson1(lib, retain=False):
    x = lib.tensor([2.0, 1.0], requires_grad=True)
    y = lib.tensor([1.0, 3.0], requires_grad=True)
    z = lib.tensor([5.0, 2.0], requires_grad=True)
    a = x + 2 * y
    b = a + z / 2
    if retain:
        a.retain_grad()
    return x, y, z, a, b


@pytest.mark.parametrize("retain", [False, True])
def test_1_chain_rule_small_graph(retain):
    results = []
    for lib in (chainrule, torch):
        x, y, z, a, b = lesson1(lib, retain)
        assert_same(a, [4.0, 7.0], "a", rtol=0, atol=0)
        assert_same(b, [6.5, 8.0], "b", rtol=0, atol=0)
        assert_same(a.data, [4.0, 7.0], "a.data", rtol=0, atol=0)
        assert x.is_leaf and y.is_leaf and z.is_leaf and not a.is_leaf and not b.is_leaf
        assert x.requires_grad and a.requires_grad and b.requires_grad
        assert x.grad_fn is None and grad_fn_name(a) == "AddBackward0" and grad_fn_name(b) == "AddBackward0"
        assert x.grad is None
        b.backward(lib.ones_like(b))
        assert_same(x.grad, [1.0, 1.0], "db/dx", rtol=0, atol=0)
        assert_same(y.grad, [2.0, 2.0], "db/dy", rtol=0, atol=0)
        assert_same(z.grad, [0.5, 0.5], "db/dz", rtol=0, atol=0)
        if retain:
            assert_same(a.grad, [1.0, 1.0], "db/da", rtol=0, atol=0)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert a.grad is None
        assert x.data is not None and x.grad.dtype == x.dtype
        results.append((x.grad, y.grad, z.grad))
    for c, t in zip(*results):
        assert_same(c, t)


def test_1_repr_of_a():
    x, y, z, a, b = lesson1(chainrule)
    assert cpu_repr(a) == "tensor([4., 7.], grad_fn=<AddBackward0>)"


# ---------------------------------------------------------------- 2. vector seeds


def test_2_non_scalar_backward_needs_a_gradient():
    for lib in (chainrule, torch):
        *_, b = lesson1(lib)
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
            b.backward()


def test_2_vector_seed_is_a_vjp_and_scales():
    v = np.array([0.3, -2.0])
    for lib in (chainrule, torch):
        x, y, z, a, b = lesson1(lib)
        b.backward(gradient=lib.tensor(v, dtype=lib.float32))
        vjp = [to_numpy(t.grad).copy() for t in (x, y, z)]
        x2, y2, z2, a2, b2 = lesson1(lib)
        (b2 * lib.tensor(v, dtype=lib.float32)).sum().backward()
        for g, t in zip(vjp, (x2, y2, z2)):
            np.testing.assert_allclose(g, to_numpy(t.grad), rtol=1e-6)
        np.testing.assert_allclose(vjp[1], 2 * v, rtol=1e-6)
        x3, y3, z3, a3, b3 = lesson1(lib)
        b3.backward(2 * lib.ones_like(b3))
        assert_same(x3.grad, [2.0, 2.0], rtol=0, atol=0)
        assert_same(y3.grad, [4.0, 4.0], rtol=0, atol=0)
        assert_same(z3.grad, [1.0, 1.0], rtol=0, atol=0)


def test_2_one_hot_seeds_recover_the_jacobian():
    x0 = np.array([0.7, -1.3, 2.0])

    def f(lib, x):
        return lib.stack([x[0] * x[1], (x**2).sum(), x[2].exp() * x[0], x.tanh().sum()])

    rows = []
    for i in range(4):
        x = chainrule.tensor(x0, requires_grad=True)
        out = f(chainrule, x)
        onehot = np.zeros(4)
        onehot[i] = 1.0
        out.backward(chainrule.tensor(onehot))
        rows.append(to_numpy(x.grad))
    jac = torch.autograd.functional.jacobian(lambda t: f(torch, t), torch.tensor(x0))
    np.testing.assert_allclose(np.stack(rows), jac.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- 3. one layer used twice


def lesson3(lib):
    lin = lib.nn.Linear(1, 1, bias=False)
    with lib.no_grad():
        lin.weight.zero_()
        lin.weight += 0.9472
    x = lib.tensor([[10.0]])
    y = lib.tensor([[5.0]])
    out = lin(lin(x))
    loss = lib.nn.MSELoss()(out, y)
    return lin, out, loss


def test_3_layer_reuse():
    w, x, y = 0.9472, 10.0, 5.0
    hand = 4 * (w * w * x - y) * w * x
    grads = []
    for lib in (chainrule, torch):
        lin, out, loss = lesson3(lib)
        assert out.dtype == lib.float32
        assert abs(out.item() - 8.9717) < 5e-4
        loss.backward()
        g = lin.weight.grad.item()
        assert abs(g - 150.48) < 0.02
        assert abs(g - hand) / hand < 1e-4, "autograd agrees with the hand formula"
        grads.append(g)
        # accumulation across separate backward calls until zeroed
        out2 = lin(lin(lib.tensor([[10.0]])))
        lib.nn.MSELoss()(out2, lib.tensor([[5.0]])).backward()
        assert abs(lin.weight.grad.item() - 2 * g) < 1e-3
    assert abs(grads[0] - grads[1]) < 1e-3


def test_3_graph_unrolls_into_a_chain():
    lin, out, loss = lesson3(chainrule)
    # walk from the output: two matmul-like nodes, both leading to the same weight leaf
    seen_weight = 0
    stack = [out.grad_fn]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if hasattr(node, "variable"):
            assert node.variable is lin.weight
            seen_weight += 1
            continue
        stack.extend(n for n, _ in node.next_functions)
    assert seen_weight == 2


# ---------------------------------------------------------------- 4. per-sample gradients


def lesson4(lib, w1, w2):
    l1 = lib.nn.Linear(1, 5, bias=False)
    l2 = lib.nn.Linear(5, 1, bias=False)
    with lib.no_grad():
        for lin, w in ((l1, w1), (l2, w2)):
            lin.weight.zero_()
            lin.weight += lib.tensor(w, dtype=lib.float32)
    return lib.nn.Sequential(l1, lib.nn.Sigmoid(), l2)


def test_4_per_sample_gradients():
    rng = np.random.default_rng(0)
    w1 = rng.uniform(-1, 1, (5, 1)).astype(np.float32)
    w2 = rng.uniform(-1, 1, (1, 5)).astype(np.float32)
    feats = rng.standard_normal((1000, 1)).astype(np.float32)

    # PyTorch's reference: vmap(grad(...)) over the batch
    tnet = lesson4(torch, w1, w2)
    params = {k: v.detach() for k, v in tnet.named_parameters()}

    def one(p, xi):
        return torch.func.functional_call(tnet, p, (xi[None],)).squeeze()

    ref = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0))(params, torch.tensor(feats))
    ref1 = ref["0.weight"].reshape(1000, 5).numpy()
    ref2 = ref["2.weight"].reshape(1000, 5).numpy()

    # .grad after a ones seed is the SUM over the batch, shaped like the weight
    net = lesson4(chainrule, w1, w2)
    out = net(chainrule.tensor(feats))
    assert tuple(out.shape) == (1000, 1)
    out.backward(gradient=chainrule.ones_like(out))
    assert tuple(net[0].weight.grad.shape) == (5, 1) and tuple(net[2].weight.grad.shape) == (1, 5)
    np.testing.assert_allclose(to_numpy(net[0].weight.grad), ref1.sum(0).reshape(5, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(to_numpy(net[2].weight.grad), ref2.sum(0).reshape(1, 5), rtol=1e-4, atol=1e-4)
    tout = tnet(torch.tensor(feats))
    tout.backward(torch.ones_like(tout))
    np.testing.assert_allclose(to_numpy(net[0].weight.grad), tnet[0].weight.grad.numpy(), rtol=1e-5, atol=1e-5)

    # way 1: a loop of batch-size-1 backward passes (first 200 samples)
    loop1, loop2 = [], []
    for i in range(200):
        net.zero_grad()
        net(chainrule.tensor(feats[i : i + 1])).backward(chainrule.ones(1, 1))
        loop1.append(to_numpy(net[0].weight.grad).reshape(5))
        loop2.append(to_numpy(net[2].weight.grad).reshape(5))
    np.testing.assert_allclose(np.stack(loop1), ref1[:200], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.stack(loop2), ref2[:200], rtol=1e-5, atol=1e-6)

    # way 2: vectorised, the outer product of the backprop signal and the layer input
    x = chainrule.tensor(feats)
    pre = net[0](x)
    h = net[1](pre)
    h.retain_grad()
    pre.retain_grad()
    net.zero_grad()
    net[2](h).backward(chainrule.ones(1000, 1))
    per1 = to_numpy(pre.grad) * feats  # (1000, 5) * (1000, 1)
    per2 = to_numpy(h)  # d out / d w2 = h, since the seed is one
    np.testing.assert_allclose(per1, ref1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(per2, ref2, rtol=1e-5, atol=1e-6)


def test_4_manual_sgd_step_and_zeroing():
    rng = np.random.default_rng(1)
    w1 = rng.uniform(-1, 1, (5, 1)).astype(np.float32)
    w2 = rng.uniform(-1, 1, (1, 5)).astype(np.float32)
    feats = rng.standard_normal((64, 1)).astype(np.float32)
    target = np.sin(feats)
    losses = {}
    for lib in (chainrule, torch):
        net = lesson4(lib, w1, w2)
        losses[lib] = []
        for _ in range(5):
            loss = ((net(lib.tensor(feats)) - lib.tensor(target)) ** 2).mean()
            loss.backward()
            with lib.no_grad():
                for p in net.parameters():
                    p -= 0.5 * p.grad
                    p.grad.zero_()
            losses[lib].append(loss.item())
    np.testing.assert_allclose(losses[chainrule], losses[torch], rtol=1e-5)
    assert losses[torch][-1] < losses[torch][0]


# ---------------------------------------------------------------- 5. per-loss gradients


def pinn_terms(lib, net, pts):
    """Three terms sharing one forward pass: two 'boundary' terms and an interior residual."""
    u = net(pts)
    l1 = (u[0] ** 2).sum()
    l2 = ((u[-1] - 1.0) ** 2).sum()
    l3 = (u[1:-1] ** 2).mean() + (u * pts).mean()
    return l1, l2, l3


def small_net(lib, seed=0):
    rng = np.random.default_rng(seed)
    net = lib.nn.Sequential(lib.nn.Linear(1, 4), lib.nn.Tanh(), lib.nn.Linear(4, 1))
    net.double()
    with lib.no_grad():
        for p in net.parameters():
            p.zero_()
            p += lib.tensor(rng.uniform(-1, 1, tuple(p.shape)))
    return net


def test_5_per_loss_gradients_two_ways():
    pts_np = np.linspace(0, 1, 7).reshape(7, 1)
    alpha, beta = 0.3, 2.0
    per_lib = {}
    for lib in (chainrule, torch):
        net = small_net(lib)
        params = list(net.parameters())
        pts = lib.tensor(pts_np)
        l1, l2, l3 = pinn_terms(lib, net, pts)
        # way 1: autograd.grad for each term but the last, leaving .grad alone
        way1 = []
        for term, retain in ((l1, True), (l2, True), (l3, None)):
            g = lib.autograd.grad(term, params, retain_graph=retain)
            assert isinstance(g, tuple) and len(g) == len(params)
            assert all(p.grad is None for p in params)
            way1.append([to_numpy(x) for x in g])
        # way 2: backward(retain_graph=True), copy the .grads aside, reset them to None
        l1, l2, l3 = pinn_terms(lib, net, pts)
        way2 = []
        for term in (l1, l2, l3):
            term.backward(retain_graph=True)
            way2.append([to_numpy(p.grad).copy() for p in params])
            for p in params:
                p.grad = None
        for a, b in zip(way1, way2):
            for x, y in zip(a, b):
                np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)
        # forgetting the reset mixes the terms: the .grad is the sum
        for term in (l1, l2):
            term.backward(retain_graph=True)
        mixed = [to_numpy(p.grad) for p in params]
        for m, g1, g2 in zip(mixed, way1[0], way1[1]):
            np.testing.assert_allclose(m, g1 + g2, rtol=1e-12, atol=1e-15)
        # the weighted total's gradient is the weighted sum of the per-term gradients
        for p in params:
            p.grad = None
        (l1 + alpha * l2 + beta * l3).backward()
        for p, g1, g2, g3 in zip(params, *way1):
            np.testing.assert_allclose(to_numpy(p.grad), g1 + alpha * g2 + beta * g3, rtol=1e-10, atol=1e-14)
        stats = [np.mean([np.abs(g).mean() for g in gs]) for gs in way1]  # mean |grad| per term
        per_lib[lib] = way1, stats
    for a, b in zip(per_lib[chainrule][0], per_lib[torch][0]):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(per_lib[chainrule][1], per_lib[torch][1], rtol=1e-10)


def test_5_small_check():
    chainrule.manual_seed(0)
    x = chainrule.rand(1, 10, requires_grad=True)
    assert tuple(x.shape) == (1, 10) and x.dtype == chainrule.float32
    xv = to_numpy(x)
    assert np.all((xv >= 0) & (xv < 1)) and np.unique(xv).size == 10
    A = (x**2).sum()
    B = x.mean()
    (dA,) = chainrule.autograd.grad(A, x, retain_graph=True)
    (dB,) = chainrule.autograd.grad(B, x)
    np.testing.assert_allclose(to_numpy(dA), 2 * xv, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(dB), np.full((1, 10), 0.1), rtol=1e-6)
    xt = torch.tensor(xv, requires_grad=True)
    (tA,) = torch.autograd.grad((xt**2).sum(), xt)
    np.testing.assert_allclose(to_numpy(dA), tA.numpy(), rtol=1e-6)
    assert x.grad is None
