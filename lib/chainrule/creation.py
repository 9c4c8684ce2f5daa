"""Making tensors: ``tensor``, ``zeros``, ``randn``... with PyTorch's signatures."""
import builtins
import math

import numpy as np

from . import backends, dtypes
from .device import backend_for
from .tensor import Tensor
from . import batching  # noqa: I100 - after tensor, which it builds on
from .batching import BatchedTensor


def _finish(array, backend, requires_grad):
    t = Tensor._make(array, backend)
    if requires_grad:
        if array.dtype not in backend.float_natives:
            t.requires_grad_(True)  # raises PyTorch's error for integer tensors
        t._requires_grad = True
    return t


def _shape(size):
    if len(size) == 1 and not isinstance(size[0], int):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, int) or s < 0:
            raise RuntimeError(f"shape must be non-negative integers, got {list(size)}")
    return tuple(size)


def _size(positional, by_name, function):
    """The shape given as ``zeros(2, 3)``, ``zeros((2, 3))`` or, as PyTorch allows, ``zeros(size=(2, 3))``."""
    unexpected = set(by_name) - {"size"}
    if unexpected:
        raise TypeError(f"{function}() got an unexpected keyword argument '{unexpected.pop()}'")
    if "size" in by_name:
        if positional:
            raise TypeError(f"{function}() got multiple values for argument 'size'")
        return (by_name["size"],)
    return positional


