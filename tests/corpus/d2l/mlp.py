# In the style of d2l.ai's "Implementation of Multilayer Perceptrons" (from scratch and
# concise), on synthetic data: parameters as nn.Parameter, ReLU as torch.max with zeros,
# a hidden layer, cross-entropy, SGD; then nn.Sequential with nn.ReLU and net.apply.
import torch
from torch import nn

num_inputs, num_outputs, num_hiddens, n = 6, 3, 16, 240
labels = torch.arange(n) % num_outputs
features = torch.randn(n, num_inputs) + torch.eye(num_outputs, num_inputs)[labels] * 3

W1 = nn.Parameter(torch.randn(num_inputs, num_hiddens, requires_grad=True) * 0.01)
b1 = nn.Parameter(torch.zeros(num_hiddens, requires_grad=True))
W2 = nn.Parameter(torch.randn(num_hiddens, num_outputs, requires_grad=True) * 0.01)
b2 = nn.Parameter(torch.zeros(num_outputs, requires_grad=True))
params = [W1, b1, W2, b2]


def relu(X):
    a = torch.zeros_like(X)
    return torch.max(X, a)


print(relu(torch.tensor([-1.0, 0.5, 0.0])))


def net(X):
    X = X.reshape((-1, num_inputs))
    H = relu(X@W1 + b1)
    return (H@W2 + b2)


loss = nn.CrossEntropyLoss(reduction='none')
updater = torch.optim.SGD(params, lr=0.5)
for epoch in range(6):
    for i in range(0, n, 40):
        X, y = features[i:i + 40], labels[i:i + 40]
        l = loss(net(X), y)
        updater.zero_grad()
        l.mean().backward()
        updater.step()
    with torch.no_grad():
        out = net(features)
        accuracy = (out.argmax(axis=1) == labels).float().mean()
        print(f'epoch {epoch + 1}, loss {float(loss(out, labels).mean()):.4f}, acc {accuracy:.3f}')
print(W1.grad.shape, b2.grad)

net = nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_hiddens), nn.ReLU(),
                    nn.Linear(num_hiddens, num_outputs))


def init_weights(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, std=0.01)


net.apply(init_weights)
print(net)
trainer = torch.optim.SGD(net.parameters(), lr=0.5)
for epoch in range(6):
    for i in range(0, n, 40):
        l = loss(net(features[i:i + 40]), labels[i:i + 40])
        trainer.zero_grad()
        l.mean().backward()
        trainer.step()
    with torch.no_grad():
        print(f'epoch {epoch + 1}, loss {float(loss(net(features), labels).mean()):.4f}')
print(net[3].bias.grad)
