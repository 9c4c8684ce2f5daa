"""chainrule against PyTorch, measured in the same run: ratios < 1 mean chainrule is faster.

    python benchmarks/bench_core.py

Each figure is the best of several repeats (the least disturbed by other work on the machine).
"""
import argparse
import time

import numpy as np
import torch

import chainrule


def best_time(function, repeats=7, min_seconds=0.2):
    """Seconds per call: calls are batched until a batch lasts ``min_seconds``; best of repeats."""
    function()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
        calls *= 2
    times = [elapsed / calls]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls)
    return min(times)


def lesson1(lib):
    def run():
        x = lib.tensor([2.0, 1.0], requires_grad=True)
        y = lib.tensor([1.0, 3.0], requires_grad=True)
        z = lib.tensor([5.0, 2.0], requires_grad=True)
        a = x + 2 * y
        b = a + z / 2
        b.backward(lib.ones_like(b))
    return run


def mlp_step(lib, batch=256, sizes=(784, 256, 256, 10), seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [lib.nn.Linear(fan_in, fan_out), lib.nn.Tanh()]
    model = lib.nn.Sequential(*layers[:-1])
    x = lib.tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = lib.tensor(rng.standard_normal((batch, sizes[-1])).astype(np.float32))
    loss_fn = lib.nn.MSELoss()
    optimizer = lib.optim.SGD(model.parameters(), lr=0.01)

    def run():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    return run


def chain(lib, length=100_000):
    def run():
        x = lib.tensor(1.0, requires_grad=True)
        y = x
        for _ in range(length):
            y = y * 1.0000001
        y.backward()
    return run


def report(name, chainrule_seconds, torch_seconds, target):
    ratio = chainrule_seconds / torch_seconds
    verdict = "meets" if ratio <= target else "misses"
    print(f"{name:<44} chainrule {chainrule_seconds * 1e3:9.3f} ms   torch {torch_seconds * 1e3:9.3f} ms"
          f"   ratio {ratio:5.2f}  (target <= {target}: {verdict})")
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries' CPU math (default: as installed)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, numpy {np.__version__}, torch threads {torch.get_num_threads()}")
    report("lesson-1 graph, creation + backward", best_time(lesson1(chainrule)), best_time(lesson1(torch)), 0.8)
    report("MLP step 784-256-256-10, batch 256, f32", best_time(mlp_step(chainrule), repeats=15),
           best_time(mlp_step(torch), repeats=15), 0.95)
    report("10^5-op chain, build + backward", best_time(chain(chainrule), repeats=3, min_seconds=0),
           best_time(chain(torch), repeats=3, min_seconds=0), float("inf"))


if __name__ == "__main__":
    main()
