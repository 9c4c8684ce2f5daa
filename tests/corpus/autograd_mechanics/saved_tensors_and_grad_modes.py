# In the style of PyTorch's "Autograd mechanics" note: what a node saves (grad_fn._saved_*),
# gradients where a function has no derivative, how requires_grad flows, the grad modes
# (no_grad, enable_grad, set_grad_enabled, inference_mode, eval mode), and the version checks
# that catch an in-place change of a saved tensor.
import torch

x = torch.randn(5, requires_grad=True)
y = x.pow(2)
print(x.equal(y.grad_fn._saved_self))
print(x is y.grad_fn._saved_self)
print(y.grad_fn._saved_exponent)
y = x.exp()
print(y.equal(y.grad_fn._saved_result))
print(y is y.grad_fn._saved_result)
z = x * torch.ones(5)
print(z.grad_fn._saved_other, z.grad_fn._saved_self)
z.sum().backward()
try:
    z.grad_fn._saved_other
except RuntimeError as error:
    print(error)

# Where the function has no derivative, PyTorch's choice of one.
p = torch.tensor([0.0, -1.0, 2.0], requires_grad=True)
(p.relu() + p.abs() + p.clamp(min=0.0)).sum().backward()
print(p.grad)
q = torch.tensor([0.0, 4.0], requires_grad=True)
q.sqrt().sum().backward()
print(q.grad)
r = torch.zeros(3, requires_grad=True)
torch.norm(r).backward()
print(r.grad)

# requires_grad flows from the inputs.
x = torch.randn(5, 5)
y = torch.randn(5, 5)
z = torch.randn((5, 5), requires_grad=True)
a = x + y
print(a.requires_grad)
b = a + z
print(b.requires_grad, b.is_leaf, b.grad_fn)

# Grad modes.
with torch.no_grad():
    c = z * 2
    with torch.enable_grad():
        d = z * 2
print(c.requires_grad, d.requires_grad, torch.is_grad_enabled())
torch.set_grad_enabled(False)
e = z * 2
torch.set_grad_enabled(True)
print(e.requires_grad, torch.is_grad_enabled())
with torch.set_grad_enabled(False):
    f = z * 2
print(f.requires_grad)
with torch.inference_mode():
    g = z * 2
print(g.requires_grad)
model = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.ReLU())
model.eval()
print(model.training, model[0].training, model(x).requires_grad)
model.train()
print(model.training, model[1].training)

# In-place correctness checks.
leaf = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
out = leaf.pow(2).sum()
with torch.no_grad():
    leaf.mul_(2)
try:
    out.backward()
except RuntimeError as error:
    print(error)
y = torch.tensor([1.0, 2.0], requires_grad=True).exp()
y.detach().add_(1)
try:
    y.sum().backward()
except RuntimeError as error:
    print(error)
try:
    leaf.add_(1)
except RuntimeError as error:
    print(error)
w = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
h = w.sigmoid()
h.detach().zero_()
try:
    h.sum().backward()
except RuntimeError as error:
    print(error)
