"""chainrule on a real GPU against PyTorch CUDA. Skipped, with the reason, where there is none."""
import numpy as np
import pytest
import torch

import chainrule
from chainrule.testing import assert_close

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not chainrule.cuda.is_available(),
                       reason="no CUDA GPU with CuPy here (CI has none); run benchmarks/gpu.sh on one"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch here has no CUDA"),
]

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("op", ["add", "mul", "matmul", "tanh", "sigmoid", "sum", "max", "index", "cat"])
def test_ops_match_pytorch_cuda(op):
    a, b = RNG.standard_normal((4, 5)), RNG.standard_normal((5, 5))
    functions = {
        "add": lambda lib, x, y: x + y[0], "mul": lambda lib, x, y: x * y[1:2],
        "matmul": lambda lib, x, y: x @ y, "tanh": lambda lib, x, y: x.tanh() + y[:4],
        "sigmoid": lambda lib, x, y: x.sigmoid() * y[0], "sum": lambda lib, x, y: x.sum(dim=0) + y.sum(),
        "max": lambda lib, x, y: x.max(dim=1)[0] + y.max(), "index": lambda lib, x, y: x[[0, 0, 3]] @ y,
        "cat": lambda lib, x, y: lib.cat([x, y], dim=0),
    }
    results = []
    for lib, device in ((chainrule, "cuda"), (torch, "cuda")):
        x = lib.tensor(a, device=device, requires_grad=True)
        y = lib.tensor(b, device=device, requires_grad=True)
        out = functions[op](lib, x, y)
        seed = lib.tensor(np.ones(tuple(out.shape)), device=device)
        out.backward(seed)
        assert x.grad.device.type == "cuda"
        results.append([t.detach().cpu() for t in (out, x.grad, y.grad)])
    for ours, theirs in zip(*results):
        assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_per_sample_gradients_on_cuda_match_torch_func():
    from torch.func import functional_call, grad, vmap
    torch.manual_seed(0)
    t_model = torch.nn.Sequential(torch.nn.Linear(1, 5, bias=False), torch.nn.Sigmoid(),
                                  torch.nn.Linear(5, 1, bias=False)).double().cuda()
    c_model = chainrule.nn.Sequential(chainrule.nn.Linear(1, 5, bias=False), chainrule.nn.Sigmoid(),
                                      chainrule.nn.Linear(5, 1, bias=False)).double()
    for p, q in zip(t_model.parameters(), c_model.parameters()):
        q.data = chainrule.tensor(p.detach().cpu().numpy())
    c_model.to("cuda")
    x = RNG.standard_normal((1000, 1))
    ours = chainrule.func.per_sample_grad(c_model, chainrule.tensor(x, device="cuda"))
    params = {k: v.detach() for k, v in t_model.named_parameters()}
    reference = vmap(grad(lambda p, s: functional_call(t_model, p, (s.unsqueeze(0),)).sum()),
                     in_dims=(None, 0))(params, torch.tensor(x, device="cuda"))
    for name in ours:
        assert ours[name].device.type == "cuda"
        assert_close(ours[name].cpu(), reference[name], rtol=1e-10, atol=1e-12)
