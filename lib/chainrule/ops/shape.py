"""Shape and indexing: views (reshape, permute, squeeze...), expand and its adjoint, cat, stack,
indexing and its adjoint, each op's function form under its class."""
import math

from .. import dtypes
from ..batching import batch_front
from ..function import Function
from ..tensor import Tensor
from .arguments import expand_message, infer_shape, normalize_dims, normalize_key, promoted, shape_arg


def sum_to(grad, shape, lead=0):
    """Sum a gradient over the axes that broadcasting added, back to ``shape`` (keeping ``lead`` axes)."""
    if not lead and grad._array.shape == shape:
        return grad
    target = tuple(grad._array.shape[:lead]) + tuple(shape)
    if tuple(grad._array.shape) == target:
        return grad
    return SumTo(target, lead)(grad)


def _reshape(tensor, shape):
    return tensor if tuple(tensor._array.shape) == tuple(shape) else Reshape(tuple(shape))(tensor)


class Reshape(Function):
    view = True

    def name(self):  # PyTorch names a reshape by what it did: a view
        return "ViewBackward0" if type(self) is Reshape else super().name()

    def __init__(self, shape):
        self.shape = shape

    def forward(self, xp, a):
        return xp.reshape(a, self.shape)

    def backward(self, grad):
        return (_reshape(grad, tuple(grad._array.shape[:self.lead(grad)]) + tuple(self.shapes[0])),)

    def batch_rule(self, args, batch_dims):
        """Each sample reshaped: the batch axis first, kept as it is."""
        x = batch_front(args[0], batch_dims[0])
        return Reshape((x.shape[0],) + tuple(self.shape))(x), 0


def reshape(a, *shape):
    shape = shape_arg(shape)
    return Reshape(infer_shape(shape, a.numel(), a.shape))(a)


class View(Reshape):
    pass


def view(a, *shape):
    shape = shape_arg(shape)
    return View(infer_shape(shape, a.numel(), a.shape))(a)


def flatten(a, start_dim=0, end_dim=-1):
    """Dimensions ``start_dim`` to ``end_dim`` merged into one (all of them by default)."""
    if a.ndim == 0:
        return reshape(a, 1)
    start, end = (normalize_dims(d, a.ndim)[0] for d in (start_dim, end_dim))
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = tuple(a.shape)
    return reshape(a, shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])


class Unsqueeze(Reshape):
    pass


def unsqueeze(a, dim):
    if not -a.ndim - 1 <= dim <= a.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-a.ndim - 1}, {a.ndim}], but got {dim})")
    dim = dim % (a.ndim + 1)
    shape = tuple(a.shape)
    return Unsqueeze(shape[:dim] + (1,) + shape[dim:])(a)


class Squeeze(Reshape):
    def __init__(self, shape, overload=0):
        super().__init__(shape)
        self.overload = overload  # PyTorch's: squeeze() 0, squeeze(dim) 1, squeeze(dims) 2

    def name(self):
        return f"SqueezeBackward{self.overload}"


def squeeze(a, dim=None):
    shape = tuple(a.shape)
    dims = normalize_dims(dim, a.ndim) if a.ndim else ()
    new = tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))
    return Squeeze(new, overload=0 if dim is None else 1 if isinstance(dim, int) else 2)(a)


class Permute(Function):
    view = True

    def __init__(self, dims):
        self.dims = dims

    def forward(self, xp, a):
        return xp.permute_dims(a, self.dims)

    def backward(self, grad):
        lead = self.lead(grad)
        inverse = [0] * len(self.dims)
        for position, d in enumerate(self.dims):
            inverse[d] = position
        return (Permute(tuple(range(lead)) + tuple(lead + d for d in inverse))(grad),)

    def batch_rule(self, args, batch_dims):
        x = batch_front(args[0], batch_dims[0])
        return Permute((0,) + tuple(d + 1 for d in self.dims))(x), 0


def permute(a, *dims):
    dims = shape_arg(dims)
    if sorted(d % a.ndim for d in dims) != list(range(a.ndim)):
        raise RuntimeError(f"permute(): dims {list(dims)} do not match the tensor's {a.ndim} dimensions")
    return Permute(tuple(d % a.ndim for d in dims))(a)