def _float_dtype(dtype):
    return dtypes.default_float() if dtype is None else dtypes.resolve(dtype)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new leaf tensor holding a copy of ``data`` (numbers, nested lists, arrays, tensors)."""
    if isinstance(data, Tensor):
        device = data._backend.device if device is None else device
        data = data._backend.to_numpy(data._array)
    backend = backend_for(device)
    array, _ = backend.from_data(data, None if dtype is None else dtypes.resolve(dtype))
    return _finish(array, backend, requires_grad)


def from_numpy(array):
    """A tensor of the array's values (a copy: chainrule does not share NumPy's memory)."""
    return tensor(array)


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return tensor(data, dtype=dtype, device=device)


def _filled(xp_function, size, dtype, device, requires_grad):
    backend = backend_for(device)
    dtype = _float_dtype(dtype)
    array = xp_function(backend.xp)(_shape(size), dtype=backend.native_dtype(dtype))
    return _finish(array, backend, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False, **by_name):
    size = _size(size, by_name, "zeros")
    return _filled(lambda xp: xp.zeros, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, **by_name):
    size = _size(size, by_name, "ones")
    return _filled(lambda xp: xp.ones, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, **by_name):
    size = _size(size, by_name, "empty")
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    backend = backend_for(device)
    dtype = backends.infer_dtype(fill_value) if dtype is None else dtypes.resolve(dtype)
    array = backend.xp.full(_shape((size,)), fill_value, dtype=backend.native_dtype(dtype))
    return _finish(array, backend, requires_grad)


def _like(function, like, dtype, device, requires_grad, xp_function=None):
    if xp_function and dtype is None and device is None and not isinstance(like, BatchedTensor):
        # one call to the array library (a batched tensor under vmap shows no array to copy)
        array = like._array
        return _finish(xp_function(like._backend.xp)(array.shape, dtype=array.dtype), like._backend,
                       requires_grad)
    return function(*like._array.shape, dtype=like.dtype if dtype is None else dtype,
                    device=like._backend.device if device is None else device,
                    requires_grad=requires_grad)


def zeros_like(input, dtype=None, device=None, requires_grad=False):  # noqa: A002
    return _like(zeros, input, dtype, device, requires_grad, lambda xp: xp.zeros)


def ones_like(input, dtype=None, device=None, requires_grad=False):  # noqa: A002
    return _like(ones, input, dtype, device, requires_grad, lambda xp: xp.ones)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):  # noqa: A002
    return full(tuple(input.shape), fill_value, dtype=input.dtype if dtype is None else dtype,
                device=input.device if device is None else device, requires_grad=requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False, **by_name):
    """Standard normal samples; reproducible after ``chainrule.manual_seed``."""
    size = _size(size, by_name, "randn")
    backend = backend_for(device)
    dtype = _float_dtype(dtype)
    if batching.levels:
        return batching.random(lambda shape: _finish(backend.random_normal(shape, dtype), backend, False), _shape(size))
    return _finish(backend.random_normal(_shape(size), dtype), backend, requires_grad)


def normal(mean, std, size, *, dtype=None, device=None, requires_grad=False):
    """Normal samples of mean ``mean`` and standard deviation ``std`` (numbers), of shape ``size``."""
    for name, value in (("mean", mean), ("std", std)):
        if isinstance(value, Tensor):
            from .stand_in import NotCovered
            raise NotCovered(f"torch.normal with a tensor {name} (chainrule takes numbers)")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std:g}")
    backend = backend_for(device)
    dtype = _float_dtype(dtype)
    if batching.levels:
        return batching.random(lambda shape: _finish(backend.random_normal(shape, dtype, mean, std), backend, False),
                               _shape((size,)))
    return _finish(backend.random_normal(_shape((size,)), dtype, mean, std), backend, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False, **by_name):
    """Uniform samples from [0, 1); reproducible after ``chainrule.manual_seed``."""
    size = _size(size, by_name, "rand")
    backend = backend_for(device)
    dtype = _float_dtype(dtype)
    if batching.levels:
        return batching.random(lambda shape: _finish(backend.random_uniform(shape, dtype), backend, False), _shape(size))
    return _finish(backend.random_uniform(_shape(size), dtype), backend, requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False):  # noqa: A002
    return _like(randn, input, dtype, device, requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False):  # noqa: A002
    return _like(rand, input, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    backend = backend_for(device)
    if dtype is None:
        dtype = dtypes.int64 if all(isinstance(v, int) for v in (start, end, step)) \
            else dtypes.default_float()
    dtype = dtypes.resolve(dtype)
    if not dtype.is_floating_point:
        return _finish(backend.xp.arange(start, end, step, dtype=backend.native_dtype(dtype)), backend,
                       requires_grad)
    # start + i * step, each in float64 then rounded to the dtype, as PyTorch computes them (its
    # vectorised kernel still rounds some to the neighbouring float). Counting up in float32, as
    # NumPy does, drifts: arange(-8.0, 8.0, 0.1)[80] would be -7.6e-06 instead of about 0.
    count = builtins.max(math.ceil((end - start) / step), 0)
    points = float(start) + float(step) * np.arange(count, dtype=np.float64)
    return _finish(backend.asarray(points, dtype), backend, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """PyTorch's points: the first half counted up from ``start``, the second half down from
    ``end``, each as one multiply-add in the dtype (so ``sin`` of them prints as in PyTorch)."""
    backend = backend_for(device)
    dtype = _float_dtype(dtype)
    kind, wide = (np.float64, np.longdouble) if dtype is dtypes.float64 else (np.float32, np.float64)
    first, last = kind(start), kind(end)
    step = kind(last - first) / kind(builtins.max(steps - 1, 1))
    if steps == 1:
        return _finish(backend.asarray(np.array([first]), dtype), backend, requires_grad)
    i = np.arange(steps)
    points = np.where(i < steps // 2, wide(first) + wide(step) * i,
                      wide(last) - wide(step) * (steps - 1 - i)).astype(kind)
    return _finish(backend.asarray(points, dtype), backend, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    backend = backend_for(device)
    dtype = _float_dtype(dtype)
    array = backend.xp.eye(n, n if m is None else m, dtype=backend.native_dtype(dtype))
    return _finish(array, backend, requires_grad)


def manual_seed(seed):
    """Seed every device's random numbers (``randn``, ``rand``, layer initialisation)."""
    backend_for("cpu").seed(seed)
    from . import cuda
    if cuda.is_available():
        cuda.backend(0).seed(seed)
    return seed
