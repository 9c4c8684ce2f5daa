"""``Function``: the base of every op. It runs the forward pass on arrays and records the graph.

An op subclass states two things side by side:

* ``forward(self, xp, *arrays)``: the value, computed on arrays through the namespace ``xp``;
* ``backward(self, grad)``: the gradient of each input, computed with chainrule's tensor ops, so
  that the backward pass can itself be recorded (``create_graph=True`` gives second derivatives).

and a third, for ``vmap``: ``batch_rule(self, args, batch_dims)``, the op run once on a whole
batch (see ``chainrule.batching``); most ops share their family's.

Inputs may be tensors or Python numbers (constants). ``backward`` returns one gradient per
input, ``None`` where ``self.needs_input_grad[i]`` is false.
"""
import re
import threading
import weakref

from . import engine
from .anomaly_mode import anomaly, forward_stack
from .grad_mode import no_grad, state

FREED = ("Trying to backward through the graph a second time (or directly access saved tensors "
         "after they have already been freed). Saved intermediate values of the graph are freed "
         "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
         "backward through the graph a second time or if you need to access saved tensors after "
         "calling backward.")


#: the (thread, pack, unpack) of each open ``autograd.graph.saved_tensors_hooks`` block, the
#: innermost last; a plain list (not thread-local), so that the common case, none, costs nothing
SAVED_TENSORS_HOOKS = []


def saved_tensors_hooks_here():
    """The (pack, unpack) of this thread's innermost block, or None: the hooks are per thread."""
    here = threading.get_ident()
    for thread, pack, unpack in reversed(SAVED_TENSORS_HOOKS):
        if thread == here:
            return pack, unpack
    return None
NO_EDGE = (None, 0)   # next_functions' entry for an input that needs no gradient
NOTHING_SAVED = ()


INFERENCE_SAVED = (
    "Inference tensors cannot be saved for backward. Please do not use Tensors created in "
    "inference mode in computation tracked by autograd. To work around this, you can make a clone "
    "to get a normal tensor and use it in autograd, or use `torch.no_grad()` instead of "
    "`torch.inference_mode()`.")


