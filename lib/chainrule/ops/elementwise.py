"""Elementwise ops, binary (broadcasting) then unary, and copies (dtype, clone, device); each
op's function form sits under its class."""
import math
import operator

from .. import dtypes
from ..batching import aligned, is_batched, levels
from ..function import Function
from ..grad_mode import state
from ..tensor import Tensor
from .arguments import (as_floating, binary_operands, broadcast_message, broadcast_shape, each_needs_the_other,
                        number_dtype, promoted, wider)
from .shape import _reshape, sum_to


class Elementwise(Function):
    """Broadcasting ops. ``local_grads`` gives each input's gradient before the broadcast reduction."""

    def explain(self, args, error):
        shapes = [tuple(a.shape) for a in args if isinstance(a, Tensor)]
        return broadcast_message(*shapes[-2:])

    def local_grads(self, grad):
        raise NotImplementedError

    def backward(self, grad):
        lead = self.lead(grad)
        return [None if g is None else self.reduce(g, i, lead)
                for i, g in enumerate(self.local_grads(grad))]

    def reduce(self, g, i, lead):
        array = g._array
        if not lead and array.shape == self.shapes[i] and array.dtype == self.dtypes[i]:
            return g  # the common case, nothing to sum or cast
        g = sum_to(g, self.shapes[i], lead)
        dtype = g._array.dtype
        if dtype is not self.dtypes[i] and dtype != self.dtypes[i]:  # float32 input met a float64 one: grad keeps its dtype
            g = g.to(g._backend.dtype_of_native(self.dtypes[i]))
        return g

    def batch_rule(self, args, batch_dims):
        """Every batch axis first, every sample padded to the same rank: broadcasting then pairs
        sample with sample, and an input without a batch is shared by all."""
        return self.fresh()(*aligned(args, batch_dims)), 0

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


class Pointwise(Function):
    """Ops of one tensor, element by element (exp, sigmoid...)."""

    def batch_rule(self, args, batch_dims):
        """Each element on its own: the whole batch at once, its axis where it was."""
        return self.fresh()(*args), batch_dims[0]


# --------------------------------------------------------------------------- binary
class Add(Elementwise):
    def forward(self, xp, a, b):
        return a + b

    def local_grads(self, grad):
        return (grad if self.needs_input_grad[0] else None,
                grad if self.needs_input_grad[1] else None)


def add(a, b):
    return Add()(*binary_operands(a, b))


class Sub(Elementwise):
    def name(self):  # 2 - x is PyTorch's rsub
        return "RsubBackward1" if self.dtypes[0] is None else "SubBackward0"

    def forward(self, xp, a, b):
        return a - b

    def local_grads(self, grad):
        return (grad if self.needs_input_grad[0] else None,
                -grad if self.needs_input_grad[1] else None)


def sub(a, b):
    return Sub()(*binary_operands(a, b))


class Mul(Elementwise):
    inputs_to_save = staticmethod(each_needs_the_other)

    def forward(self, xp, a, b):
        return a * b

    def local_grads(self, grad):
        a, b = self.inputs
        return (grad * b if self.needs_input_grad[0] else None,
                grad * a if self.needs_input_grad[1] else None)


def mul(a, b):
    return Mul()(*binary_operands(a, b))


class Div(Elementwise):
    def inputs_to_save(self, needs_input_grad):
        return (0, 1) if needs_input_grad[1] else (1,)

    def forward(self, xp, a, b):
        return a / b

    def local_grads(self, grad):
        a, b = self.inputs
        return (grad / b if self.needs_input_grad[0] else None,
                -grad * a / (b * b) if self.needs_input_grad[1] else None)


def div(a, b):
    return Div()(*binary_operands(a, b, floating=True))


class Pow(Elementwise):
    saves_inputs = (0, 1)
    saved_names = ("self", "exponent")
    saves_output = True

    def output_is_saved(self, needs_input_grad):
        return needs_input_grad[1]  # only the exponent's gradient reads it

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


def pow(a, b):  # noqa: A001 - PyTorch's name
    return Pow()(*binary_operands(a, b))


class Remainder(Elementwise):
    """``a % b`` with the sign of ``b``, as Python's and PyTorch's: a - floor(a / b) * b."""
    saves_inputs = (0, 1)

    def name(self):  # PyTorch's overloads: % number 0, % tensor 1; number % tensor has no rule
        return "NotImplemented" if self.dtypes[0] is None else f"RemainderBackward{int(self.dtypes[1] is not None)}"

    def forward(self, xp, a, b):
        return xp.remainder(a, b)

    def local_grads(self, grad):
        a, b = self.inputs
        if self.dtypes[0] is None:
            raise RuntimeError("derivative for aten::remainder is not implemented")
        grad_b = None
        if self.needs_input_grad[1]:
            quotient = (a / b).detach()
            grad_b = -grad * Tensor._make(quotient._backend.xp.floor(quotient._array), quotient._backend)
        return (grad if self.needs_input_grad[0] else None), grad_b


