"""Every error of issue 2, with PyTorch's wording: each case runs in torch too, and both
messages must contain the same key phrase (so the phrase is checked against torch 2.13)."""

import numpy as np
import pytest
import torch

import chainrule
from helpers import to_numpy


def both_raise(case, phrase, exc=RuntimeError):
    """``case(lib)`` must raise ``exc`` with ``phrase`` in its message for torch and chainrule."""
    messages = {}
    for lib in (torch, chainrule):
        with pytest.raises(exc) as info:
            case(lib)
        messages[lib.__name__] = str(info.value)
    for name, text in messages.items():
        assert phrase in text, f"{name}'s message lacks {phrase!r}: {text!r}"
    return messages["chainrule"]


def test_inplace_on_leaf_requiring_grad():
    def case(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        w -= 0.1

    both_raise(case, "a leaf Variable that requires grad is being used in an in-place operation")


@pytest.mark.parametrize("op", ["zero_", "+=", "*="])
def test_inplace_on_leaf_requiring_grad_other_ops(op):
    def case(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        if op == "zero_":
            w.zero_()
        elif op == "+=":
            w += lib.ones(2)
        else:
            w *= 2

    both_raise(case, "a leaf Variable that requires grad is being used in an in-place operation")


def test_inplace_on_leaf_is_fine_under_no_grad():
    w = chainrule.tensor([1.0, 2.0], requires_grad=True)
    with chainrule.no_grad():
        w -= 0.5
        w *= 2
    assert w.is_leaf and w.requires_grad
    np.testing.assert_allclose(to_numpy(w), [1.0, 3.0])


def test_modified_leaf_that_backward_needs():
    """The classic mistake: update a weight before backward; never a silently wrong gradient."""

    def case(lib):
        w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = (w * w).sum()
        with lib.no_grad():
            w -= 0.1
        y.backward()

    both_raise(case, "one of the variables needed for gradient computation has been modified by an inplace operation")


def test_modified_intermediate_that_backward_needs():
    def case(lib):
        w = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = w * 2
        y = (b * b).sum()
        with lib.no_grad():
            b += 1
        y.backward()

    both_raise(case, "one of the variables needed for gradient computation has been modified by an inplace operation")


def test_modified_output_that_backward_needs():
    def case(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        e = w.exp()  # exp's backward reads its output
        with lib.no_grad():
            e.zero_()
        e.sum().backward()

    both_raise(case, "one of the variables needed for gradient computation has been modified by an inplace operation")


def test_second_backward_through_freed_graph():
    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).sum()
        y.backward()
        y.backward()

    msg = both_raise(case, "Trying to backward through the graph a second time")
    assert "retain_graph=True" in msg


def test_second_autograd_grad_through_freed_graph():
    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x.exp() * x).sum()
        lib.autograd.grad(y, x)
        lib.autograd.grad(y, x)

    both_raise(case, "Trying to backward through the graph a second time")


def test_non_scalar_backward():
    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).backward()

    both_raise(case, "grad can be implicitly created only for scalar outputs")


@pytest.mark.parametrize("seed, got", [(np.array([1.0, 1.0]), "float64"), ([1.0, 1.0], "float"),
                                       ([np.array([1.0, 1.0])], "ndarray")])