class Function(engine.Node):
    #: which inputs the backward pass reads (their values, not only their shapes)
    saves_inputs = ()
    #: whether the backward pass reads the output (exp, tanh, sigmoid...)
    saves_output = False
    #: whether the output may share input 0's memory (reshape, transpose, slicing): it then
    #: shares its version counter, so an in-place update through either is detected
    view = False
    #: PyTorch's names for the inputs, so that ``grad_fn._saved_self`` reads what was saved
    saved_names = ("self", "other")
    packed = None  # what saved_tensors_hooks' pack returned, by input index or "output"

    def __call__(self, *args):
        if batching.levels and batching.is_batched(*args):  # under vmap: the op's batch_rule
            return batching.dispatch(self, args)
        backend = None
        requires_grad = False
        arrays = []
        for arg in args:
            if isinstance(arg, Tensor):
                if arg._backend is not backend:
                    if backend is not None:
                        raise RuntimeError(
                            "Expected all tensors to be on the same device, but found at least two "
                            f"devices, {backend.device} and {arg._backend.device}! Move them with "
                            ".to(device) first.")
                    backend = arg._backend
                arrays.append(arg._array)
                if arg._requires_grad:
                    requires_grad = True
            else:
                arrays.append(arg)
        self.backend = backend
        try:
            array = self.forward(backend.xp, *arrays)
        except ValueError as error:
            raise RuntimeError(self.explain(args, error)) from error
        out = Tensor._make(backend.wrap(array), backend)
        if self.view and backend.shares_memory(out._array, arrays[0]):
            out._view_of(args[0])
        # Integer results (a cast with .long()) are not differentiable: they end the graph.
        if requires_grad and state.enabled and out._array.dtype in backend.float_natives:
            self.record(args, out)
        return out

    def explain(self, args, error):
        """What to tell the user when the array library rejected the inputs (their shapes)."""
        shapes = [list(a.shape) for a in args if isinstance(a, Tensor)]
        return f"{self.name().removesuffix('Backward0')}: inputs of shapes {shapes} rejected: {error}"

    def record(self, args, out):
        """Link the output to its inputs; keep what the backward pass will read."""
        edges, needs, shapes, dtypes, inputs = [], [], [], [], []
        for a in args:
            if isinstance(a, Tensor):
                array = a._array
                edges.append((a.grad_fn, 0) if a.grad_fn is not None else a._edge())
                needs.append(a._requires_grad)
                shapes.append(array.shape)
                dtypes.append(array.dtype)
                inputs.append(None)  # unless saved below: unsaved tensors may be freed
            else:
                edges.append(NO_EDGE)
                needs.append(False)
                shapes.append(())
                dtypes.append(None)
                inputs.append(a)  # a constant operand, kept
        self.next_functions = tuple(edges)
        self.needs_input_grad = needs
        self.shapes = shapes
        self.dtypes = dtypes
        self.out_shape = out._array.shape
        # Keep what the backward pass reads and nothing more.
        to_save = self.inputs_to_save(needs)
        self.inputs = inputs
        self.saved = saved = []
        for i in to_save:
            if isinstance(args[i], Tensor):
                if args[i]._inference:
                    raise RuntimeError(INFERENCE_SAVED)
                inputs[i] = args[i]
                saved.append(args[i])
        self.saved_versions = [t._version for t in saved] if saved else NOTHING_SAVED
        if self.saves_output and not self.output_is_saved(needs):
            self.saves_output = False
        # As in PyTorch, what a node saved is freed after backward, a constant operand (the 2 of
        # x * 2) included: only a node that saved nothing (x + 2) can run a second time.
        self.saves_values = bool(to_save) or self.saves_output
        if self.saves_output:
            # The output's array, not the output: a node owning the tensor that owns it would
            # be a reference cycle, left for the garbage collector instead of freed at once.
            self._output_array = out._array
            self._output_ref = weakref.ref(out)
        out._requires_grad = True
        out.grad_fn = self
        if anomaly.enabled:
            self.forward_stack = forward_stack()
        if SAVED_TENSORS_HOOKS and (saved or self.saves_output):
            hooks = saved_tensors_hooks_here()
            if hooks is not None:
                self.pack_saved(out, *hooks)

    def pack_saved(self, out, pack, unpack):
        """Hand what this node saved to ``pack`` and keep only what it returns, until backward
        asks ``unpack`` for it (``autograd.graph.saved_tensors_hooks``). PyTorch's order: the
        input read by the first input's gradient first (``other`` before ``self``), the output
        last; the version checks are then the hooks' business, as in PyTorch."""
        self.unpack_hook = unpack
        self.packed = {}
        for i in reversed(range(len(self.inputs))):
            if isinstance(self.inputs[i], Tensor):
                self.packed[i] = packed(pack, self.inputs[i])
                self.inputs[i] = None
        if self.saves_output:
            self.packed["output"] = packed(pack, out, origin=self)
        self.saved, self.saved_versions = [], NOTHING_SAVED

    def unpacked(self, key):
        return unpacked(self.unpack_hook, self.packed[key])

    @property
    def output(self):
        """The saved output, attached to this node again, so a recorded backward pass sees it."""
        if self.packed is not None:
            return self.unpacked_output
        array = self._output_array
        out = batching.saved_output(self) if isinstance(array, Tensor) else Tensor._make(array, self.backend)
        out._requires_grad = True
        out.grad_fn = self
        return out

    def saved_value(self, key):
        """What ``grad_fn._saved_<key>`` reads: what backward reads, under PyTorch's names (None
        for an input this graph did not need)."""
        name = "_saved_" + key
        if "inputs" not in self.__dict__:
            raise AttributeError(name)
        if key == "result" and self.saves_output:
            if self._output_array is None:
                raise RuntimeError(FREED)
            return self.unpacked("output") if self.packed is not None else self.output
        names = self.saved_names[:len(self.inputs)]
        if key not in names or names.index(key) not in self.inputs_to_save([True] * len(names)):
            raise AttributeError(f"'{self.name()}' object has no attribute '{name}'")
        if self.saved is None:
            raise RuntimeError(FREED)
        if self.packed is not None and names.index(key) in self.packed:
            return self.unpacked(names.index(key))
        return self.inputs[names.index(key)]

    def inputs_to_save(self, needs_input_grad):
        """The inputs whose values this backward pass will read (version-checked at backward)."""
        return self.saves_inputs

    def output_is_saved(self, needs_input_grad):
        """Whether this backward pass reads the output (for an op with ``saves_output``)."""
        return True

    def on_arrays(self, grad):
        """Whether this backward pass may compute on arrays instead of through tensor ops, for
        ops that have such a fast path: in a small network's training step the ops' per-call
        costs outweigh the arithmetic. Only where the ops would record nothing and need no rule:
        no ``create_graph``, no vmap, no batch of seeds (``grad`` has the output's shape), no
        saved_tensors_hooks; the general path handles everything else."""
        return (not state.enabled and not batching.levels and self.packed is None
                and grad._backend is self.backend and grad._array.shape == self.out_shape)

    def tensor(self, array):
        """An array computed by a fast path (see ``on_arrays``), as a tensor on this node's device."""
        return Tensor._make(self.backend.wrap(array), self.backend)

    def forward(self, xp, *arrays):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def batch_rule(self, args, batch_dims):
        """vmap's rule: the op run once on the whole batch. ``args`` are the physical tensors,
        ``batch_dims`` where each holds its batch (None: not batched). Returns the result and
        where its batch axis is. Families share one (``Elementwise``, ``Pointwise``...)."""
        raise batching.no_rule(self)

    def fresh(self):
        """This op, not yet run, to run again on other inputs (a batching rule's whole batch)."""
        op = object.__new__(type(self))
        op.__dict__.update(self.__dict__)
        return op

    def apply(self, grad):
        self.check_saved()
        if self.packed is None:
            return self.backward(grad)
        for key in self.packed:  # each saved tensor unpacked once per backward pass
            if key == "output":
                self.unpacked_output = self.unpacked(key)
            else:
                self.inputs[key] = self.unpacked(key)
        try:
            return self.backward(grad)
        finally:  # the unpacked tensors are not kept: a hook may have made them for this pass
            self.unpacked_output = None
            self.inputs = [None if k in self.packed else a for k, a in enumerate(self.inputs)]

    def check_saved(self):
        """Raise if what the backward pass reads was freed, or changed in place since."""
        if self.saved is None:
            raise RuntimeError(FREED)
        for tensor, version in zip(self.saved, self.saved_versions):
            if tensor._version != version:
                raise RuntimeError(_modified_message(tensor, version, self))
        if self.saves_output:
            out = self._output_ref()
            if out is not None and out._version != 0:
                raise RuntimeError(_modified_message(out, 0, self))

    def release(self):
        self.packed = None
        if self.saves_values:
            self.inputs = [None if isinstance(a, Tensor) else a for a in self.inputs]
            self.saved = None
            self._output_array = None

    def lead(self, grad):
        """How many batch axes lead the gradient (``is_grads_batched``: one per seed axis)."""
        return grad._array.ndim - len(self.out_shape)