def remainder(a, b):
    return Remainder()(*binary_operands(a, b))


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


def maximum(a, b):
    return Maximum()(*promoted((a, b)))


class Minimum(Maximum):
    """The smaller of two tensors, element by element (``min(a, b)``)."""

    def forward(self, xp, a, b):
        return xp.minimum(a, b)

    def a_wins(self, a, b):
        return a < b


def minimum(a, b):
    return Minimum()(*promoted((a, b)))


class Where(Elementwise):
    saves_inputs = (0,)
    saved_names = ("condition", "self", "other")

    def forward(self, xp, condition, a, b):
        return xp.where(condition, a, b)

    def local_grads(self, grad):
        condition = self.inputs[0]
        return (None,
                where(condition, grad, 0.0) if self.needs_input_grad[1] else None,
                where(condition, 0.0, grad) if self.needs_input_grad[2] else None)


def where(condition, a, b):
    if not isinstance(condition, Tensor) or condition.dtype is not dtypes.bool:
        raise TypeError("where expected condition to be a boolean tensor")
    a, b = promoted((a, b))
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        # Two numbers: the array library would make float64 of them, PyTorch float32.
        dtype = wider(number_dtype(a), number_dtype(b))
        a = Tensor._make(condition._backend.asarray(a, dtype), condition._backend)
    return Where()(condition, a, b)



# --------------------------------------------------------------------------- comparisons
def _compared(a, b, compare):
    """A comparison (or ``&``, ``|``) of two operands after PyTorch's type promotion (an integer
    tensor meets 1.5 as floats). Its result is not differentiable: no node is recorded."""
    a, b = binary_operands(a, b)
    if levels and is_batched(a, b):
        return Compare(compare)(a, b)
    backend = (a if isinstance(a, Tensor) else b)._backend
    a = a._array if isinstance(a, Tensor) else a
    b = b._array if isinstance(b, Tensor) else b
    return Tensor._make(backend.wrap(compare(a, b)), backend)


def _comparison(compare, name):
    def compared(a, b):
        return _compared(a, b, compare)
    compared.__name__ = compared.__qualname__ = name
    return compared


eq, ne = _comparison(operator.eq, "eq"), _comparison(operator.ne, "ne")
lt, le = _comparison(operator.lt, "lt"), _comparison(operator.le, "le")
gt, ge = _comparison(operator.gt, "gt"), _comparison(operator.ge, "ge")
bitwise_and = _comparison(operator.and_, "bitwise_and")  # a mask & 3 is an integer tensor
bitwise_or = _comparison(operator.or_, "bitwise_or")


class Compare(Elementwise):
    """A comparison as an op, under vmap only: elsewhere ``_compared`` spares it the machinery."""

    def __init__(self, compare):
        self.compare = compare

    def forward(self, xp, a, b):
        return self.compare(a, b)


class Invert(Pointwise):
    def forward(self, xp, a):
        return ~a


def bitwise_not(a):
    if levels and is_batched(a):
        return Invert()(a)
    return Tensor._make(a._backend.wrap(~a._array), a._backend)


# --------------------------------------------------------------------------- unary
class Neg(Pointwise):
    def forward(self, xp, a):
        return -a

    def backward(self, grad):
        return (-grad,)


def neg(a):
    return Neg()(a)


class Exp(Pointwise):
    saves_output = True

    def forward(self, xp, a):
        return xp.exp(a)

    def backward(self, grad):
        return (grad * self.output,)


def exp(a):
    return Exp()(as_floating(a))


class Log(Pointwise):
    saves_inputs = (0,)

    def forward(self, xp, a):
        return xp.log(a)

    def backward(self, grad):
        return (grad / self.inputs[0],)


def log(a):
    return Log()(as_floating(a))


class Sqrt(Pointwise):
    saves_output = True

    def forward(self, xp, a):
        return xp.sqrt(a)

    def backward(self, grad):
        return (grad / (2.0 * self.output),)


def sqrt(a):
    return Sqrt()(as_floating(a))


class Sin(Pointwise):
    saves_inputs = (0,)

    def forward(self, xp, a):
        return xp.sin(a)

    def backward(self, grad):
        return (grad * cos(self.inputs[0]),)


def sin(a):
    return Sin()(as_floating(a))


