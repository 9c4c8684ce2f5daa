# Seed post 003 (the gradient of each term of a composite loss): autograd.grad per term with
# retain_graph, then the cached-.grad way, as the answer shows them.
import torch

x = torch.rand(1, 10, requires_grad=True)
lossA = x.pow(2).sum()
lossB = x.mean()
gradA = torch.autograd.grad(lossA, x, retain_graph=True)
print(gradA)
gradB = torch.autograd.grad(lossB, x)
print(gradB)

lossA = x.pow(2).sum()
lossB = x.mean()
lossA.backward(retain_graph=True)
x.gradA = x.grad
x.grad = None
lossB.backward()
x.gradB = x.grad
print((x.gradA, x.gradB))
print(torch.equal(x.gradA, gradA[0]), torch.equal(x.gradB, gradB[0]))

# The asker's loop, with a small net and a composite loss.
torch.manual_seed(1)
mynet_fo = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
optimizer_fo = torch.optim.SGD(mynet_fo.parameters(), lr=0.01)
xy = torch.linspace(0, 1, 10).reshape(5, 2)
for epoc in range(1, 4):
    optimizer_fo.zero_grad()
    u = mynet_fo(xy)
    loss_total = (u ** 2).mean() + 0.5 * (u - 1).abs().mean()
    loss_total.backward(retain_graph=True)
    optimizer_fo.step()
    print(epoc, f"{loss_total.item():.6f}")
