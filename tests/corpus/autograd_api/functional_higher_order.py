# In the style of the examples in PyTorch's torch.autograd.functional docs (jacobian, hessian,
# vjp, jvp, vhp, hvp, for one input and for a tuple of inputs, with create_graph and strict)
# and of gradgradcheck's: second derivatives checked against finite differences. float64, as
# those examples' checks need.
import torch
from torch.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp
from torch.autograd import gradcheck, gradgradcheck


def softplus_rows(x):
    return (1 + x.exp()).log().sum(dim=1)


def weighted_sum(x, y):
    return 3 * x * y + x.sin()


def cubic_energy(x):
    return (x.pow(3) - 2 * x).sum()


def coupled_energy(x, y):
    return (x.pow(2) * y + y.exp()).sum()


x = torch.rand(2, 3, dtype=torch.float64)
print(jacobian(softplus_rows, x))
pair = (torch.rand(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64))
jx, jy = jacobian(weighted_sum, pair)
print(jx)
print(jy)
print(jacobian(weighted_sum, pair, create_graph=True)[0].requires_grad)

v = torch.ones(2, dtype=torch.float64)
print(vjp(softplus_rows, x, v))
u = torch.ones(2, 3, dtype=torch.float64)
print(jvp(softplus_rows, x, u))
print(jvp(weighted_sum, pair, (torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))))

h = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
print(hessian(cubic_energy, h))
hxx, hxy = hessian(coupled_energy, (h, 2 - h))[0]
print(hxx)
print(hxy)
print(vhp(cubic_energy, h, torch.ones(3, dtype=torch.float64)))
print(hvp(cubic_energy, h, torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)))
print(vhp(coupled_energy, (h, h), (torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))))
try:
    hessian(lambda t: t * t, h)
except RuntimeError as error:
    print(error)

a = torch.randn(4, dtype=torch.float64, requires_grad=True)
b = torch.randn(4, dtype=torch.float64, requires_grad=True)
print(gradcheck(lambda p, q: (p * q).tanh(), (a, b)))
print(gradgradcheck(lambda p, q: (p * q).tanh(), (a, b)))
print(gradgradcheck(lambda p: p.sigmoid() * p, (a,), torch.ones(4, dtype=torch.float64, requires_grad=True)))
print(torch.randn(3))  # gradgradcheck drew its grad_outputs from the same generator

# A gradient seed that requires grad is part of the graph create_graph records.
s = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
(g,) = torch.autograd.grad(a.exp(), a, s, create_graph=True)
print(g)
print(torch.autograd.grad(g.sum(), [a, s]))
