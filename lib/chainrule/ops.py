"""Every differentiable op: its forward on arrays and its backward in tensor ops, side by side.

Conventions for ``backward(self, grad)``:

* ``grad`` has the output's shape, possibly with extra leading axes (``lead``): one per seed
  axis when ``autograd.grad(..., is_grads_batched=True)`` sends many seeds at once. Rules use
  negative axes and ``sum_to(..., lead)`` so that the same code serves both.
* An input broadcast in the forward pass gets its gradient summed back to its shape (``sum_to``).
* ``per_sample_backward(self, grad, i)`` (where defined) gives input ``i``'s gradient for each
  sample of a batch on axis 0 instead of their sum: see ``chainrule.func.per_sample_grad``.
"""
import builtins
import math

from . import dtypes
from .function import Function
from .grad_mode import state
from .tensor import Tensor


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


def _each_needs_the_other(needs_input_grad):
    """For a product: input 0's gradient reads input 1 and vice versa."""
    return [j for j, i in ((0, 1), (1, 0)) if needs_input_grad[i]]


# --------------------------------------------------------------------------- elementwise, binary
class Elementwise(Function):
    """Broadcasting ops. ``local_grads`` gives each input's gradient before the broadcast reduction."""

    def explain(self, args, error):
        shapes = [tuple(a.shape) for a in args if isinstance(a, Tensor)]
        return _broadcast_message(*shapes[-2:])

    def local_grads(self, grad):
        raise NotImplementedError

    def backward(self, grad):
        lead = self.lead(grad)
        grads = []
        for i, g in enumerate(self.local_grads(grad)):
            grads.append(None if g is None else self.reduce(g, i, lead))
        return grads

    def reduce(self, g, i, lead):
        g = sum_to(g, self.shapes[i], lead)
        dtype = g._array.dtype
        if dtype is not self.dtypes[i] and dtype != self.dtypes[i]:  # float32 input met a float64 one: grad keeps its dtype
            g = g.to(g._backend.dtype_of_native(self.dtypes[i]))
        return g

    def per_sample_backward(self, grad, i):
        """Input i is a parameter shared by the batch on axis 0: keep that axis instead of summing it."""
        shape = self.shapes[i]
        batch = self.out_shape[0]
        if len(shape) == len(self.out_shape):
            if shape[0] != 1:
                raise ValueError(f"{self.name()}: a parameter of shape {shape} has no broadcast batch axis")
            per_sample = sum_to(self.local_grads(grad)[i], shape[1:], lead=1)
        else:
            per_sample = sum_to(self.local_grads(grad)[i], shape, lead=1)
        return _reshape(per_sample, (batch,) + tuple(shape))


def _broadcast_mismatch(a, b):
    """PyTorch's message for the first axis where shapes ``a`` and ``b`` do not broadcast, or None."""
    for position in range(1, builtins.min(len(a), len(b)) + 1):
        x, y = a[-position], b[-position]
        if x != y and x != 1 and y != 1:
            return (f"The size of tensor a ({x}) must match the size of tensor b ({y}) at "
                    f"non-singleton dimension {builtins.max(len(a), len(b)) - position}")
    return None


def _broadcast_shape(a, b):
    """The shape two broadcastable shapes broadcast to."""
    n = builtins.max(len(a), len(b))
    padded = [(1,) * (n - len(shape)) + tuple(shape) for shape in (a, b)]
    return tuple(builtins.max(x, y) for x, y in zip(*padded))


def _inplace_message(target, source):
    """PyTorch's message when ``source`` cannot be written into ``target`` in place."""
    return _broadcast_mismatch(target, source) or (
        f"output with shape {list(target)} doesn't match the broadcast shape "
        f"{list(_broadcast_shape(target, source))}")


def _broadcast_message(a, b):
    return _broadcast_mismatch(a, b) or f"shapes {list(a)} and {list(b)} cannot be broadcast together"


class Add(Elementwise):
    def forward(self, xp, a, b):
        return a + b

    def local_grads(self, grad):
        return (grad if self.needs_input_grad[0] else None,
                grad if self.needs_input_grad[1] else None)


class Sub(Elementwise):
    def name(self):  # 2 - x is PyTorch's rsub
        return "RsubBackward1" if self.dtypes[0] is None else "SubBackward0"

    def forward(self, xp, a, b):
        return a - b

    def local_grads(self, grad):
        return (grad if self.needs_input_grad[0] else None,
                -grad if self.needs_input_grad[1] else None)