class Transpose(Permute):
    pass


def transpose(a, dim0, dim1):
    if a.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return Transpose(tuple(range(a.ndim)))(a)
    d0, d1 = normalize_dims(dim0, a.ndim)[0], normalize_dims(dim1, a.ndim)[0]
    dims = list(range(a.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Transpose(tuple(dims))(a)


def matrix_transpose(a):
    """``a.mT``: the last two axes swapped (the hot path of matrix rules: no axis checks to redo)."""
    if a.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {a.ndim}-D tensor.")
    dims = list(range(a.ndim))
    dims[-2], dims[-1] = dims[-1], dims[-2]
    return Transpose(tuple(dims))(a)


class T(Permute):
    """``a.t()``: a matrix transposed (a vector or a number as it is), PyTorch's ``TBackward0``."""


def t(a):
    if a.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {a.ndim}D. "
                           "Use .mT or transpose(-2, -1) for batches of matrices.")
    return T(tuple(reversed(range(a.ndim))))(a)


class Expand(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, xp, a):
        # A fresh array, not a read-only broadcast view, so that in-place updates of a .grad work.
        return xp.asarray(xp.broadcast_to(a, self.shape), copy=True)

    def backward(self, grad):
        return (sum_to(grad, self.shapes[0], self.lead(grad)),)

    def batch_rule(self, args, batch_dims):
        """Each sample expanded: new axes go after the batch axis, not before it."""
        x = batch_front(args[0], batch_dims[0])
        batch, sample = x.shape[0], tuple(x.shape[1:])
        x = _reshape(x, (batch,) + (1,) * (len(self.shape) - len(sample)) + sample)
        return Expand((batch,) + tuple(self.shape))(x), 0


def expand(a, *shape):
    shape = shape_arg(shape)
    old = (1,) * (len(shape) - a.ndim) + tuple(a.shape)
    shape = tuple(o if s == -1 else s for s, o in zip(shape, old))
    message = expand_message(shape, tuple(a.shape))
    if message:
        raise RuntimeError(message)
    return Expand(shape)(a)


class SumTo(Function):
    """Sum the axes broadcasting added (the adjoint of Expand); ``lead`` axes are kept."""

    def __init__(self, shape, lead):
        self.shape, self.lead_axes = shape, lead

    def forward(self, xp, g):
        extra = g.ndim - len(self.shape)
        start = self.lead_axes + extra
        axes = tuple(range(self.lead_axes, start)) + tuple(
            i for i in range(start, g.ndim) if self.shape[i - extra] == 1 and g.shape[i] != 1)
        return xp.reshape(xp.sum(g, axis=axes), self.shape)

    def backward(self, grad):
        lead = self.lead(grad)
        in_shape = self.shapes[0]
        extra = len(in_shape) - len(self.shape)
        padded = self.shape[:self.lead_axes] + (1,) * extra + self.shape[self.lead_axes:]
        batch = tuple(grad._array.shape[:lead])
        return (Expand(batch + tuple(in_shape))(_reshape(grad, batch + padded)),)

    def batch_rule(self, args, batch_dims):
        """The batch axis first, kept as one more leading axis."""
        g = batch_front(args[0], batch_dims[0])
        return SumTo((g.shape[0],) + tuple(self.shape), self.lead_axes + 1)(g), 0


class Cat(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, xp, *arrays):
        return xp.concat(arrays, axis=self.dim)

    def backward(self, grad):
        ndim = len(self.out_shape)
        trailing = (slice(None),) * (ndim - 1 - self.dim)
        grads, start = [], 0
        for needed, shape in zip(self.needs_input_grad, self.shapes):
            stop = start + shape[self.dim]
            grads.append(grad[(Ellipsis, slice(start, stop)) + trailing] if needed else None)
            start = stop
        return tuple(grads)

    def batch_rule(self, args, batch_dims):
        return Cat(self.dim + 1)(*_all_batched(args, batch_dims)), 0


def cat(tensors, dim=0):
    if isinstance(tensors, Tensor):
        raise TypeError("cat(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        "Tensor. Pass a list: cat([a, b]).")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated. "
                               "Use stack() for numbers, or reshape(1) them first.")
    axis = normalize_dims(dim, tensors[0].ndim)[0]
    first = tuple(tensors[0].shape)
    for i, t in enumerate(tensors[1:], start=1):
        shape = tuple(t.shape)
        for d, (expected, got) in enumerate(zip(first, shape)):
            if d != axis and expected != got:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {axis}. Expected "
                                   f"size {expected} but got size {got} for tensor number {i} in the list.")
    return Cat(axis)(*promoted(tensors))


