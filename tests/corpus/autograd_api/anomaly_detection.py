# In the style of the torch.autograd docs' "Anomaly detection" examples: detect_anomaly as a
# context manager and set_detect_anomaly as a switch; a backward pass that produces NaN is
# stopped, naming the node, and a warning points at the forward call that made it (only its
# first line is printed here: the traceback below it names this run's files).
import warnings

import torch
from torch import autograd


class SafeLog(autograd.Function):
    """log(x), with a backward written carelessly: 0 * (1 / 0) is NaN."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=1e-12).log()

    @staticmethod
    def backward(ctx, grad_output):
        x, = ctx.saved_tensors
        return grad_output * (1 / x) * (x > 0)


def first_lines(caught):
    for w in caught:
        if issubclass(w.category, UserWarning):
            print(f"{w.category.__name__}: {str(w.message).splitlines()[0]}")


print(torch.is_anomaly_enabled())
x = torch.tensor([0.0, 2.0, 5.0], requires_grad=True)
SafeLog.apply(x).sum().backward()
print(x.grad)  # without anomaly detection the NaN goes unnoticed

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with autograd.detect_anomaly():
        print(torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())
        x.grad = None
        try:
            SafeLog.apply(x).sum().backward()
        except RuntimeError as error:
            print(error)
        y = torch.tensor([4.0, 0.0], requires_grad=True)
        try:
            (y.sqrt() * torch.tensor([1.0, 0.0])).sum().backward()
        except RuntimeError as error:
            print(error)
        w = torch.tensor([1.0, 2.0], requires_grad=True)
        (w * w).sum().backward()
        print(w.grad)
first_lines(caught)
print(torch.is_anomaly_enabled())

torch.autograd.set_detect_anomaly(True)
print(torch.is_anomaly_enabled())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    z = torch.tensor([0.0, 1.0], requires_grad=True)
    try:
        (z / z).sum().backward()
    except RuntimeError as error:
        print(error)
first_lines(caught)
torch.autograd.set_detect_anomaly(False)

with torch.autograd.set_detect_anomaly(True, check_nan=False):
    print(torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())
    z.grad = None
    (z / z).sum().backward()
    print(z.grad)
print(torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())