class Mul(Elementwise):
    inputs_to_save = staticmethod(_each_needs_the_other)

    def forward(self, xp, a, b):
        return a * b

    def local_grads(self, grad):
        a, b = self.inputs
        return (grad * b if self.needs_input_grad[0] else None,
                grad * a if self.needs_input_grad[1] else None)


class Div(Elementwise):
    def inputs_to_save(self, needs_input_grad):
        return (0, 1) if needs_input_grad[1] else (1,)

    def forward(self, xp, a, b):
        return a / b

    def local_grads(self, grad):
        a, b = self.inputs
        return (grad / b if self.needs_input_grad[0] else None,
                -grad * a / (b * b) if self.needs_input_grad[1] else None)


class Pow(Elementwise):
    saves_inputs = (0, 1)
    saves_output = True

    def name(self):  # PyTorch's overloads: tensor ** number, tensor ** tensor, number ** tensor
        return "PowBackward2" if self.dtypes[0] is None else \
            "PowBackward1" if self.dtypes[1] is not None else "PowBackward0"

    def forward(self, xp, a, b):
        return a ** b

    def local_grads(self, grad):
        a, b = self.inputs
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            if isinstance(b, (int, float)) and b in (0, 1, 2):  # common exponents, fewer passes
                grad_a = grad * 0.0 if b == 0 else grad if b == 1 else grad * (a * 2.0)
            else:
                grad_a = grad * b * a ** (b - 1)
                if isinstance(b, Tensor):  # b = 0: a ** b is 1 everywhere, even where a is 0
                    grad_a = where(b == 0, 0.0, grad_a)
        if self.needs_input_grad[1]:
            log_a = log(a) if isinstance(a, Tensor) else (
                math.log(a) if a > 0 else -math.inf if a == 0 else math.nan)
            grad_b = grad * self.output * log_a
            # Where a is 0 and b >= 0, a ** b is flat in b (0, or 1 at b = 0): gradient 0, not nan.
            flat = (a == 0) & (b >= 0) if isinstance(a, Tensor) else (b >= 0 if a == 0 else None)
            if flat is not None:
                grad_b = where(flat, 0.0, grad_b)
        return grad_a, grad_b


class Maximum(Elementwise):
    """The larger of two tensors, element by element (``max(a, b)``); ties share the gradient."""
    saves_inputs = (0, 1)

    def forward(self, xp, a, b):
        return xp.maximum(a, b)

    def a_wins(self, a, b):
        return a > b

    def local_grads(self, grad):
        a, b = self.inputs
        share_a = where(self.a_wins(a, b), 1.0, where(a == b, 0.5, 0.0))
        return (grad * share_a if self.needs_input_grad[0] else None,
                grad * (1.0 - share_a) if self.needs_input_grad[1] else None)


class Minimum(Maximum):
    """The smaller of two tensors, element by element (``min(a, b)``)."""

    def forward(self, xp, a, b):
        return xp.minimum(a, b)

    def a_wins(self, a, b):
        return a < b


class Where(Elementwise):
    saves_inputs = (0,)

    def forward(self, xp, condition, a, b):
        return xp.where(condition, a, b)

    def local_grads(self, grad):
        condition = self.inputs[0]
        return (None,
                where(condition, grad, 0.0) if self.needs_input_grad[1] else None,
                where(condition, 0.0, grad) if self.needs_input_grad[2] else None)


# --------------------------------------------------------------------------- elementwise, unary
class Neg(Function):
    def forward(self, xp, a):
        return -a

    def backward(self, grad):
        return (-grad,)


class Exp(Function):
    saves_output = True

    def forward(self, xp, a):
        return xp.exp(a)

    def backward(self, grad):
        return (grad * self.output,)


class Log(Function):
    saves_inputs = (0,)

    def forward(self, xp, a):
        return xp.log(a)

    def backward(self, grad):
        return (grad / self.inputs[0],)


class Sqrt(Function):
    saves_output = True

    def forward(self, xp, a):
        return xp.sqrt(a)

    def backward(self, grad):
        return (grad / (2.0 * self.output),)


class Abs(Function):
    saves_inputs = (0,)

    def forward(self, xp, a):
        return xp.abs(a)

    def backward(self, grad):
        return (grad * sign(self.inputs[0]),)


class Sign(Function):
    def forward(self, xp, a):
        return xp.sign(a)

    def backward(self, grad):
        return (grad * 0.0,)


