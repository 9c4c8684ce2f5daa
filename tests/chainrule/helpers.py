"""One generic differential checker: chainrule against PyTorch, forward and backward.

Only chainrule's public API is used (the suite also runs with the library holding
``array_api_strict`` arrays), so tensors are made with ``chainrule.tensor(ndarray)``
and read back with ``.detach().numpy()``.
"""

import functools

import numpy as np
import torch

import chainrule

RTOL = 1e-7
ATOL = 1e-9


def to_numpy(x):
    """A chainrule tensor, torch tensor, array or number as a float64-comparable ndarray."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, chainrule.Tensor):
        x = x.detach()
        if hasattr(x, "cpu"):  # the suite may run with CUDA as the default device
            x = x.cpu()
        return np.asarray(x.numpy())
    return np.asarray(x)


def assert_same(cr, th, what="value", rtol=RTOL, atol=ATOL):
    """Assert a chainrule result equals a torch result in shape and value."""
    a, b = to_numpy(cr), to_numpy(th)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch's {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def leaves(arrays):
    """The same float64 arrays as chainrule leaves and as torch leaves, requiring grad."""
    cr = [chainrule.tensor(a.copy(), requires_grad=True) for a in arrays]
    th = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return cr, th


def check(cr_fn, th_fn, *arrays, rng=None, rtol=RTOL, atol=ATOL, grad=True, gradcheck=True):
    """Run ``cr_fn`` and ``th_fn`` on the same float64 inputs and compare everything.

    Compares the output's shape, dtype and values, then seeds ``backward`` with one
    random array of the output's shape and compares every input's ``.grad``; finally
    runs ``chainrule.autograd.gradcheck`` on ``cr_fn``.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    cr_in, th_in = leaves(arrays)
    cr_out, th_out = cr_fn(*cr_in), th_fn(*th_in)
    assert isinstance(cr_out, chainrule.Tensor), f"got {type(cr_out)}, not a chainrule.Tensor"
    assert tuple(cr_out.shape) == tuple(th_out.shape), f"shape {tuple(cr_out.shape)} != torch's {tuple(th_out.shape)}"
    assert cr_out.dtype == chainrule.float64, f"dtype {cr_out.dtype}, expected float64"
    assert_same(cr_out, th_out, "forward", rtol, atol)
    if not grad:
        return cr_out, th_out
    assert cr_out.requires_grad and cr_out.grad_fn is not None
    seed = rng.standard_normal(tuple(th_out.shape))
    cr_out.backward(chainrule.tensor(seed))
    th_out.backward(torch.tensor(seed))
    for i, (c, t) in enumerate(zip(cr_in, th_in)):
        if t.grad is None:
            assert c.grad is None or np.all(to_numpy(c.grad) == 0), f"input {i}: torch grad is None"
            continue
        assert c.grad is not None, f"input {i}: .grad is None after backward"
        assert c.grad.dtype == chainrule.float64, f"input {i}: grad dtype {c.grad.dtype}"
        assert_same(c.grad, t.grad, f"grad of input {i}", rtol, atol)
    if gradcheck:
        fresh = [chainrule.tensor(a.copy(), requires_grad=True) for a in arrays]
        assert chainrule.autograd.gradcheck(cr_fn, tuple(fresh)) is True
    return cr_out, th_out


def distinct(rng, shape, spacing=0.1):
    """Values with no ties (so max/argmax is well defined under small perturbations)."""
    n = int(np.prod(shape, dtype=int))
    return (rng.permutation(n) * spacing + rng.uniform(-0.02, 0.02, n)).reshape(shape) - n * spacing / 2


def away_from_zero(rng, shape, low=0.2, high=2.0):
    """Random values with |v| in [low, high] (no kink of abs/relu nearby)."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def positive(rng, shape, low=0.5, high=3.0):
    return rng.uniform(low, high, size=shape)


def check_second_order(f, *arrays, rng=None, rtol=RTOL, atol=ATOL):
    """Hessian-vector products of ``f(lib, *tensors)`` against torch: the gradient taken with
    ``autograd.grad(create_graph=True)`` is itself differentiated."""


    rng = np.random.default_rng(0) if rng is None else rng
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    seed_rng_state = rng.integers(0, 2**32 - 1)
    results = []
    for lib in (chainrule, torch):
        r = np.random.default_rng(seed_rng_state)
        xs = [lib.tensor(a.copy(), requires_grad=True) for a in arrays]
        out = functools.partial(f, lib)(*xs)
        seed = lib.tensor(r.standard_normal(tuple(out.shape)))
        grads = lib.autograd.grad(out, xs, grad_outputs=seed, create_graph=True, allow_unused=True)
        total = None
        for g in grads:
            if g is not None:
                term = (g * lib.tensor(r.standard_normal(tuple(g.shape)))).sum()
                total = term if total is None else total + term
        if total is not None and total.requires_grad:
            total.backward()
        first = [np.zeros(a.shape) if g is None else to_numpy(g) for g, a in zip(grads, arrays)]
        second = [np.zeros(a.shape) if x.grad is None else to_numpy(x.grad) for x, a in zip(xs, arrays)]
        results.append(first + second)
    for i, (c, t) in enumerate(zip(*results)):
        np.testing.assert_allclose(c, t, rtol=rtol, atol=atol, err_msg=f"{'first' if i < len(arrays) else 'second'}-order, input {i % len(arrays)}")


def cpu_repr(tensor):
    """A tensor's repr as it reads on the CPU: the suite also runs with CUDA as default device,
    where chainrule (like PyTorch) adds ``device='cuda:0'``."""
    return repr(tensor).replace(", device='cuda:0'", "")


def same_error(case):
    """``case(lib)`` raises the same exception type with the same message in torch and in
    chainrule (the module in a type's name aside: chainrule.Size for torch.Size)."""
    import pytest
    raised = []
    for lib in (torch, chainrule):
        with pytest.raises(Exception) as error:
            case(lib)
        raised.append((type(error.value).__name__, str(error.value).replace("chainrule.", "torch.")))
    assert raised[1] == raised[0]
