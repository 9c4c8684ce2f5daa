# In the style of d2l.ai's "Softmax Regression Implementation from Scratch" and its concise
# version, on synthetic data (three Gaussian clusters in 4 dimensions) instead of a download:
# softmax by hand, cross-entropy by picking log-probabilities, accuracy, then nn.Flatten,
# nn.Linear, nn.CrossEntropyLoss(reduction='none') and optim.SGD.
import torch
from torch import nn

num_inputs, num_outputs, n = 4, 3, 300
centers = torch.tensor([[2.0, 0, 0, 1], [0, 2.0, 0, -1], [0, 0, 2.0, 0]])
labels = torch.arange(n) % num_outputs
features = centers[labels] + torch.randn(n, num_inputs)
print(features[:3], labels[:6])

W = torch.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
b = torch.zeros(num_outputs, requires_grad=True)

X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
print(X.sum(0, keepdim=True), X.sum(1, keepdim=True))


def softmax(X):
    X_exp = torch.exp(X)
    partition = X_exp.sum(1, keepdim=True)
    return X_exp / partition


X = torch.normal(0, 1, (2, 5))
X_prob = softmax(X)
print(X_prob, (X_prob.sum(1) - 1).abs() < 1e-6)  # float32 sums: equal up to the last bit


def net(X):
    return softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b)


y = torch.tensor([0, 2])
y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
print(y_hat[[0, 1], y])


def cross_entropy(y_hat, y):
    return - torch.log(y_hat[range(len(y_hat)), y])


print(cross_entropy(y_hat, y))


def accuracy(y_hat, y):
    """The number of correct predictions."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


print(accuracy(y_hat, y) / len(y))


def batches(batch_size):
    for i in range(0, n, batch_size):
        yield features[i:i + batch_size], labels[i:i + batch_size]


def updater(batch_size, lr=0.1):
    with torch.no_grad():
        for param in (W, b):
            param -= lr * param.grad / batch_size
            param.grad.zero_()


for epoch in range(5):
    total_loss, total_correct = 0.0, 0.0
    for X, y in batches(30):
        y_hat = net(X)
        l = cross_entropy(y_hat, y)
        l.sum().backward()
        updater(X.shape[0])
        total_loss += float(l.sum())
        total_correct += accuracy(y_hat, y)
    print(f'epoch {epoch + 1}, loss {total_loss / n:.4f}, train acc {total_correct / n:.3f}')
print(net(features[:4]).argmax(axis=1), labels[:4])

# The concise implementation.
net = nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_outputs))


def init_weights(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, std=0.01)


net.apply(init_weights)
print(net)
loss = nn.CrossEntropyLoss(reduction='none')
trainer = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(5):
    for X, y in batches(30):
        l = loss(net(X), y)
        trainer.zero_grad()
        l.mean().backward()
        trainer.step()
    with torch.no_grad():
        y_hat = net(features)
        print(f'epoch {epoch + 1}, loss {float(loss(y_hat, labels).mean()):.4f}, '
              f'train acc {accuracy(y_hat, labels) / n:.3f}')
print(loss(net(features[:2]), labels[:2]).grad_fn)
print(nn.CrossEntropyLoss()(net(features[:2]), labels[:2]))