def _times(fresh, other):
    """``fresh * other``, written into ``fresh`` (a temporary of the caller's) when the result
    has its shape and dtype: one pass over the data and no new array."""
    if fresh.shape == other.shape and fresh.dtype == other.dtype:
        fresh *= other
        return fresh
    return fresh * other


class Sigmoid(Function):
    saves_output = True

    def forward(self, xp, a):
        denominator = xp.exp(-a)
        denominator += 1.0
        return 1.0 / denominator

    def backward(self, grad):
        return (SigmoidDerivative()(grad, self.output),)


class SigmoidDerivative(Function):
    """``grad * out * (1 - out)`` as one op: one temporary instead of three. It is an op of its
    own, with its own backward, so that second derivatives through sigmoid still work."""
    saves_inputs = (0, 1)

    def name(self):
        return "SigmoidBackwardBackward0"

    def forward(self, xp, grad, out):
        slope = 1.0 - out
        slope *= out
        return _times(slope, grad)

    def backward(self, g):
        grad, out = self.inputs
        return (g * out * (1.0 - out) if self.needs_input_grad[0] else None,
                g * grad * (1.0 - 2.0 * out) if self.needs_input_grad[1] else None)


class Tanh(Function):
    saves_output = True

    def forward(self, xp, a):
        return xp.tanh(a)

    def backward(self, grad):
        return (TanhDerivative()(grad, self.output),)


class TanhDerivative(Function):
    """``grad * (1 - out**2)`` as one op (see SigmoidDerivative)."""
    saves_inputs = (0, 1)

    def name(self):
        return "TanhBackwardBackward0"

    def forward(self, xp, grad, out):
        slope = 1.0 - out * out  # PyTorch's tanh_backward: grad * (1 - out**2)
        return _times(slope, grad)

    def backward(self, g):
        grad, out = self.inputs
        return (g * (1.0 - out * out) if self.needs_input_grad[0] else None,
                -2.0 * g * grad * out if self.needs_input_grad[1] else None)


class Relu(Function):
    saves_output = True

    def forward(self, xp, a):
        return xp.where(a > 0, a, xp.zeros_like(a))

    def backward(self, grad):
        return (where(self.output > 0, grad, 0.0),)


class Clamp(Function):
    saves_inputs = (0,)

    def name(self):
        return "ClampBackward1"  # PyTorch's overload with number bounds

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, xp, a):
        return xp.clip(a, self.low, self.high)

    def backward(self, grad):
        a = self.inputs[0]
        inside = None
        if self.low is not None:
            inside = a >= self.low
        if self.high is not None:
            inside = a <= self.high if inside is None else inside & (a <= self.high)
        return (grad if inside is None else where(inside, grad, 0.0),)


class Cast(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def name(self):
        return "ToCopyBackward0"

    def forward(self, xp, a):
        return xp.astype(a, self.backend.native_dtype(self.dtype))

    def backward(self, grad):
        return (grad.to(grad._backend.dtype_of_native(self.dtypes[0])),)


class Clone(Function):
    def forward(self, xp, a):
        return xp.asarray(a, copy=True)

    def backward(self, grad):
        return (grad,)


# --------------------------------------------------------------------------- reductions
def _normalize_dims(dim, ndim):
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


class Mean(Sum):
    def forward(self, xp, a):
        return xp.mean(a, axis=self.dims, keepdims=self.keepdim)

    def backward(self, grad):
        count = 1
        for d in self.dims:
            count *= self.shapes[0][d]
        # Divide before expanding: the small gradient, not the full-size copy.
        return (_expand_reduced(grad / count, self.shapes[0], self.dims, self.lead(grad)),)


class MseLoss(Elementwise):
    """``mean((input - target) ** 2)`` (or its sum, or with reduction 'none' each squared
    difference) as one node, PyTorch's ``MseLossBackward0``.

    One node instead of four (sub, pow, mean and their backward) matters in a training step,
    where the loss is small and the time goes to per-op overhead.
    """
    saves_inputs = (0, 1)

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, xp, input, target):  # noqa: A002 - PyTorch's name
        difference = input - target
        squared = difference * difference
        if self.reduction == "none":
            return squared
        return xp.mean(squared) if self.reduction == "mean" else xp.sum(squared)

    def local_grads(self, grad):
        input, target = self.inputs
        difference = input - target
        scale = 2.0 / difference.numel() if self.reduction == "mean" else 2.0
        lead = self.lead(grad)
        seed = grad * scale
        if lead and self.reduction != "none":  # one seed per leading axis: line them up
            seed = _reshape(seed, tuple(grad._array.shape[:lead]) + (1,) * difference.ndim)
        grad_input = difference * seed
        return (grad_input if self.needs_input_grad[0] else None,
                -grad_input if self.needs_input_grad[1] else None)


