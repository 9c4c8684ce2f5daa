"""Tensor creation, attributes and conversions, against torch."""

import numpy as np
import pytest
import torch

import chainrule
from helpers import to_numpy, cpu_repr

FILLED = ["zeros", "ones"]


@pytest.mark.parametrize("name", FILLED)
@pytest.mark.parametrize("dtype", [None, "float32", "float64"])
def test_zeros_ones_varargs_tuple_dtype(name, dtype):
    kw = {} if dtype is None else {"dtype": getattr(chainrule, dtype)}
    tkw = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    for args in [(2, 3), ((2, 3),), ([4],), (5,), ((),)]:
        c, t = getattr(chainrule, name)(*args, **kw), getattr(torch, name)(*args, **tkw)
        assert tuple(c.shape) == tuple(t.shape)
        assert c.dtype == (getattr(chainrule, dtype) if dtype else chainrule.float32)
        np.testing.assert_array_equal(to_numpy(c), t.numpy())
        assert not c.requires_grad and c.is_leaf
    assert getattr(chainrule, name)(2, requires_grad=True).requires_grad


def test_like_functions_keep_shape_and_dtype():
    x = chainrule.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    for name, value in [("zeros_like", 0.0), ("ones_like", 1.0)]:
        y = getattr(chainrule, name)(x)
        assert tuple(y.shape) == (2, 3) and y.dtype == chainrule.float64
        assert not y.requires_grad
        np.testing.assert_array_equal(to_numpy(y), np.full((2, 3), value))
    assert chainrule.zeros_like(x, dtype=chainrule.float32).dtype == chainrule.float32


def test_random_creation_and_manual_seed():
    chainrule.manual_seed(123)
    a = chainrule.randn(3, 4)
    r = chainrule.rand((3, 4), dtype=chainrule.float64)
    chainrule.manual_seed(123)
    b = chainrule.randn(3, 4)
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert tuple(a.shape) == (3, 4) and a.dtype == chainrule.float32
    assert r.dtype == chainrule.float64 and np.all((to_numpy(r) >= 0) & (to_numpy(r) < 1))
    assert np.unique(to_numpy(a)).size == 12
    big = to_numpy(chainrule.randn(20000, dtype=chainrule.float64))
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05
    chainrule.manual_seed(124)
    assert not np.array_equal(to_numpy(chainrule.randn(3, 4)), to_numpy(a))


@pytest.mark.parametrize("args", [(5,), (2, 7), (1, 2, 0.25), (0.0, 1.0, 0.3)])
def test_arange_like_torch(args):
    c, t = chainrule.arange(*args), torch.arange(*args)
    np.testing.assert_allclose(to_numpy(c), t.numpy())
    assert tuple(c.shape) == tuple(t.shape)
    assert (c.dtype == chainrule.int64) == (t.dtype == torch.int64)
    assert chainrule.arange(4, dtype=chainrule.float64).dtype == chainrule.float64


def test_eye():
    np.testing.assert_array_equal(to_numpy(chainrule.eye(3)), np.eye(3))
    np.testing.assert_array_equal(to_numpy(chainrule.eye(2, 4)), torch.eye(2, 4).numpy())
    assert chainrule.eye(3).dtype == chainrule.float32
    assert chainrule.eye(3, dtype=chainrule.float64).dtype == chainrule.float64


def test_attributes():
    x = chainrule.tensor(np.arange(6.0).reshape(2, 3))
    t = torch.tensor(np.arange(6.0).reshape(2, 3))
    assert tuple(x.shape) == tuple(t.shape) == (2, 3)
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.ndim == 2 and x.dtype == chainrule.float64
    np.testing.assert_array_equal(to_numpy(x.T), t.T.numpy())
    if x.device.type == "cpu":
        assert isinstance(x.numpy(), np.ndarray)
    assert chainrule.tensor(3.5).item() == 3.5 and isinstance(chainrule.tensor(3.5).item(), float)
    assert chainrule.tensor([[2.0]]).item() == 2.0
    assert isinstance(chainrule.tensor(np.array([4])).item(), int)


def test_numpy_refuses_tensor_requiring_grad_like_torch():
    x = chainrule.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        x.numpy()
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        torch.tensor([1.0], requires_grad=True).numpy()
    np.testing.assert_array_equal(to_numpy(x), [1.0])


def test_double_float_conversions_are_differentiable():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    d = x.double()
    assert d.dtype == chainrule.float64 and d.requires_grad and not d.is_leaf
    f = d.float()
    assert f.dtype == chainrule.float32
    (d * d).sum().backward()
    assert x.grad.dtype == chainrule.float32
    np.testing.assert_allclose(to_numpy(x.grad), [2.0, 4.0])


def test_tensor_from_tensor_data_and_nested_lists():
    x = chainrule.tensor([[1, 2], [3, 4]], dtype=chainrule.float64)
    assert x.dtype == chainrule.float64 and tuple(x.shape) == (2, 2)
    np.testing.assert_array_equal(to_numpy(x.data), [[1, 2], [3, 4]])
    assert not x.data.requires_grad


@pytest.mark.parametrize(
    "value,expected",
    [
        (np.array([4.0, 7.0], dtype=np.float32), "tensor([4., 7.])"),
        (np.array([4.0, 7.0]), "tensor([4., 7.], dtype=torch.float64)"),
        (np.array(3.5, dtype=np.float32), "tensor(3.5000)"),
        (np.array([[1.0, 2.5], [3.0, 4.0]], dtype=np.float32), "tensor([[1.0000, 2.5000],\n        [3.0000, 4.0000]])"),
    ],
)
def test_repr_like_torch(value, expected):
    t = repr(torch.tensor(value))
    assert t == expected
    # chainrule may name its dtype chainrule.float64; everything else is torch's text
    assert cpu_repr(chainrule.tensor(value)).replace("chainrule.", "torch.") == expected
