"""chainrule.testing.assert_close and chainrule.autograd.gradcheck."""

import re

import numpy as np
import pytest
import torch

import chainrule
from chainrule.testing import assert_close

VALUES = [[1.0, 2.0], [3.0, 4.0]]


def kinds(values, dtype=np.float64):
    arr = np.array(values, dtype=dtype)
    return {
        "chainrule": chainrule.tensor(arr),
        "chainrule_grad": chainrule.tensor(arr, requires_grad=True) * 1,
        "torch": torch.tensor(arr),
        "numpy": arr,
    }


@pytest.mark.parametrize("expected_kind", ["chainrule", "chainrule_grad", "torch", "numpy"])
@pytest.mark.parametrize("actual_kind", ["chainrule", "chainrule_grad", "torch", "numpy"])
def test_assert_close_accepts_every_kind(actual_kind, expected_kind):
    assert_close(kinds(VALUES)[actual_kind], kinds(VALUES)[expected_kind])
    near = np.array(VALUES) * (1 + 1e-9)
    assert_close(kinds(near)[actual_kind], kinds(VALUES)[expected_kind])
    far = np.array(VALUES)
    far[1, 0] = 3.5
    with pytest.raises(AssertionError):
        assert_close(kinds(far)[actual_kind], kinds(VALUES)[expected_kind])


@pytest.mark.parametrize("kind", ["chainrule", "torch", "numpy"])
def test_assert_close_message_says_where_and_how_much(kind):
    actual = np.array(VALUES)
    actual[1, 0] = 3.5
    with pytest.raises(AssertionError) as info:
        assert_close(kinds(actual)[kind], chainrule.tensor(np.array(VALUES)))
    msg = str(info.value)
    assert re.search(r"1,\s*0", msg), f"index (1, 0) not in {msg!r}"
    assert "0.5" in msg, f"the difference 0.5 is not in {msg!r}"


def test_assert_close_message_index_3d():
    expected = np.zeros((2, 3, 4))
    actual = expected.copy()
    actual[1, 2, 3] = 0.25
    with pytest.raises(AssertionError) as info:
        assert_close(chainrule.tensor(actual), expected)
    msg = str(info.value)
    assert re.search(r"1,\s*2,\s*3", msg), msg
    assert "0.25" in msg, msg


def test_assert_close_tolerances_and_shapes():
    a = chainrule.tensor(np.array([1.0, 2.0]))
    assert_close(a, np.array([1.001, 2.0]), rtol=0, atol=1e-2)
    with pytest.raises(AssertionError):
        assert_close(a, np.array([1.001, 2.0]), rtol=0, atol=1e-4)
    assert_close(a, np.array([1.1, 2.2]), rtol=0.1, atol=0)
    with pytest.raises(AssertionError):
        assert_close(a, np.array([1.0, 2.0, 3.0]))
    with pytest.raises(AssertionError):
        assert_close(a, np.array([[1.0, 2.0]]))


def test_assert_close_float32_default_tolerance():
    a = chainrule.tensor([1.0, 2.0])  # float32
    assert_close(a, torch.tensor([1.0 + 1e-6, 2.0]))
    with pytest.raises(AssertionError):
        assert_close(a, torch.tensor([1.01, 2.0]))


def test_assert_close_nan_against_a_number_fails():
    nan = np.array([np.nan, 1.0])
    with pytest.raises(AssertionError):
        assert_close(chainrule.tensor(nan), np.array([0.0, 1.0]))


# ---------------------------------------------------------------- gradcheck


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, y: (x * y).tanh(),
        lambda x, y: (x @ y.T).sigmoid().sum(),
        lambda x, y: chainrule.cat([x.exp(), y * y], dim=0)[[0, 2, 2]],
        lambda x, y: (x / (1 + y**2)).mean(dim=1, keepdim=True),
    ],
)
def test_gradcheck_passes_on_correct_functions(fn):
    rng = np.random.default_rng(0)
    x = chainrule.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    y = chainrule.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert chainrule.autograd.gradcheck(fn, (x, y)) is True


def wrong_gradient(lib):
    """A function whose gradient is deliberately wrong: a hook doubles the backprop signal."""

    def fn(x):
        y = x * x
        y.register_hook(lambda g: g * 2)
        return y

    return fn


def test_gradcheck_catches_a_wrong_gradient():
    arr = np.array([0.3, -1.2, 2.0])
    # torch's gradcheck rejects it
    with pytest.raises(RuntimeError):
        torch.autograd.gradcheck(wrong_gradient(torch), (torch.tensor(arr, requires_grad=True),))
    # chainrule's must reject it too: raise, or return False
    try:
        result = chainrule.autograd.gradcheck(wrong_gradient(chainrule), (chainrule.tensor(arr, requires_grad=True),))
    except Exception:
        result = False
    assert result is False
    result = chainrule.autograd.gradcheck(
        wrong_gradient(chainrule), (chainrule.tensor(arr, requires_grad=True),), raise_exception=False
    )
    assert result is False


def test_gradcheck_on_piecewise_ops_away_from_their_kinks():
    x = chainrule.tensor(np.array([0.5, -0.7, 1.3]), requires_grad=True)
    assert chainrule.autograd.gradcheck(lambda t: t.abs() * t.relu() + t.clamp(-1, 1), (x,)) is True