def mse_loss(input, target, reduction="mean"):  # noqa: A002
    return MseLoss(reduction)(*_operands(input, target))


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


class Min(Max):
    """The minimum over all elements, or along ``dim``."""

    def extreme(self, xp):
        return xp.min, xp.argmin


# --------------------------------------------------------------------------- shapes
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


class View(Reshape):
    pass


class Unsqueeze(Reshape):
    pass


class Squeeze(Reshape):
    def __init__(self, shape, overload=0):
        super().__init__(shape)
        self.overload = overload  # PyTorch's: squeeze() 0, squeeze(dim) 1, squeeze(dims) 2

    def name(self):
        return f"SqueezeBackward{self.overload}"


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


class Transpose(Permute):
    pass


class T(Permute):
    """``a.t()``: a matrix transposed (a vector or a number as it is), PyTorch's ``TBackward0``."""


class Expand(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, xp, a):
        # A fresh array, not a read-only broadcast view, so that in-place updates of a .grad work.
        return xp.asarray(xp.broadcast_to(a, self.shape), copy=True)

    def backward(self, grad):
        return (sum_to(grad, self.shapes[0], self.lead(grad)),)


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


class Stack(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, xp, *arrays):
        return xp.stack(arrays, axis=self.dim)

    def backward(self, grad):
        trailing = (slice(None),) * (len(self.out_shape) - 1 - self.dim)
        return tuple(grad[(Ellipsis, i) + trailing] if needed else None
                     for i, needed in enumerate(self.needs_input_grad))


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


# --------------------------------------------------------------------------- linear algebra
def _matmul_message(a, b):
    """PyTorch's message for the shapes ``a @ b`` rejects (it names what each case reduces to:
    a dot product, a matrix-vector or a matrix-matrix product, a batch of them), or None."""
    if len(a) == 0 or len(b) == 0:
        return (f"both arguments to matmul need to be at least 1D, but they are "
                f"{len(a)}D and {len(b)}D")
    batch = ()
    if len(a) > 2 and len(b) > 2:
        message = _broadcast_mismatch(a[:-2], b[:-2])
        if message:
            return message
        batch = _broadcast_shape(a[:-2], b[:-2])
    inner = a[-1]
    if inner == (b[-2] if len(b) > 1 else b[0]):
        return None
    rows = math.prod(a[:-1])
    if len(a) == 1 and len(b) == 1:
        return (f"inconsistent tensor size, expected tensor [{inner}] and src [{b[0]}] to have the "
                f"same number of elements, but got {inner} and {b[0]} elements respectively")
    if len(b) == 1:
        return f"size mismatch, got input ({rows}), mat ({rows}x{inner}), vec ({b[0]})"
    if len(b) == 2:
        return f"mat1 and mat2 shapes cannot be multiplied ({rows}x{inner} and {b[0]}x{b[1]})"
    count = math.prod(batch or b[:-2])
    return (f"Expected size for first two dimensions of batch2 tensor to be: [{count}, {inner}] "
            f"but got: [{count}, {b[-2]}].")


_MIXED_DTYPES = {  # PyTorch's messages, which name C types
    "dot": "dot : expected both vectors to have same dtype, but found {A} and {B}",
    "matmul": "expected m1 and m2 to have the same dtype, but got: {a} != {b}",
    "linear": "mat1 and mat2 must have the same dtype, but got {A} and {B}",
}


def _same_dtypes(backend, a, b, product):
    """Products do not promote, as in PyTorch: float32 meeting float64 is an error (typically
    a model left in float32 given float64 data)."""
    if a.dtype != b.dtype:
        c_names = {"float32": "float", "float64": "double", "int64": "long", "bool": "bool"}
        x, y = (c_names[backend.dtype_of(array).name] for array in (a, b))
        message = _MIXED_DTYPES[product].format(a=x, b=y, A=x.capitalize(), B=y.capitalize())
        raise RuntimeError(message + ". Convert one of them with .double() or .float() (a "
                           "model's parameters with model.double()).")


