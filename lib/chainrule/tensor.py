"""``Tensor``: an array, where it came from (``grad_fn``) and where its gradient goes (``grad``)."""
import operator
import warnings
import weakref

from . import dtypes, engine
from .grad_mode import state


class Size(tuple):
    """A tensor's shape: a tuple that prints as PyTorch's ``torch.Size([2, 3])``."""

    def __repr__(self):
        return f"chainrule.Size({list(self)})"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


NON_LEAF_GRAD = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad field "
    "to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. If you "
    "access the non-leaf Tensor by mistake, make sure you access the leaf Tensor instead.")


SCALAR_OF_GRAD = ("Converting a tensor with requires_grad=True to a scalar may lead to unexpected "
                  "behavior.\nConsider using tensor.detach() first.")
_warned_scalar = False


class VersionCounter:
    """How many in-place updates a piece of memory has had. A tensor and its views (detach,
    reshape, transpose, slices) share one, so a change through any of them is seen by every
    node that saved one of them."""
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Tensor:
    # Defaults live on the class, so that making a tensor sets only its array and backend.
    _requires_grad = False
    _grad = None
    grad_fn = None
    _counter = None       # this memory's VersionCounter, made at its first update or view
    _accumulator = None   # a weak reference to a leaf's AccumulateGrad node (the graph owns it)
    _hooked_accumulator = None  # ... held strongly once a hook is registered on it
    _owned = False        # this gradient object is some leaf's .grad already
    _inference = False    # made in inference_mode (or a view of such a tensor)

    # ------------------------------------------------------------------ construction
    def __new__(cls, *data, device=None):
        """PyTorch's legacy constructor: ``Tensor([2, 1])`` copies data into a float32 tensor,
        ``Tensor(2, 3)`` makes one of that shape (zeros), ``Tensor()`` an empty one."""
        from . import creation
        if len(data) == 1 and not isinstance(data[0], int):
            if isinstance(data[0], (float, complex, bool, str)) or data[0] is None:
                raise TypeError(f"new(): data must be a sequence (got {type(data[0]).__name__})")
            if isinstance(data[0], Size):
                return creation.zeros(*data[0], dtype=dtypes.float32, device=device)
            return creation.tensor(data[0], dtype=dtypes.float32, device=device)
        if not all(isinstance(n, int) for n in data):
            names = ", ".join(type(n).__name__ for n in data)
            raise TypeError(f"new() received an invalid combination of arguments - got ({names})")
        return creation.zeros(*data or (0,), dtype=dtypes.float32, device=device)

    @classmethod
    def _make(cls, array, backend):
        t = object.__new__(cls)
        t._array = array
        t._backend = backend
        if state.inference:  # made in inference_mode
            t._inference = True
        return t

    def _edge(self):
        """The graph edge to this tensor: its grad_fn, or for a leaf its AccumulateGrad node."""
        if self.grad_fn is not None:
            return (self.grad_fn, 0)
        if not self._requires_grad:
            return (None, 0)
        node = None if self._accumulator is None else self._accumulator()
        if node is None:
            node = engine.AccumulateGrad(self)
            self._accumulator = weakref.ref(node)
        return (node, 0)

    @property
    def _version(self):
        """Bumped by every in-place update of this tensor's memory; saved tensors check it."""
        return 0 if self._counter is None else self._counter.value

    def _bump_version(self):
        if self._counter is None:
            self._counter = VersionCounter()
        self._counter.value += 1

    def _may_alias(self):
        """Whether another tensor may hold this memory: it is a leaf's .grad, a view, or viewed."""
        return self._owned or self._counter is not None

    def _view_of(self, base):
        """Make this tensor, which shares ``base``'s memory, share its version counter too."""
        if base._counter is None:
            base._counter = VersionCounter()
        self._counter = base._counter
        self._inference = base._inference
        return self

    # ------------------------------------------------------------------ autograd attributes
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self.requires_grad_(value)

    def is_inference(self):
        return self._inference

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self._inference and not state.inference:
            raise RuntimeError("Setting requires_grad=True on inference tensor outside InferenceMode "
                               "is not allowed.")
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to use "
                    "a computed variable in a subgraph that doesn't require differentiation use "
                    "var_no_grad = var.detach().")
            return self
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError("Only Tensors of floating point and complex dtype can require "
                               f"gradients (got {self.dtype.name})")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def grad(self):
        if self._grad is None and self.grad_fn is not None and not self.retains_grad:
            warnings.warn(NON_LEAF_GRAD, UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None and (not isinstance(value, Tensor) or value._array.shape != self._array.shape):
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got "
                                f"{type(value).__name__}")
            if tuple(value.shape) != tuple(self.shape):
                raise RuntimeError("assigned grad has data of a different size: expected "
                                   f"{list(self.shape)}, got {list(value.shape)}")
        self._grad = value

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward (leaves always keep it)."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self.grad_fn.retained = weakref.ref(self)  # weak: no cycle through the graph

    @property
    def retains_grad(self):
        return self.grad_fn is not None and self.grad_fn.retained is not None \
            and self.grad_fn.retained() is self

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node = self._edge()[0]
        if self.grad_fn is None:
            self._hooked_accumulator = node  # a leaf's hooks must outlive the graphs it is in
        return node.add_gradient_hook(hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` once this leaf's ``.grad`` has been accumulated."""
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node = self._edge()[0]
        self._hooked_accumulator = node
        return node.register_hook(lambda grad_inputs, grad_outputs: hook(self))

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        autograd.backward(self, gradient, retain_graph, create_graph, inputs)

    def detach(self):
        """The same values, cut from the graph (shares memory and its version, as in PyTorch)."""
        return Tensor._make(self._array, self._backend)._view_of(self)

    def detach_(self):
        self.grad_fn = None
        self._requires_grad = False
        return self

    @property
    def data(self):
        # Unlike detach(), a version counter of its own, as in PyTorch: updates through .data
        # are not tracked (the old idiom ``p.data -= lr * p.grad`` relies on that).
        return Tensor._make(self._array, self._backend)

    @data.setter
    def data(self, value):
        self._array = value._array if isinstance(value, Tensor) else value

    # ------------------------------------------------------------------ array attributes
    @property
    def shape(self):
        return Size(self._array.shape)

    def size(self, dim=None):
        return self.shape if dim is None else self._array.shape[dim]

    @property
    def ndim(self):
        return self._array.ndim

    def dim(self):
        return self._array.ndim

    def numel(self):
        return Size(self._array.shape).numel()

    def __iter__(self):
        if self._array.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._array.shape[0]))

    def __len__(self):
        if self._array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._array.shape[0]

    @property
    def dtype(self):
        return self._backend.dtype_of(self._array)

    @property
    def device(self):
        from .device import device
        return device(self._backend.device)

    @property
    def is_cuda(self):
        return self._backend.device.startswith("cuda")

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        value = self._backend.to_numpy(self._array).reshape(()).item()
        return value

    def tolist(self):
        return self._backend.to_numpy(self._array).tolist()

    def numpy(self):
        if self._requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        if self._backend.device != "cpu":
            raise TypeError(f"can't convert {self._backend.device} device type tensor to numpy. "
                            "Use Tensor.cpu() to copy the tensor to host memory first.")
        return self._backend.to_numpy(self._array)

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __repr__(self):
        from ._format import tensor_repr
        return tensor_repr(self)

    def __format__(self, spec):
        """``f"{loss:.4f}"``: a 0-d tensor formats as its number, as in PyTorch."""
        if self._array.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __float__(self):
        global _warned_scalar
        if self._requires_grad and not _warned_scalar:  # PyTorch warns once per process
            _warned_scalar = True
            warnings.warn(SCALAR_OF_GRAD, UserWarning, stacklevel=2)
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    __hash__ = object.__hash__
    # As PyTorch's: NumPy's operators defer to the tensor's, so that ``np.float64(0.1) * x`` is
    # a tensor, while NumPy functions (np.exp(t)) still take the tensor as an array.
    __array_priority__ = 1000

    # ------------------------------------------------------------------ dtype and device
    def to(self, *args, dtype=None, device=None):
        for arg in args:
            if isinstance(arg, dtypes.dtype):
                dtype = arg
            else:
                device = arg
        result = self
        if device is not None:
            from .device import to_device
            result = to_device(result, device)
        if dtype is not None and dtypes.resolve(dtype) is not result.dtype:
            result = ops.Cast(dtypes.resolve(dtype))(result)
        return result

    def type(self, dtype):
        return self.to(dtype)

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def long(self):
        return self.to(dtypes.int64)

    def bool(self):
        return self.to(dtypes.bool)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}")

    def clone(self):
        return ops.clone(self)

    def contiguous(self):
        return self

    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(self, other)  # the tensor comes first in grad_fn.next_functions, as in PyTorch

    def __sub__(self, other):
        return ops.sub(self, other)

    def __rsub__(self, other):
        return ops.sub(other, self)

    def __mul__(self, other):
        return ops.mul(self, other)

    def __rmul__(self, other):
        return ops.mul(self, other)

    def __truediv__(self, other):
        return ops.div(self, other)

    def __rtruediv__(self, other):
        return ops.div(other, self)

    def __pow__(self, other):
        return ops.pow(self, other)

    def __rpow__(self, other):
        return ops.pow(other, self)

    def __mod__(self, other):
        return ops.remainder(self, other)

    def __rmod__(self, other):
        return ops.remainder(other, self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.neg(self)

    def __getitem__(self, key):
        return ops.index(self, key)

    def __lt__(self, other):
        return ops.lt(self, other)

    def __le__(self, other):
        return ops.le(self, other)

    def __gt__(self, other):
        return ops.gt(self, other)

    def __ge__(self, other):
        return ops.ge(self, other)

    def __eq__(self, other):
        return ops.eq(self, other)

    def __ne__(self, other):
        return ops.ne(self, other)

    def __and__(self, other):
        return ops.bitwise_and(self, other)

    def __or__(self, other):
        return ops.bitwise_or(self, other)

    __rand__, __ror__ = __and__, __or__

    def __invert__(self):
        return ops.bitwise_not(self)

    # ------------------------------------------------------------------ in-place updates
    def _check_inplace(self):
        if self._inference and not state.inference:
            raise RuntimeError("Inplace update to inference tensor outside InferenceMode is not "
                               "allowed.You can make a clone to get a normal tensor before doing "
                               "inplace update.See https://github.com/pytorch/rfcs/pull/17 for more "
                               "details.")
        if state.enabled and self._requires_grad:
            if self.grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                                   "operation.")  # PyTorch's words, all of them: the corpus prints it
            raise RuntimeError("chainrule does not record in-place operations on tensors that are "
                               "part of a graph; write `y = y + x` instead of `y += x`.")

    def _inplace(self, other, update, alpha=1):
        """Apply ``update(array, alpha * other)``, which changes the array itself, and bump the version."""
        self._check_inplace()
        if isinstance(other, Tensor):
            other = other._array
            if other.dtype != self._array.dtype:
                other = self._backend.xp.astype(other, self._array.dtype)
        try:
            update(self._array, other if alpha == 1 else other * alpha)
        except ValueError as error:  # the update does not fit this tensor's shape
            source = tuple(getattr(other, "shape", ()))
            raise RuntimeError(inplace_message(tuple(self.shape), source)) from error
        self._bump_version()
        return self

    def __setitem__(self, key, value):
        """``t[key] = value``, in place; on a tensor that requires grad, only under ``no_grad``."""
        if state.enabled and self._requires_grad and self.grad_fn is None:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                               "in-place operation. Wrap the update in `with chainrule.no_grad():`.")
        if state.enabled and isinstance(value, Tensor) and value._requires_grad:
            raise RuntimeError("chainrule does not record item assignment, so no gradient would "
                               "reach the assigned value (PyTorch records it). Build the tensor "
                               "with cat, stack or where instead, or assign value.detach().")
        key = normalize_key(self, key)
        region = tuple(self._backend.getitem(self._array, key).shape)
        source = tuple(getattr(value, "shape", ()))
        while len(source) > len(region) and source[0] == 1:  # leading 1s do not count, as in PyTorch
            source = source[1:]
        message = expand_message(region, source)
        if message:
            raise RuntimeError(message)
        xp = self._backend.xp
        self._inplace(value, lambda array, v: self._backend.setitem(
            array, key, xp.reshape(v, source) if hasattr(v, "shape") else v))

    def __iadd__(self, other):
        return self._inplace(other, operator.iadd)

    def __isub__(self, other):
        return self._inplace(other, operator.isub)

    def __imul__(self, other):
        return self._inplace(other, operator.imul)

    def __itruediv__(self, other):
        return self._inplace(other, operator.itruediv)

    def add_(self, other, alpha=1):
        return self._inplace(other, operator.iadd, alpha)

    def sub_(self, other, alpha=1):
        return self._inplace(other, operator.isub, alpha)

    def mul_(self, other):
        return self._inplace(other, operator.imul)

    def zero_(self):
        return self._inplace(0, _assign)

    def sin_(self):
        return self._inplace(ops.sin(self.detach()), _assign)

    def fill_(self, value):
        return self._inplace(value, _assign)

    def copy_(self, source):
        if tuple(source.shape) != tuple(self.shape):
            source = source.expand(*self.shape)
        return self._inplace(source, _assign)

    def normal_(self, mean=0.0, std=1.0):
        return self._inplace(self._backend.random_normal(tuple(self.shape), self.dtype, mean, std),
                             _assign)

    def uniform_(self, low=0.0, high=1.0):
        return self._inplace(self._backend.random_uniform(tuple(self.shape), self.dtype, low, high),
                             _assign)

    # ------------------------------------------------------------------ method forms of the ops
    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def sin(self):
        return ops.sin(self)

    def cos(self):
        return ops.cos(self)

    def abs(self):
        return ops.abs(self)

    def sign(self):
        return ops.sign(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def tanh(self):
        return ops.tanh(self)

    def relu(self):
        return ops.relu(self)

    def clamp(self, min=None, max=None):  # noqa: A002
        return ops.clamp(self, min, max)

    def pow(self, exponent):
        return ops.pow(self, exponent)

    def add(self, other):
        return ops.add(self, other)

    def sub(self, other):
        return ops.sub(self, other)

    def mul(self, other):
        return ops.mul(self, other)

    def div(self, other):
        return ops.div(self, other)

    def neg(self):
        return ops.neg(self)

    def matmul(self, other):
        return ops.matmul(self, other)

    def dot(self, other):
        return ops.dot(self, other)

    def mm(self, other):
        return ops.mm(self, other)

    def mv(self, other):
        return ops.mv(self, other)

    def softmax(self, dim):
        return ops.softmax(self, dim)

    def log_softmax(self, dim):
        return ops.log_softmax(self, dim)

    def sum(self, dim=None, keepdim=False, **numpy_names):
        return ops.sum(self, dim, keepdim, **numpy_names)

    def mean(self, dim=None, keepdim=False, **numpy_names):
        return ops.mean(self, dim, keepdim, **numpy_names)

    def cumsum(self, dim=None, **numpy_names):
        return ops.cumsum(self, dim, **numpy_names)

    def norm(self, p="fro", dim=None, keepdim=False):
        return ops.norm(self, p, dim, keepdim)

    def argmax(self, dim=None, keepdim=False, **numpy_names):
        return ops.argmax(self, dim, keepdim, **numpy_names)

    def argmin(self, dim=None, keepdim=False, **numpy_names):
        return ops.argmin(self, dim, keepdim, **numpy_names)

    def all(self, dim=None, keepdim=False, **numpy_names):
        return ops.all(self, dim, keepdim, **numpy_names)

    def any(self, dim=None, keepdim=False, **numpy_names):
        return ops.any(self, dim, keepdim, **numpy_names)

    def equal(self, other):
        return ops.equal(self, other)

    def max(self, dim=None, keepdim=False):
        return ops.max(self, dim, keepdim)

    def maximum(self, other):
        return ops.maximum(self, other)

    def min(self, dim=None, keepdim=False):
        return ops.min(self, dim, keepdim)

    def minimum(self, other):
        return ops.minimum(self, other)

    def reshape(self, *shape):
        return ops.reshape(self, *shape)

    def view(self, *shape):
        return ops.view(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return ops.flatten(self, start_dim, end_dim)

    def permute(self, *dims):
        return ops.permute(self, *dims)

    def transpose(self, dim0, dim1):
        return ops.transpose(self, dim0, dim1)

    def t(self):
        return ops.t(self)

    @property
    def T(self):
        return ops.permute(self, *reversed(range(self.ndim)))

    @property
    def mT(self):
        return ops.matrix_transpose(self)

    def unsqueeze(self, dim):
        return ops.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return ops.squeeze(self, dim)

    def expand(self, *shape):
        return ops.expand(self, *shape)

    def expand_as(self, other):
        return ops.expand(self, *other.shape)

    def where(self, condition, other):
        return ops.where(condition, self, other)


def _assign(array, value):
    array[...] = value


from . import ops  # noqa: E402  (ops build on Tensor)
from . import autograd  # noqa: E402  (so does autograd)
from .ops.arguments import expand_message, inplace_message, normalize_key  # noqa: E402
