"""``chainrule.autograd.Function``: an op written by its user, as PyTorch's ``torch.autograd.Function``.

The user's class states the forward pass and its backward pass in tensor ops::

    class Cube(chainrule.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x ** 2

    y = Cube.apply(x)   # y.grad_fn is a CubeBackward node; ctx is that node

``forward`` runs unrecorded; ``apply`` then links its output to the inputs through one node,
whose ``apply`` (called by the engine) calls the user's ``backward`` and checks what it returns.
"""
import warnings

from . import engine
from .function import (FREED, SAVED_TENSORS_HOOKS, _modified_message, packed,
                       saved_tensors_hooks_here, unpacked)
from .grad_mode import no_grad, state
from .stand_in import NotCovered
from .tensor import Tensor


class FunctionCtx:
    """What ``forward`` and ``backward`` share: ``ctx`` in both (the graph node itself)."""

    to_save = ()
    saved_versions = ()
    packed = None  # what saved_tensors_hooks' pack made of to_save
    non_differentiable = ()
    materialize_grads = True
    needs_input_grad = ()

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is of type {type(t).__name__}")
        self.to_save = tensors

    @property
    def saved_tensors(self):
        if self.to_save is None:
            raise RuntimeError(FREED)
        if self.packed is not None:  # saved through saved_tensors_hooks
            unpack = self.unpack_hook
            return tuple(None if p is None else unpacked(unpack, p) for p in self.packed)
        for tensor, version in zip(self.to_save, self.saved_versions):
            if tensor is not None and tensor._version != version:
                raise RuntimeError(_modified_message(tensor, version, self))
        return tuple(self.to_save)

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable = tensors

    def mark_dirty(self, *tensors):
        # A Function that changes its inputs in place: chainrule records no in-place updates
        # of tensors that are part of a graph.
        raise NotCovered("torch.autograd.function.FunctionCtx.mark_dirty")

    def set_materialize_grads(self, value):
        """With False, ``backward`` gets None (not zeros) for outputs that received no gradient."""
        self.materialize_grads = bool(value)


class BackwardFunction(FunctionCtx, engine.Node):
    """The node of one ``apply``: ``<name of the Function>Backward``."""

    function = None  # the user's Function subclass
    output_index = 0
    output_shapes = ()

    def name(self):
        return type(self).__name__

    def __repr__(self):  # PyTorch's, with chainrule's module for torch.autograd.function
        return f"<chainrule.autograd.function.{self.name()} object at {id(self):#x}>"

    def apply(self, grad):
        grads = [None] * len(self.output_shapes)
        if isinstance(grad, _OutputGrads):  # several differentiable outputs: one slot each
            for i, g in grad.by_output.items():
                grads[i] = g
        else:
            grads[self.output_index] = grad
        grad = next(g for g in grads if g is not None)
        if self.materialize_grads:
            from .creation import zeros
            grads = [g if g is not None else zeros(*shape, dtype=dtype, device=grad.device)
                     for g, (shape, dtype) in zip(grads, self.output_shapes)]
        result = self.function.backward(self, *grads)
        return self._checked(result if isinstance(result, tuple) else (result,))

    def _checked(self, grads):
        """PyTorch's checks of what ``backward`` returned: one gradient per input of forward,
        None for a non-tensor input, and of a shape that sums to the input's."""
        expected = len(self.input_shapes)
        if len(grads) < expected or any(g is not None for g in grads[expected:]):
            raise RuntimeError(f"function {self.name()} returned an incorrect number of gradients "
                               f"(expected {expected}, got {len(grads)})")
        checked = []
        for i, (g, shape, dtype) in enumerate(zip(grads, self.input_shapes, self.input_dtypes)):
            if g is None or not self.needs_input_grad[i]:
                if g is not None and shape is None:
                    raise RuntimeError(f"function {self.name()} returned a gradient different than "
                                       f"None at position {i + 1}, but the corresponding forward "
                                       "input was not a Variable")
                checked.append(None)
                continue
            if tuple(g.shape) != shape:
                if not _expandable(shape, tuple(g.shape)):
                    raise RuntimeError(f"Function {self.name()} returned an invalid gradient at "
                                       f"index {i} - got {list(g.shape)} but expected shape "
                                       f"compatible with {list(shape)}")
                from .ops import sum_to
                g = sum_to(g, shape)
            if g.dtype is not dtype:  # cast to the input's dtype, as PyTorch does
                g = g.to(dtype)
            checked.append(g)
        return [g for g, shape in zip(checked, self.input_shapes) if shape is not None]

    def release(self):
        if self.to_save:  # a node that saved nothing can run again, as in PyTorch
            self.to_save = self.packed = None


