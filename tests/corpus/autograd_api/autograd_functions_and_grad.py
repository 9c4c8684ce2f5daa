# In the style of the examples in PyTorch's torch.autograd docs (and "Extending PyTorch"):
# torch.autograd.backward and grad, higher-order gradients, custom Functions (saving the
# result, setup_context with needs_input_grad, a non-differentiable output), gradcheck, hooks.
import torch
from torch.autograd import Function, gradcheck
from torch.autograd.function import once_differentiable


x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = (x ** 3).sum()
torch.autograd.backward(y)
print(x.grad)
(g,) = torch.autograd.grad((x ** 3).sum(), x, create_graph=True)
print(g)
(g2,) = torch.autograd.grad(g.sum(), x)
print(g2)
u = torch.tensor(2.0, requires_grad=True)
v = torch.tensor(5.0, requires_grad=True)
print(torch.autograd.grad(u * v + v, [u, v]))
print(torch.autograd.grad(u * 3, [u, v], allow_unused=True))
try:
    torch.autograd.grad(u * 3, [u, v])
except RuntimeError as error:
    print(error)


class Exp(Function):
    @staticmethod
    def forward(ctx, i):
        result = i.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        result, = ctx.saved_tensors
        return grad_output * result


inp = torch.tensor([0.0, 1.0], requires_grad=True)
output = Exp.apply(inp)
print(output)
output.sum().backward()
print(inp.grad, output.grad_fn.needs_input_grad)


class LinearFunction(Function):
    @staticmethod
    def forward(input, weight, bias):
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, weight, bias = inputs
        ctx.save_for_backward(input, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        LinearFunction.needs_seen = ctx.needs_input_grad
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias


linear = LinearFunction.apply
inputs = (torch.randn(4, 3, dtype=torch.double, requires_grad=True),
          torch.randn(2, 3, dtype=torch.double, requires_grad=True),
          torch.randn(2, dtype=torch.double, requires_grad=True))
test = gradcheck(linear, inputs, eps=1e-6, atol=1e-4)
print(test)
out = linear(inputs[0].detach(), inputs[1], None)
print(out.grad_fn.name(), out.shape)
out.sum().backward()
print(inputs[1].grad, LinearFunction.needs_seen)


class RowMax(Function):
    """The largest entry of each row, and where it is (not differentiable)."""

    @staticmethod
    def forward(ctx, x):
        values, indices = x.max(dim=1)
        mask = (x == values.unsqueeze(1)).double()
        ctx.mark_non_differentiable(indices, mask)
        ctx.save_for_backward(mask)
        return values, indices, mask

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_values, grad_indices, grad_mask):
        mask, = ctx.saved_tensors
        return grad_values.unsqueeze(1) * mask


m = torch.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], dtype=torch.double, requires_grad=True)
values, indices, mask = RowMax.apply(m)
print(values, indices, mask.requires_grad, indices.requires_grad)
(values * torch.tensor([1.0, 2.0], dtype=torch.double)).sum().backward()
print(m.grad)
print(gradcheck(lambda t: RowMax.apply(t)[0], (m,)))


class WrongCount(Function):
    @staticmethod
    def forward(ctx, a, scale):
        return a * scale

    @staticmethod
    def backward(ctx, grad):
        return grad


try:
    WrongCount.apply(inp, 2.0).sum().backward()
except RuntimeError as error:
    print(error)

v = torch.tensor([0., 0., 0.], requires_grad=True)
h = v.register_hook(lambda grad: grad * 2)
v.backward(torch.tensor([1., 2., 3.]))
print(v.grad)
h.remove()
