# In the style of the "Autograd mechanics" note's section "Hooks for saved tensors": pack and
# unpack hooks that show what each node saves and when backward reads it, hooks that keep a
# saved tensor elsewhere meanwhile (here: as a NumPy array, or on the CPU with save_on_cpu),
# nested blocks (the innermost wins), reading grad_fn._saved_* through the hooks, and what a
# custom Function saves with ctx.save_for_backward.
import torch
from torch.autograd.graph import save_on_cpu, saved_tensors_hooks


def pack_hook(x):
    print("Packing", x)
    return x


def unpack_hook(x):
    print("Unpacking", x)
    return x


a = torch.ones(4, requires_grad=True)
b = torch.ones(4, requires_grad=True) * 3
with saved_tensors_hooks(pack_hook, unpack_hook):
    y = a * b
y.sum().backward()
print(a.grad)

x = torch.tensor([0.5, 1.5], requires_grad=True)
w = torch.tensor([2.0, -1.0], requires_grad=True)
with saved_tensors_hooks(pack_hook, unpack_hook):
    e = x.exp()        # saves its result
    s = x.sin()        # saves its input
    p = x.pow(2)       # the exponent is a number: only x
    q = x + w          # saves nothing
    d = x / w          # both
    t = (x * w).tanh()
print("reading e.grad_fn._saved_result:")
print(e.grad_fn._saved_result)
(e + s + p + q + d + t).sum().backward()
print(x.grad, w.grad)
try:
    e.grad_fn._saved_result
except RuntimeError as error:
    print(error)

# Keeping saved tensors out of the graph meanwhile: here as NumPy arrays.
stored = []


def to_numpy(tensor):
    stored.append(tensor.detach().numpy().copy())
    return len(stored) - 1


def from_numpy(index):
    return torch.from_numpy(stored[index])


u = torch.linspace(-1.0, 1.0, 5, requires_grad=True)
with saved_tensors_hooks(to_numpy, from_numpy):
    v = (u * u).sigmoid() * u
v.sum().backward()
print(len(stored), u.grad)

# The innermost block wins; leaving it restores the outer one.
with saved_tensors_hooks(lambda t: print("outer pack") or t, lambda t: print("outer unpack") or t):
    with saved_tensors_hooks(lambda t: print("inner pack") or t, lambda t: print("inner unpack") or t):
        m = x.cos()
    n = x.log()
(m + n).sum().backward()

with save_on_cpu():
    r = (x * w).exp()
r.sum().backward()
print(x.grad, w.grad)


# What a custom Function saves goes through the hooks too.
class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, base):
        ctx.save_for_backward(base)
        return base ** 3

    @staticmethod
    def backward(ctx, grad_output):
        base, = ctx.saved_tensors
        return grad_output * 3 * base ** 2


x.grad = None
with saved_tensors_hooks(pack_hook, unpack_hook):
    cubed = Cube.apply(x * 2)
cubed.sum().backward()
print(x.grad)
