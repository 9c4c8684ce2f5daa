# In the style of the "Autograd mechanics" note's section "Backward Hooks execution": which
# hooks fire (a tensor's hooks fire even when autograd.grad returns its gradient without
# running its node; a node's hooks only when the node runs) and in which order (tensor hooks,
# then retain_grad, then the node's pre-hooks, the node, post-accumulate hooks, node hooks),
# hooks of one kind in the order registered, each seeing what the one before returned.
import torch

x = torch.tensor([1.0, -2.0], requires_grad=True)
y = x * 3
y.grad_fn.register_prehook(lambda grads: print("node pre-hook", grads))
y.register_hook(lambda grad: print("tensor hook", grad))
y.retain_grad()
y.grad_fn.register_hook(lambda grad_inputs, grad_outputs: print("node hook", grad_inputs, grad_outputs))
x.register_hook(lambda grad: print("leaf hook", grad))
x.register_post_accumulate_grad_hook(lambda leaf: print("post-accumulate hook", leaf.grad))
loss = (y * y).sum()
loss.backward(retain_graph=True)
print(y.grad, x.grad)

print("autograd.grad with y as input:")
print(torch.autograd.grad(loss, y))

w = torch.tensor([0.5, 1.5], requires_grad=True)
h = w.exp()
h.retain_grad()
h.register_hook(lambda grad: grad * 2)
h.register_hook(lambda grad: print("second tensor hook sees", grad) or grad + 1)
h.grad_fn.register_prehook(lambda grads: (grads[0] * 10,))
h.sum().backward()
print(h.grad, w.grad)

# A node hook's result replaces the gradients of the node's inputs.
a = torch.tensor([2.0, 3.0], requires_grad=True)
b = torch.tensor([4.0, 5.0], requires_grad=True)
c = a * b
c.grad_fn.register_hook(lambda grad_inputs, grad_outputs: (grad_inputs[0], torch.zeros(2)))
c.sum().backward()
print(a.grad, b.grad)