class Cos(Pointwise):
    saves_inputs = (0,)

    def forward(self, xp, a):
        return xp.cos(a)

    def backward(self, grad):
        return (grad * -sin(self.inputs[0]),)


def cos(a):
    return Cos()(as_floating(a))


class Abs(Pointwise):
    saves_inputs = (0,)

    def forward(self, xp, a):
        return xp.abs(a)

    def backward(self, grad):
        return (grad * sign(self.inputs[0]),)


def abs(a):  # noqa: A001
    return Abs()(a)


class Sign(Pointwise):
    def forward(self, xp, a):
        return xp.sign(a)

    def backward(self, grad):
        return (grad * 0.0,)


def sign(a):
    return Sign()(a)


def _times(fresh, other):
    """``fresh * other``, written into ``fresh`` (a temporary of the caller's) when the result
    has its shape and dtype: one pass over the data and no new array."""
    if fresh.shape == other.shape and fresh.dtype == other.dtype:
        fresh *= other
        return fresh
    return fresh * other


class Sigmoid(Pointwise):
    saves_output = True

    def forward(self, xp, a):
        denominator = xp.exp(-a)
        denominator += 1.0
        return 1.0 / denominator

    def backward(self, grad):
        if self.on_arrays(grad):
            return (self.tensor(SigmoidDerivative().forward(self.backend.xp, grad._array, self._output_array)),)
        return (SigmoidDerivative()(grad, self.output),)


def sigmoid(a):
    return Sigmoid()(as_floating(a))


class SigmoidDerivative(Function):
    """``grad * out * (1 - out)`` as one op: one temporary instead of three. It is an op of its
    own, with its own backward, so that second derivatives through sigmoid still work."""
    saves_inputs = (0, 1)

    def batch_rule(self, args, batch_dims):
        return _same_shapes_rule(self, args, batch_dims)

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


def _same_shapes_rule(op, args, batch_dims):
    """Elementwise's rule for an op whose backward takes both inputs to have one shape (no
    broadcasting to undo): an input without the batch is expanded to it first."""
    a, b = aligned(args, batch_dims)
    if not (state.enabled and (a.requires_grad or b.requires_grad)):  # no backward to mind
        return op.fresh()(a, b), 0
    shape = broadcast_shape(tuple(a.shape), tuple(b.shape))
    return op.fresh()(*(t if tuple(t.shape) == shape else t.expand(*shape) for t in (a, b))), 0


class Tanh(Pointwise):
    saves_output = True

    def forward(self, xp, a):
        return xp.tanh(a)

    def backward(self, grad):
        if self.on_arrays(grad):
            return (self.tensor(TanhDerivative().forward(self.backend.xp, grad._array, self._output_array)),)
        return (TanhDerivative()(grad, self.output),)


def tanh(a):
    return Tanh()(as_floating(a))


class TanhDerivative(Function):
    """``grad * (1 - out**2)`` as one op (see SigmoidDerivative)."""
    saves_inputs = (0, 1)

    def batch_rule(self, args, batch_dims):
        return _same_shapes_rule(self, args, batch_dims)

    def name(self):
        return "TanhBackwardBackward0"

    def forward(self, xp, grad, out):
        slope = 1.0 - out * out  # PyTorch's tanh_backward: grad * (1 - out**2)
        return _times(slope, grad)

    def backward(self, g):
        grad, out = self.inputs
        return (g * (1.0 - out * out) if self.needs_input_grad[0] else None,
                -2.0 * g * grad * out if self.needs_input_grad[1] else None)


class Relu(Pointwise):
    saves_output = True

    def forward(self, xp, a):
        return xp.where(a > 0, a, xp.zeros_like(a))

    def backward(self, grad):
        return (where(self.output > 0, grad, 0.0),)


def relu(a):
    return Relu()(a)


class Clamp(Pointwise):
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


def clamp(a, min=None, max=None):  # noqa: A002
    if min is None and max is None:
        raise RuntimeError("At least one of 'min' or 'max' must not be None")
    return Clamp(min, max)(a)


# --------------------------------------------------------------------------- copies
class Cast(Pointwise):
    def __init__(self, dtype):
        self.dtype = dtype

    def name(self):
        return "ToCopyBackward0"

    def forward(self, xp, a):
        return xp.astype(a, self.backend.native_dtype(self.dtype))

    def backward(self, grad):
        return (grad.to(grad._backend.dtype_of_native(self.dtypes[0])),)


class Clone(Pointwise):
    def forward(self, xp, a):
        return xp.asarray(a, copy=True)

    def backward(self, grad):
        return (grad,)


def clone(a):
    return Clone()(a)


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
