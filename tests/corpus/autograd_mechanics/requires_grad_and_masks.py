# In the style of the "Autograd mechanics" note's sections "Setting requires_grad" (freezing a
# part of a model with Module.requires_grad_ before fine-tuning it) and "Division by Zero in
# Autograd" (masking the output of x / 0 still gives NaN gradients; choosing the divisor
# first gives clean ones).
import torch
from torch import nn

torch.set_default_dtype(torch.float64)  # the printed weights to the last digit, as PyTorch's
backbone = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
head = nn.Linear(4, 2)
model = nn.Sequential(backbone, head)
backbone.requires_grad_(False)
print([(name, p.requires_grad) for name, p in model.named_parameters()])
optimizer = torch.optim.SGD((p for p in model.parameters() if p.requires_grad), lr=0.1)
inputs = torch.randn(5, 3)
targets = torch.randn(5, 2)
before = backbone[0].weight.clone()
for step in range(3):
    optimizer.zero_grad()
    loss = ((model(inputs) - targets) ** 2).mean()
    loss.backward()
    optimizer.step()
    print(step, loss.item())
print(backbone[0].weight.grad, torch.equal(before, backbone[0].weight))
print(head.weight.grad)
out = backbone(inputs)
print(out.requires_grad, out.grad_fn)
model.requires_grad_()
print(all(p.requires_grad for p in model.parameters()))

x = torch.tensor([1.0, 1.0], requires_grad=True)
div = torch.tensor([0.0, 1.0])
y = x / div
mask = div != 0
loss = y[mask].sum()
loss.backward()
print(y, x.grad)

x.grad = None
safe_div = torch.where(mask, div, torch.ones_like(div))
safe = torch.where(mask, x / safe_div, torch.zeros_like(x))
safe.sum().backward()
print(safe, x.grad)
