"""The CUDA code path without a GPU: a stand-in "cuda:0" backend holding array_api_strict arrays.

Everything here runs in CI. It proves that devices are kept apart, that transfers carry
gradients back, and that forward and backward passes never copy to the host.
"""
import numpy as np
import pytest

import chainrule
from chainrule import backends
from chainrule.testing import assert_close


class StandInCuda(backends.StrictBackend):
    """Arrays of another namespace, named like a GPU; counts every copy to the host."""

    def __init__(self):
        super().__init__()
        self.device = "cuda:0"
        self.host_copies = 0

    def to_numpy(self, array):
        self.host_copies += 1
        return super().to_numpy(array)


@pytest.fixture
def cuda(monkeypatch):
    backend = StandInCuda()
    monkeypatch.setattr(chainrule.cuda, "_probe", lambda: None)
    monkeypatch.setitem(chainrule.cuda._backends, 0, backend)
    return backend


def test_factories_and_transfers_put_tensors_on_the_device(cuda):
    x = chainrule.tensor([1.0, 2.0], device="cuda")
    assert x.device == chainrule.device("cuda:0") and x.is_cuda and x.device.type == "cuda"
    assert "device='cuda:0'" in repr(x)
    for make in (chainrule.zeros(2, device="cuda"), chainrule.randn(2, 3, device="cuda:0"),
                 chainrule.ones_like(x), chainrule.arange(3, device="cuda"), x.cpu().cuda(),
                 chainrule.tensor([1.0]).to("cuda"), chainrule.eye(2, device=chainrule.device("cuda"))):
        assert make.device.type == "cuda", make
    back = x.cpu()
    assert back.device.type == "cpu" and not back.is_cuda
    np.testing.assert_array_equal(back.numpy(), [1.0, 2.0])


def test_numpy_on_a_cuda_tensor_says_to_call_cpu_first(cuda):
    with pytest.raises(TypeError, match=r"can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu\(\)"):
        chainrule.ones(2, device="cuda").numpy()


def test_mixed_devices_raise_pytorchs_error(cuda):
    a, b = chainrule.ones(2, device="cuda"), chainrule.ones(2)
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device, but found "
                                           "at least two devices, cuda:0 and cpu!"):
        a + b
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        chainrule.ones(2, 2) @ chainrule.ones(2, 2, device="cuda")
    y = chainrule.ones(2, device="cuda", requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        y.backward(chainrule.ones(2))


def test_gradients_flow_back_across_a_transfer(cuda):
    x = chainrule.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (x.cuda() ** 2).sum()
    y.backward()
    assert x.grad.device.type == "cpu"
    assert_close(x.grad, [2.0, -4.0, 6.0])


def test_training_on_the_device_never_copies_to_the_host(cuda):
    chainrule.manual_seed(0)
    model = chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.Tanh(), chainrule.nn.Linear(4, 1))
    reference = chainrule.nn.Sequential(chainrule.nn.Linear(3, 4), chainrule.nn.Tanh(), chainrule.nn.Linear(4, 1))
    reference.load_state_dict(model.state_dict())
    model.to("cuda")
    assert all(p.device.type == "cuda" for p in model.parameters())
    data = np.random.default_rng(0).standard_normal((8, 3))
    target = np.random.default_rng(1).standard_normal((8, 1))
    losses = {}
    for name, net, device in (("cuda", model, "cuda"), ("cpu", reference, "cpu")):
        x = chainrule.tensor(data, dtype=chainrule.float32, device=device)
        y = chainrule.tensor(target, dtype=chainrule.float32, device=device)
        optimizer = chainrule.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        cuda.host_copies = 0
        for _ in range(3):
            optimizer.zero_grad()
            loss = chainrule.nn.MSELoss()(net(x), y)
            loss.backward()
            optimizer.step()
        if device == "cuda":
            assert cuda.host_copies == 0, "a forward or backward pass copied to the host"
            assert all(p.grad.device.type == "cuda" for p in net.parameters())
        losses[name] = loss.item()
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-6)


def test_per_sample_jacobian_and_per_loss_gradients_on_the_device(cuda):
    model = chainrule.nn.Sequential(chainrule.nn.Linear(1, 5, bias=False), chainrule.nn.Sigmoid(),
                                    chainrule.nn.Linear(5, 1, bias=False)).double()
    x = chainrule.tensor(np.linspace(-1, 1, 6).reshape(-1, 1))
    on_cpu = chainrule.func.per_sample_grad(model, x, flat=True)
    model.to("cuda")
    cuda.host_copies = 0
    on_device = chainrule.func.per_sample_grad(model, x.cuda(), flat=True)
    assert cuda.host_copies == 0 and on_device.device.type == "cuda"
    assert_close(on_device.cpu(), on_cpu, rtol=1e-12, atol=1e-14)

    v = chainrule.tensor([0.3, -0.2], dtype=chainrule.float64, device="cuda")
    jac = chainrule.func.jacobian(lambda t: (t * t).tanh(), v)
    assert jac.device.type == "cuda"
    expected = np.diag(2 * np.array([0.3, -0.2]) / np.cosh(np.array([0.3, -0.2]) ** 2) ** 2)
    assert_close(jac.cpu(), expected, rtol=1e-12, atol=1e-14)

    w = chainrule.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    grads = chainrule.func.per_loss_grads([(w ** 2).sum(), w.mean()], [w])
    assert grads[0][0].device.type == "cuda"
    assert_close(grads[0][0].cpu(), [2.0, 4.0])
    assert_close(grads[1][0].cpu(), [0.5, 0.5])


def test_manual_seed_seeds_the_device_too(cuda):
    chainrule.manual_seed(7)
    first = chainrule.randn(4, device="cuda").cpu().numpy()
    chainrule.manual_seed(7)
    second = chainrule.randn(4, device="cuda").cpu().numpy()
    np.testing.assert_array_equal(first, second)


def test_default_device_sends_factories_and_layers_there(cuda):
    chainrule.set_default_device("cuda")
    try:
        assert chainrule.zeros(2).device.type == "cuda"
        assert chainrule.nn.Linear(2, 2).weight.device.type == "cuda"
    finally:
        chainrule.set_default_device(None)
    assert chainrule.zeros(2).device.type == "cpu"


@pytest.mark.skipif(chainrule.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_or_cupy_says_what_is_missing():
    with pytest.raises(RuntimeError, match=r"device='cuda' is not available: (CuPy is not installed.*"
                                           r"pip install cupy-cuda12x|.*no CUDA GPU|.*no CUDA driver)"):
        chainrule.zeros(2, device="cuda")
    assert chainrule.cuda.is_available() is False
