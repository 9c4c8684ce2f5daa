# In the style of the "Autograd mechanics" note's section on hooks: a tensor hook that changes
# the gradient, one on a leaf, removing a hook, retain_grad, and what a hook sees.
import torch

seen = []
a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
b = a * 3
handle = b.register_hook(lambda grad: grad * 10)
b.register_hook(lambda grad: seen.append(grad.clone()))
c = (b * b).sum()
c.backward()
print(a.grad)
print(seen)

a.grad = None
handle.remove()
b = a * 3
b.register_hook(lambda grad: print("hook on b:", grad))
a.register_hook(lambda grad: print("hook on a:", grad))
(b ** 2).sum().backward()
print(a.grad)

x = torch.tensor([0.5, -0.5], requires_grad=True)
y = x.tanh()
y.retain_grad()
z = (y * y).sum()
z.backward()
print(y.grad, x.grad, y.retains_grad, x.is_leaf)
try:
    torch.tensor([1.0]).register_hook(lambda grad: grad)
except RuntimeError as error:
    print(error)