class Stack(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, xp, *arrays):
        return xp.stack(arrays, axis=self.dim)

    def backward(self, grad):
        trailing = (slice(None),) * (len(self.out_shape) - 1 - self.dim)
        return tuple(grad[(Ellipsis, i) + trailing] if needed else None
                     for i, needed in enumerate(self.needs_input_grad))

    def batch_rule(self, args, batch_dims):
        return Stack(self.dim + 1)(*_all_batched(args, batch_dims)), 0


def _all_batched(tensors, batch_dims):
    """Every tensor with the batch first, those without one copied along it."""
    batch = next(t.shape[d] for t, d in zip(tensors, batch_dims) if d is not None)
    return [batch_front(t, d) if d is not None else Expand((batch,) + tuple(t.shape))(t.unsqueeze(0))
            for t, d in zip(tensors, batch_dims)]


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    first = tuple(tensors[0].shape)
    for i, t in enumerate(tensors):
        if tuple(t.shape) != first:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} "
                               f"at entry 0 and {list(t.shape)} at entry {i}")
    return Stack(normalize_dims(dim, len(first) + 1)[0])(*promoted(tensors))


class Index(Function):
    """``a[key]``; the backward pass scatters the gradient into zeros, adding repeated indices."""
    view = True

    def __init__(self, key):
        self.key = key

    def name(self):
        """PyTorch's node for the last part of the key that picks: an integer selects, a slice
        slices, an array indexes."""
        if any(hasattr(part, "dtype") for part in self.key):
            return "IndexBackward0"
        picking = [p for p in self.key if p is not Ellipsis and p != slice(None)]
        if not picking:
            return "AliasBackward0"
        return "SliceBackward0" if isinstance(picking[-1], slice) else "SelectBackward0"

    def forward(self, xp, a):
        try:
            return self.backend.getitem(a, self.key)
        except IndexError as error:  # the array library's words, in PyTorch's
            raise IndexError(str(error).replace("for axis", "for dimension")) from None

    def backward(self, grad):
        lead = self.lead(grad)
        batch = tuple(grad._array.shape[:lead])
        return (IndexAdd((slice(None),) * lead + self.key, batch + tuple(self.shapes[0]))(grad),)

    def batch_rule(self, args, batch_dims):
        """The same key in each sample: the whole batch axis first."""
        return Index((slice(None),) + self.key)(batch_front(args[0], batch_dims[0])), 0


def index(a, key):
    key = normalize_key(a, key)
    if any(part is None for part in key):
        # New axes: index without them, then reshape, so the backward scatter needs no ``None``.
        shape = a._backend.getitem(a._array, key).shape
        return Unsqueeze(tuple(shape))(Index(tuple(p for p in key if p is not None))(a))
    return Index(key)(a)


class IndexAdd(Function):
    """Zeros of ``shape`` with ``values`` added at ``key`` (the adjoint of Index)."""

    def __init__(self, key, shape):
        self.key, self.shape = key, shape

    def forward(self, xp, values):
        target = xp.zeros(self.shape, dtype=values.dtype)
        boolean = self.backend.native_dtype(dtypes.bool)
        if any(hasattr(k, "dtype") and k.dtype != boolean for k in self.key):
            return self.backend.index_add(target, self.key, values)
        target[self.key] = values  # basic indices and masks never repeat an element
        return target

    def backward(self, grad):
        lead = self.lead(grad)
        return (Index((slice(None),) * lead + self.key)(grad),)

    def batch_rule(self, args, batch_dims):
        values = batch_front(args[0], batch_dims[0])
        return IndexAdd((slice(None),) + self.key, (values.shape[0],) + tuple(self.shape))(values), 0
