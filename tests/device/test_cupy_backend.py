"""The real CupyBackend class, driven by a fake ``cupy`` module made of NumPy.

The fake lacks the Array-API names that CuPy spells otherwise (permute_dims, concat,
matrix_transpose, astype), so this proves the adapter in ``chainrule.backends`` and the backend's
own code paths (transfers, scatter-add, seeding) in CI, where no GPU exists.
"""
import contextlib
import sys
import types

import numpy as np
import pytest

import chainrule
from chainrule.testing import assert_close

HIDDEN = {"permute_dims", "concat", "matrix_transpose", "astype", "bool"}


class FakeCupy(types.ModuleType):
    def __init__(self):
        super().__init__("cupy")
        self.cuda = types.SimpleNamespace(
            Device=lambda index=0: contextlib.nullcontext(),
            runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
        self.random = types.SimpleNamespace(default_rng=np.random.default_rng)
        self.asnumpy = np.asarray

    def __getattr__(self, name):
        if name in HIDDEN:
            raise AttributeError(name)
        return getattr(np, name)


@pytest.fixture
def fake_gpu(monkeypatch):
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = np.add.at
    monkeypatch.setitem(sys.modules, "cupy", FakeCupy())
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setattr(chainrule.cuda, "_backends", {})
    assert chainrule.cuda.is_available()
    return chainrule.cuda.backend(0)


def test_the_backend_reports_a_cuda_device(fake_gpu):
    assert type(fake_gpu).__name__ == "CupyBackend" and fake_gpu.device == "cuda:0"
    assert chainrule.zeros(2, device="cuda").device == chainrule.device("cuda:0")


def test_ops_and_gradients_through_the_adapter_match_the_cpu(fake_gpu):
    data = np.random.default_rng(0).standard_normal((3, 4))
    index = [0, 0, 2]

    def run(device):
        x = chainrule.tensor(data, device=device, requires_grad=True)
        y = chainrule.cat([x.T @ x, x.permute(1, 0)], dim=1)[:, index].tanh()
        loss = (y.sum(dim=0) * chainrule.arange(3, device=device)).sum()
        loss.backward()
        return loss.item(), x.grad.cpu().numpy()

    cpu_loss, cpu_grad = run("cpu")
    gpu_loss, gpu_grad = run("cuda")
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-12)
    assert_close(gpu_grad, cpu_grad, rtol=1e-12, atol=1e-14)


def test_seeded_random_numbers_and_transfers(fake_gpu):
    chainrule.manual_seed(3)
    first = chainrule.randn(5, device="cuda")
    chainrule.manual_seed(3)
    second = chainrule.randn(5, device="cuda")
    assert_close(first.cpu(), second.cpu(), rtol=0, atol=0)
    uniform = chainrule.rand(1000, device="cuda").cpu().numpy()
    assert 0.0 <= uniform.min() and uniform.max() < 1.0
    assert chainrule.tensor([1.5], device="cuda").to(chainrule.float64).cpu().item() == 1.5
