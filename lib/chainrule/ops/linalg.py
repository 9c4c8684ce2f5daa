"""Linear algebra: matrix products (``@``) and the linear layer's op, with per-sample rules."""
import math

from ..batching import aligned, batch_front
from ..function import Function
from ..tensor import Tensor
from .arguments import broadcast_mismatch, broadcast_shape, each_needs_the_other
from .elementwise import Add
from .shape import _reshape, sum_to


def _matmul_message(a, b):
    """PyTorch's message for the shapes ``a @ b`` rejects (it names what each case reduces to:
    a dot product, a matrix-vector or a matrix-matrix product, a batch of them), or None."""
    if len(a) == 0 or len(b) == 0:
        return (f"both arguments to matmul need to be at least 1D, but they are "
                f"{len(a)}D and {len(b)}D")
    batch = ()
    if len(a) > 2 and len(b) > 2:
        message = broadcast_mismatch(a[:-2], b[:-2])
        if message:
            return message
        batch = broadcast_shape(a[:-2], b[:-2])
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


_C_TYPES = {"float32": "float", "float64": "double", "int64": "long", "bool": "bool"}


def _same_dtypes(backend, a, b, product):
    """Products do not promote, as in PyTorch: float32 meeting float64 is an error (typically
    a model left in float32 given float64 data)."""
    if a.dtype != b.dtype:
        x, y = (_C_TYPES[backend.dtype_of(array).name] for array in (a, b))
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
    inputs_to_save = staticmethod(each_needs_the_other)

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

    def batch_rule(self, args, batch_dims):
        """Vectors as matrices (so that a batch of vectors is not taken for a matrix), the batch
        axis first and the samples padded to one rank: matmul's own broadcasting does the rest."""
        (a, b), (da, db) = args, batch_dims
        if db is None and b.ndim == 2:  # one matrix for all: a plain product does it
            return batch_front(a, da) @ b, 0
        vector_a, vector_b = a.ndim - (da is not None) == 1, b.ndim - (db is not None) == 1
        a = a.unsqueeze(-2) if vector_a else a
        b = b.unsqueeze(-1) if vector_b else b
        a, b = aligned((a, b), (da, db))
        out = a @ b
        out = out.squeeze(-1) if vector_b else out
        return (out.squeeze(-1 if vector_b else -2) if vector_a else out), 0

    def per_sample_backward(self, grad, i):
        a = self.inputs[0]
        shape_a, shape_b = self.shapes
        if i != 1 or len(shape_b) != 2 or len(shape_a) < 2:
            raise _no_per_sample_rule(self, "a parameter must be the right operand of batch @ weight")
        batch, (n, m) = shape_a[0], shape_b
        return a.reshape(batch, -1, n).mT @ grad.reshape(batch, -1, m)


def matmul(a, b):
    return Matmul()(a, b)


def dot(a, b):
    """The dot product of two vectors (``DotBackward0``): no broadcasting, no promotion."""
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.dtype is not b.dtype:  # PyTorch's words exactly, which name C types
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{_C_TYPES[a.dtype.name].capitalize()} and {_C_TYPES[b.dtype.name].capitalize()}")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(_matmul_message(tuple(a.shape), tuple(b.shape)))
    return Matmul()(a, b)


def mm(a, b):
    """A matrix times a matrix (``MmBackward0``)."""
    for name, t in (("self", a), ("mat2", b)):
        if t.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix")
    return Matmul()(a, b)


def mv(a, v):
    """A matrix times a vector (``MvBackward0``)."""
    if a.ndim != 2 or v.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {a.ndim}, {v.ndim}")
    return Matmul()(a, v)


class Linear(Function):
    """``x @ weight.T + bias``, the layer's op (PyTorch's addmm): one node, one per-sample rule."""
    inputs_to_save = staticmethod(each_needs_the_other)

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
        if self.on_arrays(grad) and len(self.out_shape) == 2 and grad._array.dtype == self.dtypes[1]:
            return self.backward_on_arrays(grad._array, x, weight)
        lead = self.lead(grad)
        batch = tuple(grad._array.shape[:lead])
        out_features, in_features = self.shapes[1]
        rows = math.prod(self.out_shape[:-1])
        grad_x = grad @ weight if self.needs_input_grad[0] else None
        grad_w = None
        if self.needs_input_grad[1] or (len(self.needs_input_grad) > 2 and self.needs_input_grad[2]):
            grad_rows = _reshape(grad, batch + (rows, out_features))
        if self.needs_input_grad[1]:
            grad_w = grad_rows.mT @ _reshape(x, (rows, in_features))
        grad_b = None
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            # The sum over the rows, as ones @ rows: BLAS's matrix-vector product is several
            # times faster than the array library's reduction over the first axis.
            ones = Tensor._make(grad._backend.xp.ones(rows, dtype=grad._array.dtype), grad._backend)
            grad_b = Matmul()(ones, grad_rows)
        return grad_x, grad_w, grad_b

    def backward_on_arrays(self, grad, x, weight):
        """The common case, a batch of rows with nothing recorded: the products of ``backward``
        on arrays, which gives the same values without four ops' per-call costs."""
        xp, needs = self.backend.xp, self.needs_input_grad
        grad_x = grad_w = grad_b = None
        if needs[0]:
            grad_x = self.tensor(_matrix_product(xp, grad, weight._array))
        if needs[1]:
            grad_w = self.tensor(_matrix_product(xp, grad.T, x._array))
        if len(needs) > 2 and needs[2]:
            grad_b = self.tensor(xp.matmul(_ones(self.backend, grad.shape[0], grad.dtype), grad))
        return grad_x, grad_w, grad_b

    def batch_rule(self, args, batch_dims):
        """A batch of inputs through one layer is the layer's usual work; a batch of layers
        (model ensembling) is a batch of matrix products."""
        if batch_dims[1:] == [None] * (len(args) - 1):
            return self.fresh()(batch_front(args[0], batch_dims[0]), *args[1:]), 0
        weight, weight_dim = args[1], batch_dims[1]
        if weight_dim is not None:
            weight, weight_dim = batch_front(weight, weight_dim).mT, 0
        else:
            weight = weight.mT
        out, out_dim = Matmul().batch_rule([args[0], weight], [batch_dims[0], weight_dim])
        if len(args) > 2:
            out, out_dim = Add().batch_rule([out, args[2]], [out_dim, batch_dims[2]])
        return out, out_dim

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


_ONES = {}


def _ones(backend, n, dtype):
    """A vector of n ones, made once per (device, n, dtype) instead of on every backward pass.
    Only fast paths read it, and never hand it out, so nothing can change it in place. The
    cache stays small: a training loop meets a batch size or two."""
    key = (backend, n, dtype)
    ones = _ONES.get(key)  # one lookup: another thread may clear the cache in between
    if ones is None:
        if len(_ONES) >= 16:
            _ONES.clear()
        ones = _ONES[key] = backend.xp.ones(n, dtype=dtype)
    return ones


def linear(x, weight, bias=None):
    return Linear()(x, weight) if bias is None else Linear()(x, weight, bias)


class BatchedOuter(Function):
    """``out[s] = outer(a[s], b[s])`` for each sample s: (batch, m) and (batch, n) -> (batch, m, n)."""
    inputs_to_save = staticmethod(each_needs_the_other)

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
