"""chainrule on CUDA against PyTorch CUDA, measured in the same run (a GPU and CuPy needed).

    python benchmarks/benchmark.py cuda
"""
import time

import numpy as np
import torch

import chainrule


def _synchronize():
    torch.cuda.synchronize()
    import cupy
    cupy.cuda.Device().synchronize()


def gpu_time(function, repeats=20, warmup=3):
    """Median seconds per call, with the GPU's queue drained before and after each call."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        _synchronize()
        start = time.perf_counter()
        function()
        _synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def mlp_step(lib, batch=4096, sizes=(4096, 4096, 4096, 10)):
    rng = np.random.default_rng(0)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [lib.nn.Linear(fan_in, fan_out), lib.nn.Tanh()]
    model = lib.nn.Sequential(*layers[:-1]).to("cuda")
    x = lib.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32), device="cuda")
    y = lib.tensor(rng.standard_normal((batch, sizes[-1])).astype(np.float32), device="cuda")
    optimizer = lib.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = lib.nn.MSELoss()

    def run():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    return run


def per_sample(n=100_000):
    from torch.func import functional_call, grad, vmap
    torch.manual_seed(0)
    t_model = torch.nn.Sequential(torch.nn.Linear(1, 5, bias=False), torch.nn.Sigmoid(),
                                  torch.nn.Linear(5, 1, bias=False)).double().cuda()
    c_model = chainrule.nn.Sequential(chainrule.nn.Linear(1, 5, bias=False), chainrule.nn.Sigmoid(),
                                      chainrule.nn.Linear(5, 1, bias=False)).double().to("cuda")
    x = np.random.default_rng(0).standard_normal((n, 1))
    xc, xt = chainrule.tensor(x, device="cuda"), torch.tensor(x, device="cuda")
    params = {k: v.detach() for k, v in t_model.named_parameters()}
    vmapped = vmap(grad(lambda p, s: functional_call(t_model, p, (s.unsqueeze(0),)).sum()), in_dims=(None, 0))
    return (lambda: chainrule.func.per_sample_grad(c_model, xc, flat=True)), (lambda: vmapped(params, xt))


def main():
    if not chainrule.cuda.is_available() or not torch.cuda.is_available():
        raise SystemExit("benchmark_cuda: needs a CUDA GPU with CuPy and a CUDA build of PyTorch")
    print(f"device: {torch.cuda.get_device_name()}")
    ours, theirs = gpu_time(mlp_step(chainrule)), gpu_time(mlp_step(torch))
    print(f"MLP step 4096-4096-4096-10, batch 4096, f32: chainrule {ours * 1e3:.2f} ms, torch "
          f"{theirs * 1e3:.2f} ms, ratio {ours / theirs:.2f} (target <= 1.2)")
    ours_fn, theirs_fn = per_sample()
    ours, theirs = gpu_time(ours_fn), gpu_time(theirs_fn)
    print(f"per-sample gradients, lesson-4 network, N=100000, f64: chainrule {ours * 1e3:.2f} ms, "
          f"torch.func vmap {theirs * 1e3:.2f} ms, ratio {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