def _matrix_product(xp, a, b):
    """``a @ b``. A product over a single shared axis is an outer product, which NumPy's matmul
    computes through a general path about twice as slow as broadcasting (the first layer of a
    network with one input feature, and its backward pass); the values are identical, since
    each entry is one product either way."""
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1 and b.shape[0] == 1:
        # Broadcasting is fast when the innermost loop is the long one.
        return (b.T * a.T).T if a.shape[0] > b.shape[1] else a * b
    return xp.matmul(a, b)


class Matmul(Function):
    inputs_to_save = staticmethod(_each_needs_the_other)

    def name(self):  # PyTorch's node for the shapes multiplied, where it is one node
        ranks = tuple(len(shape) for shape in getattr(self, "shapes", ()))
        return {(1, 1): "DotBackward0", (2, 2): "MmBackward0", (2, 1): "MvBackward0"}.get(
            ranks, "MatmulBackward0")

    def forward(self, xp, a, b):
        message = _matmul_message(a.shape, b.shape)
        if message:
            if a.ndim != 2 or b.ndim != 2:  # PyTorch's words name what the shapes reduce to
                message += f" (matmul of shapes {list(a.shape)} and {list(b.shape)})"
            raise RuntimeError(message)
        _same_dtypes(self.backend, a, b, "dot" if a.ndim == b.ndim == 1 else "matmul")
        return _matrix_product(xp, a, b)  # _matmul_message has ruled out every shape it rejects

    def backward(self, grad):
        a, b = self.inputs  # a is kept only when b needs a gradient, and b only when a does
        need_a, need_b = self.needs_input_grad
        shape_a, shape_b = self.shapes
        if len(shape_a) == 1 and len(shape_b) == 1:  # a dot product
            g = grad.unsqueeze(-1)
            return (g * b if need_a else None, g * a if need_b else None)
        lead = self.lead(grad)
        batch = tuple(grad._array.shape[:lead])
        matrix_a = (1,) + tuple(shape_a) if len(shape_a) == 1 else tuple(shape_a)
        matrix_b = tuple(shape_b) + (1,) if len(shape_b) == 1 else tuple(shape_b)
        g = grad.unsqueeze(-2) if len(shape_a) == 1 else grad
        g = g.unsqueeze(-1) if len(shape_b) == 1 else g
        grad_a = grad_b = None
        if need_a:
            grad_a = _reshape(sum_to(g @ _reshape(b, matrix_b).mT, matrix_a, lead), batch + tuple(shape_a))
        if need_b:
            grad_b = _reshape(sum_to(_reshape(a, matrix_a).mT @ g, matrix_b, lead), batch + tuple(shape_b))
        return grad_a, grad_b

    def per_sample_backward(self, grad, i):
        a = self.inputs[0]
        shape_a, shape_b = self.shapes
        if i != 1 or len(shape_b) != 2 or len(shape_a) < 2:
            raise _no_per_sample_rule(self, "a parameter must be the right operand of batch @ weight")
        batch, (n, m) = shape_a[0], shape_b
        return a.reshape(batch, -1, n).mT @ grad.reshape(batch, -1, m)


class Linear(Function):
    """``x @ weight.T + bias``, the layer's op (PyTorch's addmm): one node, one per-sample rule."""
    inputs_to_save = staticmethod(_each_needs_the_other)

    def forward(self, xp, x, weight, bias=None):
        message = _matmul_message(x.shape, weight.shape[::-1])
        if message:
            raise RuntimeError(message)
        _same_dtypes(self.backend, x, weight, "linear")
        out = _matrix_product(xp, x, weight.T)  # a weight is a matrix: (out_features, in_features)
        if bias is not None:
            if bias.dtype == out.dtype:
                out += bias  # the product is a fresh array: add in place, no temporary
            else:
                out = out + bias
        return out

    def backward(self, grad):
        x, weight = self.inputs[0], self.inputs[1]  # each kept only if the other needs a gradient
        lead = self.lead(grad)
        batch = tuple(grad._array.shape[:lead])
        out_features, in_features = self.shapes[1]
        rows = math.prod(self.out_shape[:-1])
        grad_rows = _reshape(grad, batch + (rows, out_features))
        grad_x = grad @ weight if self.needs_input_grad[0] else None
        grad_w = None
        if self.needs_input_grad[1]:
            grad_w = grad_rows.mT @ _reshape(x, (rows, in_features))
        grad_b = None
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            # The sum over the rows, as ones @ rows: BLAS's matrix-vector product is several
            # times faster than the array library's reduction over the first axis.
            ones = Tensor._make(grad._backend.xp.ones(rows, dtype=grad._array.dtype), grad._backend)
            grad_b = Matmul()(ones, grad_rows)
        return grad_x, grad_w, grad_b

    def per_sample_backward(self, grad, i):
        """Sample s's weight gradient is the outer product of its backprop signal and its input."""
        x = self.inputs[0]
        out_features, in_features = self.shapes[1]
        batch = self.out_shape[0]
        rows = math.prod(self.out_shape[1:-1])  # rows per sample: 1, or a sequence's length
        if i == 2:
            return _reshape(grad, (batch, rows, out_features)).sum(dim=1) if rows != 1 else \
                _reshape(grad, (batch, out_features))
        if rows == 1:  # one outer product per sample: its backprop signal times its input
            return BatchedOuter()(_reshape(grad, (batch, out_features)), _reshape(x, (batch, in_features)))
        return _reshape(grad, (batch, rows, out_features)).mT @ _reshape(x, (batch, rows, in_features))


