"""PyTorch-looking reprs: ``tensor([4., 7.], grad_fn=<AddBackward0>)``."""
import numpy as np


def _float_formatter(values):
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "{:.4f}".format
    magnitude = np.abs(finite)
    largest = magnitude.max()
    smallest = magnitude[magnitude > 0].min() if (magnitude > 0).any() else 0.0
    if np.all(finite == np.round(finite)) and largest < 1e8:
        return lambda v: f"{v:.0f}." if np.isfinite(v) else f"{v}"
    if largest >= 1e8 or (smallest and (smallest < 1e-4 or largest / smallest > 1e3)):
        return "{:.4e}".format
    return "{:.4f}".format


def format_values(array):
    if array.dtype.kind != "f":
        return np.array2string(array, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3)
    formatter = _float_formatter(array)
    width = max((len(formatter(v)) for v in array.reshape(-1)[:1000]), default=0)
    return np.array2string(array, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3,
                           formatter={"float_kind": lambda v: formatter(v).rjust(width)})


def tensor_repr(tensor):
    array = tensor._backend.to_numpy(tensor._array)
    parts = [format_values(array)]
    if tensor.is_cuda:
        parts.append(f"device='{tensor._backend.device}'")
    if array.dtype == np.float64 or (array.dtype.kind in "iu" and array.size == 0):
        parts.append(f"dtype={tensor.dtype!r}")
    if tensor.grad_fn is not None:
        parts.append(f"grad_fn=<{tensor.grad_fn.name()}>")
    elif tensor.requires_grad:
        parts.append("requires_grad=True")
    return "tensor(" + ", ".join(parts) + ")"
