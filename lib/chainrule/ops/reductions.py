"""Reductions: sum, mean, max and min over all elements or along dimensions."""
import builtins

from .. import dtypes
from ..batching import batch_front
from ..function import Function
from ..tensor import Tensor
from .arguments import normalize_dims
from .elementwise import eq, maximum, minimum, where
from .shape import Expand, _reshape


class Sum(Function):
    def __init__(self, dims, keepdim, along=False):
        self.dims, self.keepdim = dims, keepdim   # dims: sorted non-negative axes
        self.along = along                        # whether a dim was given (PyTorch's overload 1)

    def name(self):
        return f"{type(self).__name__}Backward{int(self.along)}"

    def forward(self, xp, a):
        return xp.sum(a, axis=self.dims, keepdims=self.keepdim)

    def backward(self, grad):
        return (_expand_reduced(grad, self.shapes[0], self.dims, self.lead(grad)),)

    def batch_rule(self, args, batch_dims):
        """The batch axis first; each sample's axes then count from 1."""
        x = batch_front(args[0], batch_dims[0])
        return type(self)(tuple(d + 1 for d in self.dims), self.keepdim, self.along)(x), 0


def sum(a, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """``axis`` and ``keepdims`` are NumPy's names, which PyTorch accepts too (d2l uses them)."""
    dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return Sum(normalize_dims(dim, a.ndim), keepdim, along=dim is not None)(a)


def _numpy_names(dim, keepdim, axis, keepdims):
    return (dim if axis is None else axis), (keepdim if keepdims is None else keepdims)


class Mean(Sum):
    def forward(self, xp, a):
        return xp.mean(a, axis=self.dims, keepdims=self.keepdim)

    def backward(self, grad):
        count = 1
        for d in self.dims:
            count *= self.shapes[0][d]
        # Divide before expanding: the small gradient, not the full-size copy.
        return (_expand_reduced(grad / count, self.shapes[0], self.dims, self.lead(grad)),)


def mean(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    if not a.dtype.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {a.dtype.name}")
    return Mean(normalize_dims(dim, a.ndim), keepdim, along=dim is not None)(a)


def _expand_reduced(grad, in_shape, dims, lead):
    """The gradient of a reduction: the output's gradient copied back along the reduced axes."""
    kept = tuple(1 if i in dims else n for i, n in enumerate(in_shape))
    batch = tuple(grad._array.shape[:lead])
    return Expand(batch + tuple(in_shape))(_reshape(grad, batch + kept))


class Max(Function):
    """The maximum over all elements, or along ``dim``. Ties share the gradient (as in PyTorch's max())."""
    saves_inputs = (0,)

    def __init__(self, dim=None, keepdim=False):
        self.dim, self.keepdim = dim, keepdim

    def name(self):  # PyTorch's overloads: along a dim is 0, over all elements 1
        return f"{type(self).__name__}Backward{int(self.dim is None)}"

    def extreme(self, xp):
        """The reduction and where it is reached: max and argmax (min and argmin for Min)."""
        return xp.max, xp.argmax

    def forward(self, xp, a):
        extreme, where_reached = self.extreme(xp)
        if self.dim is None:
            values = extreme(a)
            hits = xp.astype(a == values, a.dtype)
            self.mask = hits / xp.sum(hits)
            return values
        self.indices = where_reached(a, axis=self.dim, keepdims=True)
        positions = xp.reshape(xp.arange(a.shape[self.dim]),
                               tuple(-1 if i == self.dim else 1 for i in range(a.ndim)))
        self.mask = xp.astype(positions == self.indices, a.dtype)
        values = extreme(a, axis=self.dim, keepdims=self.keepdim)
        if not self.keepdim:
            self.indices = xp.squeeze(self.indices, axis=self.dim)
        return values

    def backward(self, grad):
        dims = tuple(range(len(self.shapes[0]))) if self.dim is None else (self.dim,)
        expanded = _expand_reduced(grad, self.shapes[0], dims, self.lead(grad))
        return (expanded * Tensor._make(self.mask, grad._backend),)


def max(a, dim=None, keepdim=False):  # noqa: A001
    """``max(a)``: the largest element; ``max(a, dim)``: (values, indices) along ``dim``;
    ``max(a, b)`` with a tensor ``b``: the elementwise maximum, as in PyTorch."""
    return _extreme(Max, MaxResult, maximum, a, dim, keepdim)


class Min(Max):
    """The minimum over all elements, or along ``dim``."""

    def extreme(self, xp):
        return xp.min, xp.argmin


def min(a, dim=None, keepdim=False):  # noqa: A001
    """The smallest element, (values, indices) along ``dim``, or the elementwise minimum."""
    return _extreme(Min, MinResult, minimum, a, dim, keepdim)


class MaxResult(tuple):
    """``(values, indices)`` of ``max(dim=...)``, also readable as ``.values`` and ``.indices``."""
    function = "max"

    def __repr__(self):
        return f"chainrule.return_types.{self.function}(\nvalues={self[0]!r},\nindices={self[1]!r})"

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


class MinResult(MaxResult):
    function = "min"


def _extreme(op_class, result_class, elementwise, a, dim, keepdim):
    if isinstance(dim, Tensor):
        return elementwise(a, dim)
    if dim is None:
        return op_class()(a)
    if a.ndim == 0:  # a 0-d tensor has one element, at index 0 of "dimension" 0 or -1
        normalize_dims(dim, 1)
        return _extreme(op_class, result_class, elementwise, a.reshape(1), 0, False)
    op = op_class(normalize_dims(dim, a.ndim)[0], keepdim)
    values = op(a)
    return result_class((values, Tensor._make(op.indices, a._backend)))


_SCALAR_TYPES = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}


class Cumsum(Function):
    """Running sums along ``dim``; each input element feeds every later sum, so its gradient
    is the sum of the output's gradient from its position to the end."""

    def __init__(self, dim):
        self.dim = dim  # negative: it counts from the end, past any leading seed axes

    def forward(self, xp, a):
        return xp.cumulative_sum(a, axis=self.dim)

    def backward(self, grad):
        return (grad.sum(dim=self.dim, keepdim=True) - cumsum(grad, self.dim) + grad,)

    def batch_rule(self, args, batch_dims):
        """``dim`` counts from the end: with the batch axis first it names the same axis."""
        return self.fresh()(batch_front(args[0], batch_dims[0])), 0


def cumsum(a, dim=None, *, axis=None):
    dim = dim if axis is None else axis
    if dim is None:
        raise TypeError("cumsum() missing 1 required positional arguments: \"dim\"")
    (d,) = normalize_dims(dim, builtins.max(a.ndim, 1))
    if a.dtype is dtypes.bool:  # counts, as in PyTorch
        a = a.long()
    if a.ndim == 0:
        return Cumsum(-1)(a.reshape(1)).reshape(())
    return Cumsum(d - a.ndim)(a)


class Norm(Function):
    """The 2-norm of all elements (Frobenius for a matrix), PyTorch's ``LinalgVectorNormBackward0``."""
    saves_inputs = (0,)
    saves_output = True

    def name(self):
        return "LinalgVectorNormBackward0"

    def forward(self, xp, a):
        return xp.sqrt(xp.sum(a * a))

    def backward(self, grad):
        norm = self.output
        # At 0 the norm has no slope; PyTorch's subgradient there is 0.
        return (grad * self.inputs[0] / where(norm == 0, 1.0, norm),)

    def batch_rule(self, args, batch_dims):
        x = batch_front(args[0], batch_dims[0])
        return (x * x).reshape(x.shape[0], -1).sum(dim=1).sqrt(), 0


def norm(a, p="fro", dim=None, keepdim=False):
    if p not in ("fro", 2) or dim is not None or keepdim:
        from ..stand_in import NotCovered
        raise NotCovered(f"torch.norm(p={p!r}, dim={dim!r}, keepdim={keepdim!r}): chainrule has the "
                         "2-norm of all elements only, and it")
    if not a.dtype.is_floating_point:
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {_SCALAR_TYPES[a.dtype.name]}")
    return Norm()(a)


# --------------------------------------------------------------------------- not differentiable
def _indices(a, dim, keepdim, find):
    """Where the largest (smallest) element is, over all elements or along ``dim`` (int64)."""
    xp = a._backend.xp
    if dim is None:
        array = xp.reshape(a._array, (-1,))
        if array.shape[0] == 0:
            raise IndexError(f"{find.__name__}(): Expected reduction dim to be specified for "
                               "input.numel() == 0.")
        found = find(array, axis=0)
        found = xp.reshape(found, (1,) * a.ndim) if keepdim else found
    else:
        (axis,) = normalize_dims(dim, a.ndim) or (0,)
        found = find(a._array, axis=axis, keepdims=keepdim) if a.ndim else find(a._array)
    found = xp.astype(a._backend.wrap(found), a._backend.native_dtype(dtypes.int64))
    return Tensor._make(found, a._backend)


def argmax(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _indices(a, dim, keepdim, a._backend.xp.argmax)


def argmin(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _indices(a, dim, keepdim, a._backend.xp.argmin)


def _truth(a, dim, keepdim, test):
    array = a._array
    xp = a._backend.xp
    if array.dtype != a._backend.native_dtype(dtypes.bool):
        array = array != 0
    axes = None if dim is None else normalize_dims(dim, a.ndim)
    return Tensor._make(a._backend.wrap(test(array, axis=axes, keepdims=keepdim)), a._backend)


def all(a, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _truth(a, dim, keepdim, a._backend.xp.all)


def any(a, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
    return _truth(a, dim, keepdim, a._backend.xp.any)


def equal(a, b):
    """Whether ``a`` and ``b`` have the same shape and the same elements (a Python bool)."""
    if not isinstance(b, Tensor) or not isinstance(a, Tensor):
        other = type(b if isinstance(a, Tensor) else a).__name__
        raise TypeError(f"equal(): argument 'other' (position 2) must be Tensor, not {other}")
    return tuple(a.shape) == tuple(b.shape) and bool(all(eq(a, b)))
