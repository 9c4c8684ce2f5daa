# Seed post 001 (how PyTorch computes gradients): a = x + 2y, b = a + z/2 with the legacy
# constructor, retain_grad on a, a vector seed, and the note that backward(v) is sum(b * v).
import torch

''' initial xyz (requires_grad=True) '''
x = torch.Tensor([2, 1]).requires_grad_()
y = torch.Tensor([1, 3]).requires_grad_()
z = torch.Tensor([5, 2]).requires_grad_()

a = x + y*2
a.retain_grad()
# a = a.detach()
b = a + z/2
b.backward(torch.ones_like(x))
# b.backward(b.data)
print(x.data, x.grad)
print(y.data, y.grad)
print(z.data, z.grad)
print(a.data, a.grad)

for t in (x, y, z, a, b):
    print(t.is_leaf, t.requires_grad, t.grad_fn)

try:
    (x + y * 2 + z / 2).backward()
except RuntimeError as error:
    print("RuntimeError:", error)

b = a.detach() + z / 2
b = torch.sum(b*torch.ones_like(x))
z.grad = None
b.backward()
print(z.grad)
