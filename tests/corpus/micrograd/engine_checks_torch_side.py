# micrograd's engine tests check a scalar engine against PyTorch: the torch side of such tests,
# with expressions of our own (relu, powers, division, negation, reuse of a value).
import torch


def check(name, value, grads):
    """What micrograd's tests compare with their scalar engine: the value and the gradients."""
    print(name, value.data.item(), [g.grad.item() for g in grads])


x = torch.Tensor([-3.0]).double()
x.requires_grad = True
z = 3 * x + 1 - x
q = z.relu() + z * x
h = (z * x).relu()
y = h + q + q * x
y.backward()
check("first", y, [x])

a = torch.Tensor([-2.0]).double()
b = torch.Tensor([3.0]).double()
a.requires_grad = True
b.requires_grad = True
c = a * b + b ** 2
d = c * 2 + (a + b).relu() - a
d = d + 4 * d + (b - a).relu()
e = c - d
f = e ** 2
g = f / 3.0
g = g + 12.0 / f
g.backward()
check("second", g, [a, b])
print(g.grad_fn, a.grad.dtype, type(a.grad.item()))

# The same with a tensor of several values and a vector seed.
v = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
w = (v * v - v).relu() + (-v).relu() / 2 - v ** 3
w.backward(torch.ones_like(w))
print(w, v.grad)