class BatchedOuter(Function):
    """``out[s] = outer(a[s], b[s])`` for each sample s: (batch, m) and (batch, n) -> (batch, m, n)."""
    inputs_to_save = staticmethod(_each_needs_the_other)

    def forward(self, xp, a, b):
        return a[:, :, None] * b[:, None, :]

    def backward(self, grad):
        a, b = self.inputs
        return ((grad * b.unsqueeze(-2)).sum(dim=-1) if self.needs_input_grad[0] else None,
                (grad * a.unsqueeze(-1)).sum(dim=-2) if self.needs_input_grad[1] else None)


def _no_per_sample_rule(node, why=""):
    return NotImplementedError(
        f"per_sample_grad: a parameter is used by {node.name()}, which has no per-sample rule"
        + (f" ({why})" if why else "") + ". Use nn.Linear or elementwise ops with the parameter, "
        "or compute per-sample gradients with a loop of batch-size-1 backward passes.")


# --------------------------------------------------------------------------- the function forms
def add(a, b):
    return Add()(*_operands(a, b))


def sub(a, b):
    return Sub()(*_operands(a, b))


def mul(a, b):
    return Mul()(*_operands(a, b))


def div(a, b):
    return Div()(*_operands(a, b, floating=True))


def pow(a, b):  # noqa: A001 - PyTorch's name
    return Pow()(*_operands(a, b))


def _operands(a, b, floating=False):
    """``_promoted`` for a binary op, with the common cases (nothing to change) first."""
    if isinstance(a, Tensor) and a._array.dtype in a._backend.float_natives:
        if type(b) in (float, int) or (isinstance(b, Tensor) and b._backend is a._backend
                                       and b._array.dtype == a._array.dtype):
            return a, b
    elif isinstance(b, Tensor) and b._array.dtype in b._backend.float_natives and type(a) in (float, int):
        return a, b
    return _promoted((a, b), floating)


def _floating(a):
    """An integer tensor as the default float dtype, for ops whose result is a float (exp, log...)."""
    return a if a._array.dtype in a._backend.float_natives else a.to(dtypes.default_float())


_RANK = {dtypes.bool: 0, dtypes.int64: 1, dtypes.float32: 2, dtypes.float64: 3}


def _wider(x, y):
    return x if y is None or (x is not None and _RANK[x] >= _RANK[y]) else y


def _combine(higher, lower):
    """A lower-priority result counts only where it is of a higher kind (bool < integer < float)."""
    if higher is None:
        return lower
    if higher.is_floating_point:
        return higher
    if higher is dtypes.bool or (lower is not None and lower.is_floating_point):
        return _wider(higher, lower)
    return higher


def _promoted(operands, floating=False):
    """The operands of an elementwise op, after PyTorch's type promotion.

    Numbers, Python's or NumPy's, stay constants and never widen a tensor (``x * 2.0`` keeps
    float32, an integer tensor times 1.5 becomes the default float32). A 0-d tensor widens only
    tensors of a lower kind. Otherwise the wider dtype wins. ``floating``: the result is a float
    even for integer inputs (``/``, ``exp``). Tensors not of the result dtype are cast, which is
    recorded, so their gradients come back in their own dtype.
    """
    dimensioned = zero_dim = numbers = None
    backend = next((o._backend for o in operands if isinstance(o, Tensor)), None)
    operands = [o if isinstance(o, Tensor) or type(o) in (bool, int, float) else _constant(o, backend)
                for o in operands]
    for o in operands:
        if isinstance(o, Tensor):
            if o._array.ndim:
                dimensioned = _wider(dimensioned, o.dtype)
            else:
                zero_dim = _wider(zero_dim, o.dtype)
        else:
            numbers = _wider(numbers, _number_dtype(o))
    result = _combine(dimensioned, _combine(zero_dim, numbers))
    if floating and not result.is_floating_point:
        result = dtypes.default_float()
    return [o.to(result) if isinstance(o, Tensor) and o.dtype is not result
            else int(o) if type(o) is bool and result is not dtypes.bool  # True as the number 1
            else o for o in operands]


