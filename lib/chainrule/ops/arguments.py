"""What ops do with their arguments before running: dimensions, shapes and index keys
normalized, PyTorch's type promotion, and PyTorch's messages for shapes that do not fit.

``Tensor`` takes from here what its operators and in-place updates need, so that it calls ops
only through their public forms.
"""
import builtins

from .. import dtypes
from ..tensor import Tensor


def normalize_dims(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    normalized = []
    for d in dims:
        bound = builtins.max(ndim, 1)
        if not -bound <= d < bound:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-bound}, {bound - 1}], but got {d})")
        if ndim:
            normalized.append(d % ndim)
    return tuple(sorted(set(normalized)))


def shape_arg(shape):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def infer_shape(shape, numel, old):
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def normalize_key(a, key):
    """A tuple the Array API accepts: tensors and lists become arrays, a trailing ``...`` is explicit."""
    parts = key if isinstance(key, tuple) else (key,)
    normalized = []
    for part in parts:
        if isinstance(part, slice) and part.step is not None and part.step <= 0:
            raise ValueError("step must be greater than zero. To go backwards, index with "
                             "chainrule.arange(n - 1, -1, -1).")
        if isinstance(part, Tensor):
            part = part._array
        elif isinstance(part, (list, tuple)):
            part = a._backend.asarray(part, dtypes.bool if all(isinstance(p, bool) for p in part)
                                      else dtypes.int64)
        normalized.append(part)
    sole_mask = len(normalized) == 1 and getattr(normalized[0], "dtype", None) == a._backend.native_dtype(dtypes.bool)
    if not sole_mask and not any(part is Ellipsis for part in normalized):
        normalized.append(Ellipsis)
    return tuple(normalized)


def broadcast_mismatch(a, b):
    """PyTorch's message for the first axis where shapes ``a`` and ``b`` do not broadcast, or None."""
    for position in range(1, builtins.min(len(a), len(b)) + 1):
        x, y = a[-position], b[-position]
        if x != y and x != 1 and y != 1:
            return (f"The size of tensor a ({x}) must match the size of tensor b ({y}) at "
                    f"non-singleton dimension {builtins.max(len(a), len(b)) - position}")
    return None


def broadcast_shape(a, b):
    """The shape two broadcastable shapes broadcast to."""
    n = builtins.max(len(a), len(b))
    padded = [(1,) * (n - len(shape)) + tuple(shape) for shape in (a, b)]
    return tuple(builtins.max(x, y) for x, y in zip(*padded))


def broadcast_message(a, b):
    return broadcast_mismatch(a, b) or f"shapes {list(a)} and {list(b)} cannot be broadcast together"


def inplace_message(target, source):
    """PyTorch's message when ``source`` cannot be written into ``target`` in place."""
    return broadcast_mismatch(target, source) or (
        f"output with shape {list(target)} doesn't match the broadcast shape "
        f"{list(broadcast_shape(target, source))}")


def expand_message(target, source):
    """PyTorch's message when a tensor of shape ``source`` cannot be expanded to ``target``."""
    if len(source) > len(target):
        return (f"expand(chainrule.Tensor{{{list(source)}}}, size={list(target)}): the number of "
                f"sizes provided ({len(target)}) must be greater or equal to the number of "
                f"dimensions in the tensor ({len(source)})")
    padded = (1,) * (len(target) - len(source)) + tuple(source)
    for d, (wanted, size) in enumerate(zip(target, padded)):
        if size != 1 and size != wanted:
            return (f"The expanded size of the tensor ({wanted}) must match the existing size "
                    f"({size}) at non-singleton dimension {d}.  Target sizes: {list(target)}.  "
                    f"Tensor sizes: {list(source)}")
    return None


def each_needs_the_other(needs_input_grad):
    """For a product: input 0's gradient reads input 1 and vice versa."""
    return [j for j, i in ((0, 1), (1, 0)) if needs_input_grad[i]]


RANK = {dtypes.bool: 0, dtypes.int64: 1, dtypes.float32: 2, dtypes.float64: 3}


def wider(x, y):
    return x if y is None or (x is not None and RANK[x] >= RANK[y]) else y


def combine_kinds(higher, lower):
    """A lower-priority result counts only where it is of a higher kind (bool < integer < float)."""
    if higher is None:
        return lower
    if higher.is_floating_point:
        return higher
    if higher is dtypes.bool or (lower is not None and lower.is_floating_point):
        return wider(higher, lower)
    return higher


def promoted(operands, floating=False):
    """The operands of an elementwise op, after PyTorch's type promotion.

    Numbers, Python's or NumPy's, stay constants and never widen a tensor (``x * 2.0`` keeps
    float32, an integer tensor times 1.5 becomes the default float32). A 0-d tensor widens only
    tensors of a lower kind. Otherwise the wider dtype wins. ``floating``: the result is a float
    even for integer inputs (``/``, ``exp``). Tensors not of the result dtype are cast, which is
    recorded, so their gradients come back in their own dtype.
    """
    dimensioned = zero_dim = numbers = None
    backend = next((o._backend for o in operands if isinstance(o, Tensor)), None)
    operands = [o if isinstance(o, Tensor) or type(o) in (bool, int, float) else constant_operand(o, backend)
                for o in operands]
    for o in operands:
        if isinstance(o, Tensor):
            if o._array.ndim:
                dimensioned = wider(dimensioned, o.dtype)
            else:
                zero_dim = wider(zero_dim, o.dtype)
        else:
            numbers = wider(numbers, number_dtype(o))
    result = combine_kinds(dimensioned, combine_kinds(zero_dim, numbers))
    if floating and not result.is_floating_point:
        result = dtypes.default_float()
    return [o.to(result) if isinstance(o, Tensor) and o.dtype is not result
            else int(o) if type(o) is bool and result is not dtypes.bool  # True as the number 1
            else o for o in operands]


def binary_operands(a, b, floating=False):
    """``promoted`` for a binary op, with the common cases (nothing to change) first."""
    if isinstance(a, Tensor) and a._array.dtype in a._backend.float_natives:
        if type(b) in (float, int) or (isinstance(b, Tensor) and b._backend is a._backend
                                       and b._array.dtype == a._array.dtype):
            return a, b
    elif isinstance(b, Tensor) and b._array.dtype in b._backend.float_natives and type(a) in (float, int):
        return a, b
    return promoted((a, b), floating)


def as_floating(a):
    """An integer tensor as the default float dtype, for ops whose result is a float (exp, log...)."""
    return a if a._array.dtype in a._backend.float_natives else a.to(dtypes.default_float())


def number_dtype(number):
    if type(number) is bool:
        return dtypes.bool
    return dtypes.int64 if type(number) is int else dtypes.default_float()


def constant_operand(value, backend):
    """A NumPy scalar (``np.float64(0.1)``) as the Python number it holds, which, as in PyTorch,
    does not widen the tensor it meets; an array (``np.ones(3)``) as a tensor beside the others."""
    shape = getattr(value, "shape", None)
    if shape == () and hasattr(value, "item"):
        return value.item()
    if shape is not None and backend is not None:
        array, _ = backend.from_data(value)
        return Tensor._make(array, backend)
    return value
