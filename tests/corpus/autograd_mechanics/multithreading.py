# In the style of the "Autograd mechanics" note's section "Multithreaded Autograd": several
# threads each build a graph and run backward at the same time; grad modes are per thread (a
# thread inside no_grad does not stop another from recording); threads sharing one leaf add
# their gradients into its .grad.
import threading

import torch

results = {}


def train_fn(k):
    x = torch.ones(3, 3, requires_grad=True)
    for _ in range(200):  # long enough for the threads to interleave
        y = (x + k) * (x + 2) * 0.5
        x.grad = None
        y.sum().backward()
    results[k] = x.grad


threads = [threading.Thread(target=train_fn, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for k in sorted(results):
    print(k, results[k][0])

modes = {}


def without_grad():
    with torch.no_grad():
        modes["inside no_grad"] = torch.is_grad_enabled()
        started.wait()
        finished.wait()


def with_grad():
    started.set()
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    modes["other thread"] = torch.is_grad_enabled()
    modes["recorded"] = (w * 2).requires_grad
    finished.set()


started, finished = threading.Event(), threading.Event()
threads = [threading.Thread(target=without_grad), threading.Thread(target=with_grad)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sorted(modes.items()), torch.is_grad_enabled())

shared = torch.tensor([1.0, -1.0], requires_grad=True)


def accumulate(scale):
    (shared * scale).sum().backward()


threads = [threading.Thread(target=accumulate, args=(s,)) for s in (1.0, 2.0, 3.0)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(shared.grad)