def packed(pack, tensor, origin=None):
    """What ``saved_tensors_hooks``' pack makes of a saved tensor, and where the tensor was in
    the graph (its node, or its leaf's ``AccumulateGrad``)."""
    with no_grad():  # what a hook computes is not part of the graph
        return pack(tensor), origin or tensor._edge()[0]


def unpacked(unpack, packed_value):
    """What ``unpack`` returns, in the saved tensor's place in the graph (as PyTorch puts it
    back: a hook that kept ``t.detach()`` still gives a tensor whose gradient flows on)."""
    value, origin = packed_value
    tensor = unpack(value)
    if origin is None or not isinstance(tensor, Tensor) or tensor._requires_grad:
        return tensor
    placed = Tensor._make(tensor._array, tensor._backend)
    placed._requires_grad = True
    if isinstance(origin, engine.AccumulateGrad):  # a leaf's: gradients reach that leaf
        placed._accumulator = weakref.ref(origin)
    else:
        placed.grad_fn = origin
    return placed


# ``grad_fn._saved_self``... as properties, not a ``__getattr__``: on Python 3.11 a class with a
# ``__getattr__`` loses the interpreter's fast attribute access, and nodes are on the hot path.
for _key in ("self", "other", "exponent", "result", "condition", "target"):
    setattr(Function, "_saved_" + _key, property(lambda node, key=_key: node.saved_value(key)))


def _modified_message(tensor, version, node):
    """PyTorch's words: the tensor's legacy type name and size, and the node that made it."""
    kind = {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}[tensor.dtype.name]
    device = "cuda." if tensor.is_cuda else ""
    made_by = "" if tensor.grad_fn is None else \
        f", which is output 0 of {re.sub(r'Backward[0-9]*$', '', tensor.grad_fn.name())},"
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: [chainrule.{device}{kind}Tensor {list(tensor.shape)}]{made_by} is at "
            f"version {tensor._version}; expected version {version} instead. Hint: enable anomaly "
            "detection to find the operation that failed to compute its gradient, with "
            "torch.autograd.set_detect_anomaly(True, check_nan=False).")


from .tensor import Tensor  # noqa: E402  (tensor.py imports this module's Function first)
from . import batching  # noqa: E402  (batched tensors are tensors)
