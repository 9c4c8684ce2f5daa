# In the style of the torch.autograd docs' examples for FunctionCtx and the tensor's autograd
# API: set_materialize_grads(False), so that backward gets None for an output that received
# no gradient; once_differentiable; is_leaf, detach and detach_, retain_grad, requires_grad_;
# a node's metadata dict.
import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable


class TwoViews(Function):
    """x and 3x, as two outputs; backward adds what each output received."""

    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        return x.clone(), 3 * x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_plain, grad_tripled):
        print("received:", grad_plain, grad_tripled)
        total = torch.zeros_like(grad_plain if grad_plain is not None else grad_tripled)
        if grad_plain is not None:
            total += grad_plain
        if grad_tripled is not None:
            total += 3 * grad_tripled
        return total


a = torch.tensor([1.0, -1.0, 2.0], requires_grad=True)
plain, tripled = TwoViews.apply(a)
(plain * plain).sum().backward()
print(a.grad)
a.grad = None
plain, tripled = TwoViews.apply(a)
tripled.sum().backward()
print(a.grad)

b = a * 2
b.grad_fn.metadata["made by"] = "doubling"
print(a.is_leaf, b.is_leaf, b.requires_grad, b.grad_fn.metadata)
c = b.detach()
print(c.is_leaf, c.requires_grad, c.grad_fn)
b.retain_grad()
(b ** 2).sum().backward()
print(b.grad, a.grad, b.retains_grad)
b.detach_()
print(b.is_leaf, b.requires_grad, b.grad_fn)
d = torch.ones(2)
print(d.requires_grad_().is_leaf, d.requires_grad)
try:
    (a * 2).requires_grad_(False)
except RuntimeError as error:
    print(error)
