# In the style of "Model ensembling" (torch.func): several models of one architecture, run one
# by one, then as one batch of models with stack_module_state, functional_call and vmap, on a
# minibatch per model or one minibatch for all.
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

torch.set_default_dtype(torch.float64)


class SimpleMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 12)
        self.fc3 = nn.Linear(12, 3)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


num_models = 5
data = torch.randn(40, 8)
minibatches = data.reshape(num_models, 8, 8)
models = [SimpleMLP() for _ in range(num_models)]

minibatch = minibatches[0]
predictions_same_minibatch = [model(minibatch) for model in models]
predictions_diff_minibatch = [model(batch) for model, batch in zip(models, minibatches)]
print("model 0 on its minibatch\n", predictions_diff_minibatch[0][:3])

# One batch of models: each parameter stacked along a new first axis.
params, buffers = stack_module_state(models)
print({name: tuple(p.shape) for name, p in params.items()})
print("buffers", buffers)

base_model = models[0]  # any one of them: functional_call replaces all its parameters


def fmodel(params, buffers, x):
    return functional_call(base_model, (params, buffers), (x,))


# A different minibatch for each model: batch over the models and the minibatches together.
predictions_diff_vmap = vmap(fmodel)(params, buffers, minibatches)
print(tuple(predictions_diff_vmap.shape))
print("same as the loop:",
      (predictions_diff_vmap - torch.stack(predictions_diff_minibatch)).abs().max() < 1e-12)

# The same minibatch for every model: in_dims None for the data.
predictions_same_vmap = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, minibatch)
print("same as the loop:",
      (predictions_same_vmap - torch.stack(predictions_same_minibatch)).abs().max() < 1e-12)
print("ensemble mean prediction\n", predictions_same_vmap.mean(0)[:3].detach())
print("the models disagree on sample 0:", predictions_same_vmap[:, 0].detach())
