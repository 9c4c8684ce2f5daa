# In the style of "Per-sample-gradients" (torch.func): a small classifier (an MLP where the
# tutorial has a CNN), each sample's gradient first by a loop of batch-size-1 backward passes,
# then at once by vmap(grad(...)) over the model as a function of its parameters.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

torch.set_default_dtype(torch.float64)


class SmallMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.fc2 = nn.Linear(10, 4)

    def forward(self, x):
        hidden = torch.tanh(self.fc1(x))
        return F.log_softmax(self.fc2(hidden), dim=1)


def loss_fn(predictions, targets):
    return F.nll_loss(predictions, targets)


batch_size = 8
data = torch.randn(batch_size, 6)
targets = torch.tensor([0, 3, 1, 1, 2, 0, 3, 2])
model = SmallMLP()

predictions = model(data)
loss = loss_fn(predictions, targets)
loss.backward()
print("batch loss", loss)
print("summed fc2.bias gradient", model.fc2.bias.grad)


def compute_grad(sample, target):
    sample = sample.unsqueeze(0)  # the model expects a batch: make one of size 1
    target = target.unsqueeze(0)
    prediction = model(sample)
    loss = loss_fn(prediction, target)
    return torch.autograd.grad(loss, list(model.parameters()))


def compute_sample_grads(data, targets):
    sample_grads = [compute_grad(data[i], targets[i]) for i in range(batch_size)]
    return [torch.stack(shards) for shards in zip(*sample_grads)]


per_sample_grads = compute_sample_grads(data, targets)
print([tuple(g.shape) for g in per_sample_grads])

# The model as a function of its parameters: functional_call swaps them in for the call.
params = {name: p.detach() for name, p in model.named_parameters()}
buffers = {}  # this MLP has none


def compute_loss(params, buffers, sample, target):
    batch = sample.unsqueeze(0)
    targets = target.unsqueeze(0)
    predictions = functional_call(model, (params, buffers), (batch,))
    return loss_fn(predictions, targets)


ft_compute_grad = grad(compute_loss)
ft_compute_sample_grad = vmap(ft_compute_grad, in_dims=(None, None, 0, 0))
ft_per_sample_grads = ft_compute_sample_grad(params, buffers, data, targets)

for name, looped in zip(ft_per_sample_grads, per_sample_grads):
    vmapped = ft_per_sample_grads[name]
    print(name, tuple(vmapped.shape), (vmapped - looped).abs().max() < 1e-12)
print("per-sample fc2.bias gradients\n", ft_per_sample_grads["fc2.bias"])
print("their mean is the batch gradient:",
      (ft_per_sample_grads["fc2.bias"].mean(0) - model.fc2.bias.grad).abs().max() < 1e-12)

# One gradient norm per sample: what differentially private training clips.
norms = torch.stack([(g.reshape(batch_size, -1) ** 2).sum(1)
                     for g in ft_per_sample_grads.values()]).sum(0).sqrt()
print("per-sample gradient norms", norms)
