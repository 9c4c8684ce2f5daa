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

# Hooks on the graph's nodes: a pre-hook sees the gradient of the node's output, a hook what
# it sends to its inputs (and may replace it), and a leaf's hook runs once its .grad is summed.
x = torch.tensor([1.0, 2.0], requires_grad=True)
w = torch.tensor([3.0, -1.0], requires_grad=True)
y = x * w
node = y.grad_fn
pre = node.register_prehook(lambda grad_outputs: print("prehook:", grad_outputs))
post = node.register_hook(lambda grad_inputs, grad_outputs: print("hook:", grad_inputs, grad_outputs))
z = y.sum()
z.backward(retain_graph=True)
print(x.grad, w.grad)
pre.remove()
post.remove()
node.register_hook(lambda grad_inputs, grad_outputs: (grad_inputs[0] * 0, grad_inputs[1]))
node.register_prehook(lambda grad_outputs: (grad_outputs[0] * 2,))
x.grad = None
w.grad = None
z.backward()
print(x.grad, w.grad)

lr = 0.1
p = torch.tensor([1.0, -2.0], requires_grad=True)


def step(param):
    with torch.no_grad():
        param -= lr * param.grad
    param.grad = None


p.register_post_accumulate_grad_hook(step)
for _ in range(3):
    (p ** 2).sum().backward()
    print(p, p.grad)
