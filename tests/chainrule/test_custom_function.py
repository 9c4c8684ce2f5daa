"""``autograd.Function`` written by its user, in chainrule and in PyTorch side by side."""
import pytest
import torch

import chainrule
from helpers import assert_same, same_error


def cube(lib):
    class Cube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return scale * x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * ctx.scale * 3 * x ** 2, None
    return Cube


def test_forward_backward_and_the_node():
    results = []
    for lib in (torch, chainrule):
        x = lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64, requires_grad=True)
        y = cube(lib).apply(x, 2.0)
        assert type(y.grad_fn).__name__ == "CubeBackward" and y.grad_fn.needs_input_grad == (True, False)
        assert repr(y).endswith("grad_fn=<CubeBackward>)") and len(y.grad_fn.next_functions) == 1
        (y * y).sum().backward()
        results.append((y, x.grad))
    for got, expected in zip(results[1], results[0]):
        assert_same(got, expected)


def test_second_derivatives_through_a_custom_function():
    grads = []
    for lib in (torch, chainrule):
        x = lib.tensor([1.0, -2.0], dtype=lib.float64, requires_grad=True)
        (g,) = lib.autograd.grad(cube(lib).apply(x, 1.0).sum(), x, create_graph=True)
        g.sum().backward()
        grads.append((g, x.grad))
    for got, expected in zip(grads[1], grads[0]):
        assert_same(got, expected)


def test_gradcheck_passes_a_right_backward_and_fails_a_wrong_one():
    for lib in (torch, chainrule):
        x = lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64, requires_grad=True)
        assert lib.autograd.gradcheck(lambda t: cube(lib).apply(t, 1.5), (x,))

        class Wrong(lib.autograd.Function):
            @staticmethod
            def forward(ctx, t):
                return t.exp()

            @staticmethod
            def backward(ctx, grad):
                return grad * 2

        assert lib.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False) is False
        with pytest.raises(RuntimeError, match="Jacobian mismatch"):
            lib.autograd.gradcheck(Wrong.apply, (x,))


def test_saved_tensors_are_freed_after_backward_unless_retained():
    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = cube(lib).apply(x, 1.0)
        y.sum().backward(retain_graph=True)
        y.sum().backward()
        assert x.grad.tolist() == [6.0, 24.0]
        y.sum().backward()
    same_error(case)


def test_a_saved_tensor_changed_in_place_is_caught():
    def case(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = cube(lib).apply(x, 1.0)
        with lib.no_grad():
            x.mul_(2)
        y.sum().backward()
    same_error(case)


@pytest.mark.parametrize("returned, message", [
    ("one", "returned an incorrect number of gradients (expected 2, got 1)"),
    ("shape", "returned an invalid gradient at index 0 - got [2] but expected shape compatible with [3]"),
    ("number", "returned a gradient different than None at position 2, but the corresponding "
               "forward input was not a Variable"),
])
def test_what_backward_returns_is_checked(returned, message):
    def case(lib):
        class Scale(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * k

            @staticmethod
            def backward(ctx, grad):
                if returned == "one":
                    return grad
                if returned == "shape":
                    return grad[:2], None
                return grad, grad

        Scale.apply(lib.ones(3, requires_grad=True), 2.0).sum().backward()
    same_error(case)
    with pytest.raises(RuntimeError, match=f"function ScaleBackward {message}".replace("[", r"\[")
                       .replace("(", r"\(").replace(")", r"\)") if returned != "shape" else "ScaleBackward"):
        case(chainrule)


@pytest.mark.parametrize("returned", [
    lambda grad: grad.expand(4, 3),  # broadcast: summed back to the input's shape
    lambda grad: grad.double() * 2,  # another dtype: cast to the input's
])
def test_what_backward_returns_is_brought_to_the_input(returned):
    grads = []
    for lib in (torch, chainrule):
        class Spread(lib.autograd.Function):
            @staticmethod
            def forward(ctx, b):
                return b * 1.0

            @staticmethod
            def backward(ctx, grad):
                return returned(grad)

        b = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        Spread.apply(b).sum().backward()
        grads.append(b.grad)
    assert str(grads[1].dtype).split(".")[-1] == str(grads[0].dtype).split(".")[-1] == "float32"
    assert_same(grads[1], grads[0])


def test_non_differentiable_outputs_and_setup_context():
    seen = []
    for lib in (torch, chainrule):
        class Split(lib.autograd.Function):
            @staticmethod
            def forward(x):
                return x * 2, (x > 0).double(), x.argmax()

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.mark_non_differentiable(output[1])

            @staticmethod
            def backward(ctx, grad, grad_mask, grad_index):
                seen.append((grad_mask.tolist(), grad_index))
                return grad * 2

        x = lib.tensor([1.0, -1.0], dtype=lib.float64, requires_grad=True)
        doubled, mask, index = Split.apply(x)
        assert doubled.requires_grad and not mask.requires_grad and not index.requires_grad
        doubled.sum().backward()
        assert x.grad.tolist() == [2.0, 2.0]
    assert seen[0][0] == seen[1][0] == [0.0, 0.0]


def test_apply_under_no_grad_and_an_input_returned_as_it_is():
    for lib in (torch, chainrule):
        class Same(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x

            @staticmethod
            def backward(ctx, grad):
                return grad * 3

        x = lib.tensor([1.0, 2.0], requires_grad=True)
        with lib.no_grad():
            assert Same.apply(x).grad_fn is None
        y = Same.apply(x)
        assert y is not x and y.grad_fn is not None
        y.sum().backward()
        assert x.grad.tolist() == [3.0, 3.0]


def test_instantiating_a_function_is_deprecated():
    for lib in (torch, chainrule):
        with pytest.warns(DeprecationWarning, match="should not be instantiated"):
            cube(lib)()


def test_several_differentiable_outputs():
    results = []
    for lib in (torch, chainrule):
        class Two(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x, y):
                ctx.save_for_backward(x, y)
                return x * y, x + y

            @staticmethod
            def backward(ctx, grad_product, grad_sum):
                x, y = ctx.saved_tensors
                return grad_product * y + grad_sum, grad_product * x + grad_sum

        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = lib.tensor([3.0, -1.0], dtype=lib.float64, requires_grad=True)
        product, total = Two.apply(x, y)
        assert repr(product).endswith("grad_fn=<TwoBackward>)") and repr(total).endswith("grad_fn=<TwoBackward>)")
        (product * 2 + total * 3).sum().backward()
        grads = [x.grad.clone(), y.grad.clone()]
        x.grad = y.grad = None
        product, total = Two.apply(x, y)
        product.sum().backward()  # the other output's gradient comes as zeros
        results.append(grads + [x.grad, y.grad])
        assert lib.autograd.gradcheck(lambda a, b: Two.apply(a, b), (x, y))
    for got, expected in zip(results[1], results[0]):
        assert_same(got, expected)