class _OutputSlot(engine.Node):
    """The ``grad_fn`` of output ``index`` of a Function with several differentiable outputs:
    chainrule's nodes have one output each, so each output has a slot that hands its gradient,
    labelled, to the Function's node, where the labelled gradients are gathered."""

    def __init__(self, function_node, index):
        self.function_node, self.index = function_node, index
        self.next_functions = ((function_node, 0),)

    def name(self):
        return self.function_node.name()

    def __repr__(self):
        return repr(self.function_node)

    def apply(self, grad):
        return (_OutputGrads({self.index: grad}),)


class _OutputGrads:
    """Gradients of some outputs of one node, by output; ``+`` gathers them (the engine adds up
    what reaches a node)."""
    _owned = False

    def __init__(self, by_output):
        self.by_output = by_output

    def __add__(self, other):
        merged = dict(self.by_output)
        for i, g in other.by_output.items():
            merged[i] = merged[i] + g if i in merged else g
        return _OutputGrads(merged)


def _expandable(shape, target):
    """Whether ``shape`` broadcasts to ``target`` (a gradient of that shape sums back to it)."""
    if len(shape) > len(target):
        return False
    return all(s == t or s == 1 for s, t in zip(reversed(shape), reversed(target)))


class _FunctionMeta(type):
    """Gives each Function subclass its own node class, named as PyTorch names it."""

    def __init__(cls, name, bases, namespace):
        super().__init__(name, bases, namespace)
        cls._backward_cls = type(name + "Backward", (BackwardFunction,), {"function": cls})


class Function(metaclass=_FunctionMeta):
    """Subclass it with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``; call
    ``apply(*args)``. (Or ``forward(*args)`` without ctx and ``setup_context(ctx, inputs,
    output)``, PyTorch's other style.)"""

    def __init__(self, *args, **kwargs):
        warnings.warn(f"{type(self)} should not be instantiated. Methods on autograd functions are "
                      "all static, so you should invoke them on the class itself. Instantiating an "
                      "autograd function will raise an error in a future version of PyTorch.",
                      DeprecationWarning, stacklevel=2)

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = cls._backward_cls()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            if cls.setup_context is Function.setup_context:
                outputs = cls.forward(ctx, *args, **kwargs)
            else:
                outputs = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, outputs)
        single = not isinstance(outputs, tuple)
        outputs = (outputs,) if single else tuple(outputs)
        # An input returned as it is comes back as a new tensor on the same memory, as in PyTorch.
        outputs = tuple(Tensor._make(o._array, o._backend)._view_of(o)
                        if isinstance(o, Tensor) and any(o is a for a in args) else o
                        for o in outputs)
        if state.enabled and any(ctx.needs_input_grad):
            _record(ctx, args, outputs)
        return outputs[0] if single else outputs


def _record(ctx, args, outputs):
    """Link the differentiable output to the inputs through ``ctx``, and keep what it saved."""
    excluded = {id(t) for t in ctx.non_differentiable}
    differentiable = [i for i, o in enumerate(outputs) if isinstance(o, Tensor)
                      and o.dtype.is_floating_point and id(o) not in excluded]
    # As in PyTorch, the graph has an edge for each tensor input only.
    ctx.next_functions = tuple(a._edge() for a in args if isinstance(a, Tensor))
    ctx.input_shapes = [tuple(a.shape) if isinstance(a, Tensor) else None for a in args]
    ctx.input_dtypes = [a.dtype if isinstance(a, Tensor) else None for a in args]
    ctx.output_shapes = [(tuple(o.shape), o.dtype) if isinstance(o, Tensor) else ((), None)
                         for o in outputs]
    for i in differentiable:
        ctx.output_index = i
        outputs[i]._requires_grad = True
        outputs[i].grad_fn = ctx if len(differentiable) == 1 else _OutputSlot(ctx, i)
    ctx.saved_versions = [t._version if t is not None else 0 for t in ctx.to_save]
    hooks = saved_tensors_hooks_here() if SAVED_TENSORS_HOOKS else None
    if hooks is not None and any(t is not None for t in ctx.to_save):
        pack, ctx.unpack_hook = hooks
        ctx.packed = [None if t is None else packed(pack, t) for t in ctx.to_save]
        ctx.to_save = [None] * len(ctx.to_save)  # kept by the hook only, as in PyTorch
