# In the style of "A Gentle Introduction to torch.autograd": Q = 3a^3 - b^2, a vector seed,
# checking against the hand-computed gradients, what is excluded from the graph, and freezing
# the parameters of a model but its new last layer before fine-tuning it.
import torch
from torch import nn, optim

a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)
Q = 3*a**3 - b**2
external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)
print(9*a**2 == a.grad)
print(-2*b == b.grad)
print(a.grad, b.grad, Q)

x = torch.rand(5, 5)
y = torch.rand(5, 5)
z = torch.rand((5, 5), requires_grad=True)
a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")

model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
for param in model.parameters():
    param.requires_grad = False
model[2] = nn.Linear(16, 10)
head = model[-1]
print(model)
print([p.requires_grad for p in model.parameters()])
optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
data = torch.rand(3, 8)
labels = torch.rand(3, 10)
prediction = model(data)
loss = (prediction - labels).sum()
loss.backward()
optimizer.step()
print(model[0].weight.grad, head.bias.grad)
print(head.weight[0])