def _number_dtype(number):
    if type(number) is bool:
        return dtypes.bool
    return dtypes.int64 if type(number) is int else dtypes.default_float()


def _constant(value, backend):
    """A NumPy scalar (``np.float64(0.1)``) as the Python number it holds, which, as in PyTorch,
    does not widen the tensor it meets; an array (``np.ones(3)``) as a tensor beside the others."""
    shape = getattr(value, "shape", None)
    if shape == () and hasattr(value, "item"):
        return value.item()
    if shape is not None and backend is not None:
        array, _ = backend.from_data(value)
        return Tensor._make(array, backend)
    return value


def neg(a):
    return Neg()(a)


def exp(a):
    return Exp()(_floating(a))


def log(a):
    return Log()(_floating(a))


def sqrt(a):
    return Sqrt()(_floating(a))


def abs(a):  # noqa: A001
    return Abs()(a)


def sign(a):
    return Sign()(a)


def sigmoid(a):
    return Sigmoid()(_floating(a))


def tanh(a):
    return Tanh()(_floating(a))


def relu(a):
    return Relu()(a)


def clamp(a, min=None, max=None):  # noqa: A002
    if min is None and max is None:
        raise RuntimeError("At least one of 'min' or 'max' must not be None")
    return Clamp(min, max)(a)


def where(condition, a, b):
    if not isinstance(condition, Tensor) or condition.dtype is not dtypes.bool:
        raise TypeError("where expected condition to be a boolean tensor")
    a, b = _promoted((a, b))
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        # Two numbers: the array library would make float64 of them, PyTorch float32.
        dtype = _wider(_number_dtype(a), _number_dtype(b))
        a = Tensor._make(condition._backend.asarray(a, dtype), condition._backend)
    return Where()(condition, a, b)


def sum(a, dim=None, keepdim=False):  # noqa: A001
    return Sum(_normalize_dims(dim, a.ndim), keepdim, along=dim is not None)(a)


def mean(a, dim=None, keepdim=False):
    if not a.dtype.is_floating_point:
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {a.dtype.name}")
    return Mean(_normalize_dims(dim, a.ndim), keepdim, along=dim is not None)(a)


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


def max(a, dim=None, keepdim=False):  # noqa: A001
    """``max(a)``: the largest element; ``max(a, dim)``: (values, indices) along ``dim``;
    ``max(a, b)`` with a tensor ``b``: the elementwise maximum, as in PyTorch."""
    return _extreme(Max, MaxResult, maximum, a, dim, keepdim)


def min(a, dim=None, keepdim=False):  # noqa: A001
    """The smallest element, (values, indices) along ``dim``, or the elementwise minimum."""
    return _extreme(Min, MinResult, minimum, a, dim, keepdim)


def _extreme(op_class, result_class, elementwise, a, dim, keepdim):
    if isinstance(dim, Tensor):
        return elementwise(a, dim)
    if dim is None:
        return op_class()(a)
    if a.ndim == 0:  # a 0-d tensor has one element, at index 0 of "dimension" 0 or -1
        _normalize_dims(dim, 1)
        return _extreme(op_class, result_class, elementwise, a.reshape(1), 0, False)
    op = op_class(_normalize_dims(dim, a.ndim)[0], keepdim)
    values = op(a)
    return result_class((values, Tensor._make(op.indices, a._backend)))


def maximum(a, b):
    return Maximum()(*_promoted((a, b)))


def minimum(a, b):
    return Minimum()(*_promoted((a, b)))


def matmul(a, b):
    return Matmul()(a, b)


def linear(x, weight, bias=None):
    return Linear()(x, weight) if bias is None else Linear()(x, weight, bias)


def reshape(a, *shape):
    shape = _shape_arg(shape)
    return Reshape(_infer_shape(shape, a.numel(), a.shape))(a)