def test_seed_that_is_not_a_tensor(seed, got):
    """A NumPy array or a list as the seed of backward or grad: PyTorch's TypeError, not a count."""
    def backward(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x * 2).backward(gradient=seed)

    def grad(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        lib.autograd.grad(x * 2, x, grad_outputs=seed)

    for case in (backward, grad):
        both_raise(case, f"gradients can be either Tensors or None, but got {got}", TypeError)


def test_backward_on_tensor_not_requiring_grad():
    def case(lib):
        lib.tensor([1.0, 2.0]).sum().backward()

    both_raise(case, "element 0 of tensors does not require grad and does not have a grad_fn")


def test_backward_under_no_grad_result():
    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        with lib.no_grad():
            y = (x * 2).sum()
        y.backward()

    both_raise(case, "element 0 of tensors does not require grad and does not have a grad_fn")


def test_autograd_grad_unused_input():
    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = lib.tensor([3.0], requires_grad=True)
        lib.autograd.grad((x * 2).sum(), [x, y])

    # torch 2.13 says "The differentiated Tensor at index 1 appears to not have been used in the
    # graph"; older torch said "One of the differentiated Tensors appears to not have been used".
    msg = both_raise(case, "appears to not have been used in the graph")
    assert "allow_unused=True" in msg


def test_autograd_grad_allow_unused_returns_none():
    x = chainrule.tensor([1.0, 2.0], requires_grad=True)
    y = chainrule.tensor([3.0], requires_grad=True)
    gx, gy = chainrule.autograd.grad((x * 2).sum(), [x, y], allow_unused=True)
    np.testing.assert_allclose(to_numpy(gx), [2.0, 2.0])
    assert gy is None
    assert x.grad is None and y.grad is None


@pytest.mark.parametrize("seed_shape", [(4,), (3, 1), ()])
def test_wrong_shape_gradient(seed_shape):
    def case(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (x * 2).backward(lib.ones(seed_shape))

    both_raise(case, "Mismatch in shape")


def test_matmul_shape_mismatch_names_both_shapes():
    def case(lib):
        lib.ones(2, 3) @ lib.ones(4, 5)

    msg = both_raise(case, "shapes cannot be multiplied")
    assert ("2x3" in msg and "4x5" in msg) or ("(2, 3)" in msg and "(4, 5)" in msg), msg


@pytest.mark.parametrize("a,b", [((3,), (4,)), ((2, 2, 3), (2, 4, 5)), ((3,), (4, 5)), ((2, 3), (4,))])
def test_matmul_shape_mismatch_other_ranks(a, b):
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError) as info:
            lib.ones(*a) @ lib.ones(*b)
    msg = str(info.value)
    for shape in (a, b):
        # both shapes are named, in torch's "2x3" style or as tuples / lists
        forms = ["x".join(map(str, shape)), str(shape), str(list(shape))]
        assert any(f in msg for f in forms), f"{shape} not named in {msg!r}"


def test_broadcast_mismatch():
    def case(lib):
        lib.ones(2, 3) + lib.ones(2, 4)

    msg = both_raise(case, "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1")
    assert msg


@pytest.mark.parametrize("op", ["mul", "sub", "where"])
def test_broadcast_mismatch_other_ops(op):
    def case(lib):
        a, b = lib.ones(5, 2), lib.ones(3)
        if op == "mul":
            return a * b
        if op == "sub":
            return b - a
        return lib.where(lib.ones(5, 1) > 0, a, b)

    both_raise(case, "must match the size of tensor")


def test_unsupported_dtype():
    with pytest.raises((TypeError, ValueError, RuntimeError), match="(?i)dtype|complex|not supported|unsupported"):
        chainrule.tensor(np.array([1 + 2j, 3 - 1j]))
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        chainrule.tensor(np.array(["a", "b"]))


@pytest.mark.parametrize("how", ["constructor", "requires_grad_"])
def test_requires_grad_on_integer_tensor(how):
    def case(lib):
        if how == "constructor":
            lib.tensor(np.array([1, 2]), requires_grad=True)
        else:
            lib.tensor([1, 2]).requires_grad_()

    msgs = {}
    for lib in (torch, chainrule):
        with pytest.raises(RuntimeError) as info:
            case(lib)
        msgs[lib.__name__] = str(info.value)
    # torch: "Only Tensors of floating point and complex dtype can require gradients" (constructor)
    #        "only Tensors of floating point dtype can require gradients" (requires_grad_)
    for name, text in msgs.items():
        assert "tensors of floating point" in text.lower() and "can require gradients" in text, (name, text)


def test_integer_tensor_dtype_like_torch():
    assert chainrule.tensor([1, 2]).dtype == chainrule.int64
    assert chainrule.tensor([1.0, 2]).dtype == chainrule.float32
    assert chainrule.arange(3).dtype == chainrule.int64


def test_inplace_on_tensor_backward_does_not_need_is_allowed():
    """The version counter only guards values backward reads: w * 2 needs only the 2."""
    for lib in (torch, chainrule):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (w * 2).sum()
        with lib.no_grad():
            w -= 0.1
        y.backward()
        np.testing.assert_allclose(to_numpy(w.grad), [2.0, 2.0])


def test_mT_of_a_vector():
    both_raise(lambda lib: lib.ones(3).mT, "tensor.mT is only supported on matrices or batches of matrices")