def flatten(a, start_dim=0, end_dim=-1):
    """Dimensions ``start_dim`` to ``end_dim`` merged into one (all of them by default)."""
    if a.ndim == 0:
        return reshape(a, 1)
    start, end = (_normalize_dims(d, a.ndim)[0] for d in (start_dim, end_dim))
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = tuple(a.shape)
    return reshape(a, shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])


def view(a, *shape):
    shape = _shape_arg(shape)
    return View(_infer_shape(shape, a.numel(), a.shape))(a)


def _shape_arg(shape):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _infer_shape(shape, numel, old):
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


def permute(a, *dims):
    dims = _shape_arg(dims)
    if sorted(d % a.ndim for d in dims) != list(range(a.ndim)):
        raise RuntimeError(f"permute(): dims {list(dims)} do not match the tensor's {a.ndim} dimensions")
    return Permute(tuple(d % a.ndim for d in dims))(a)


def matrix_transpose(a):
    """``a.mT``: the last two axes swapped (the hot path of matrix rules: no axis checks to redo)."""
    if a.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {a.ndim}-D tensor.")
    dims = list(range(a.ndim))
    dims[-2], dims[-1] = dims[-1], dims[-2]
    return Transpose(tuple(dims))(a)


def transpose(a, dim0, dim1):
    if a.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return Transpose(tuple(range(a.ndim)))(a)
    d0, d1 = _normalize_dims(dim0, a.ndim)[0], _normalize_dims(dim1, a.ndim)[0]
    dims = list(range(a.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Transpose(tuple(dims))(a)


def unsqueeze(a, dim):
    if not -a.ndim - 1 <= dim <= a.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-a.ndim - 1}, {a.ndim}], but got {dim})")
    dim = dim % (a.ndim + 1)
    shape = tuple(a.shape)
    return Unsqueeze(shape[:dim] + (1,) + shape[dim:])(a)


def squeeze(a, dim=None):
    shape = tuple(a.shape)
    dims = _normalize_dims(dim, a.ndim) if a.ndim else ()
    new = tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))
    return Squeeze(new, overload=0 if dim is None else 1 if isinstance(dim, int) else 2)(a)


def t(a):
    if a.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {a.ndim}D. "
                           "Use .mT or transpose(-2, -1) for batches of matrices.")
    return T(tuple(reversed(range(a.ndim))))(a)


def expand(a, *shape):
    shape = _shape_arg(shape)
    old = (1,) * (len(shape) - a.ndim) + tuple(a.shape)
    shape = tuple(o if s == -1 else s for s, o in zip(shape, old))
    message = _expand_message(shape, tuple(a.shape))
    if message:
        raise RuntimeError(message)
    return Expand(shape)(a)


def _expand_message(target, source):
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
    axis = _normalize_dims(dim, tensors[0].ndim)[0]
    first = tuple(tensors[0].shape)
    for i, t in enumerate(tensors[1:], start=1):
        shape = tuple(t.shape)
        for d, (expected, got) in enumerate(zip(first, shape)):
            if d != axis and expected != got:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {axis}. Expected "
                                   f"size {expected} but got size {got} for tensor number {i} in the list.")
    return Cat(axis)(*_promoted(tensors))


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    first = tuple(tensors[0].shape)
    for i, t in enumerate(tensors):
        if tuple(t.shape) != first:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} "
                               f"at entry 0 and {list(t.shape)} at entry {i}")
    return Stack(_normalize_dims(dim, len(first) + 1)[0])(*_promoted(tensors))


def index(a, key):
    key = _normalize_key(a, key)
    if any(part is None for part in key):
        # New axes: index without them, then reshape, so the backward scatter needs no ``None``.
        shape = a._backend.getitem(a._array, key).shape
        return Unsqueeze(tuple(shape))(Index(tuple(p for p in key if p is not None))(a))
    return Index(key)(a)


def _normalize_key(a, key):
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


# --------------------------------------------------------------------------- devices
class ToDevice(Function):
    """A copy on another device; the gradient travels back to the source device."""

    def __init__(self, target):
        self.target = target

    def __call__(self, tensor):
        self.source = tensor._backend
        host = self.source.to_numpy(tensor._array)
        out = Tensor._make(self.target.asarray(host, tensor.dtype), self.target)
        if state.enabled and tensor._requires_grad:
            self.record((tensor,), out)
        return out

    def backward(self, grad):
        return (ToDevice(self.source)(grad),)
