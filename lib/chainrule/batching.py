"""vmap's machinery: batched tensors, and the dispatch that sends an op to its batching rule.

Under ``vmap(f)``, ``f`` sees one sample; chainrule holds the whole batch. A ``BatchedTensor``
is that pair: its shape is one sample's (the *logical* shape, what ``f`` sees), and it holds the
*physical* tensor, the whole batch, with the batch axis at ``batch_dim``. Nothing loops over the
samples: every op meets a batched input in ``Function.__call__``, which hands the physical
tensors to the op's ``batch_rule``. The rule runs the op once on the whole batch with ordinary
tensor ops and says where the batch axis of its result is.

Each running ``vmap`` has a level, 1 for the outermost: a ``vmap`` inside a ``vmap`` wraps
tensors that are already batched, and an op unwraps only the innermost level; the rule's own ops
then meet the next level's batched tensors and dispatch again. ``batch_dim`` is ``None`` for a
tensor that belongs to a level without being batched in it (a parameter that ``grad`` inside
``vmap`` differentiates, for instance).

The autograd graph lives at whichever level asked for a gradient. ``grad`` outside ``vmap``
differentiates physical tensors: the rules' ops record themselves as usual. ``grad`` inside
``vmap`` differentiates batched tensors: the op is recorded on them (``Function.record``, with
their logical shapes), so its backward pass runs on batched tensors and goes through the
batching rules in turn. That is how ``vmap(grad(f))`` gives one gradient per sample.
"""
from .grad_mode import state
from .tensor import Tensor

#: the running vmaps, outermost first: each one's batch size and randomness
levels = []

CONTROL_FLOW = ("vmap: It looks like you're attempting to use a Tensor in some data-dependent "
                "control flow. We don't support that yet, please file an issue at "
                "https://github.com/pytorch/pytorch/issues .")
ITEM = ("vmap: It looks like you're calling .item() on a Tensor. We don't support vmap over "
        "calling .item() on a Tensor, please try to rewrite what you're doing with other "
        "operations. If error is occurring somewhere inside PyTorch internals, please file a bug "
        "report.")


class Level:
    def __init__(self, number, batch_size, randomness):
        self.number, self.batch_size, self.randomness = number, batch_size, randomness


class LogicalArray:
    """What a batched tensor shows as its array: one sample's shape and the dtype, no values.
    Code that reads values outside a batching rule fails here instead of computing on a batch
    it takes for one sample."""
    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype

    @property
    def ndim(self):
        return len(self.shape)


class BatchedTensor(Tensor):
    """A batch of tensors seen as one: ``physical`` holds the batch on axis ``batch_dim``."""

    @classmethod
    def wrap(cls, physical, batch_dim, level):
        t = object.__new__(cls)
        t.physical, t.batch_dim, t.level = physical, batch_dim, level
        t._backend = physical._backend
        shape = tuple(physical._array.shape)
        if batch_dim is not None:
            shape = shape[:batch_dim] + shape[batch_dim + 1:]
        t._logical = LogicalArray(shape, physical._array.dtype)
        return t

    @property
    def _array(self):
        return self._logical

    def detach(self):
        return BatchedTensor.wrap(self.physical.detach(), self.batch_dim, self.level)

    @property
    def data(self):
        return self.detach()

    # Values a Python program would read: the one sample it thinks it has does not exist.
    def __bool__(self):
        if self.batch_dim is None:
            return bool(self.physical)
        raise RuntimeError(CONTROL_FLOW)

    def item(self):
        if self.batch_dim is None:
            return self.physical.item()
        raise RuntimeError(ITEM)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def tolist(self):
        raise RuntimeError(ITEM)

    def numpy(self):
        raise RuntimeError(ITEM)

    def __repr__(self):
        return f"BatchedTensor(lvl={self.level}, bdim={self.batch_dim}, value=\n{self.physical!r}\n)"


def batch_front(tensor, batch_dim):
    """The physical tensor with its batch axis first (the axis rules are written for)."""
    if batch_dim is None or batch_dim == 0:
        return tensor
    order = list(range(tensor.ndim))
    order.insert(0, order.pop(batch_dim))
    return tensor.permute(*order)


def logical_ndim(value, batch_dim):
    if not isinstance(value, Tensor):
        return 0
    return value.ndim - (batch_dim is not None)


def aligned(args, batch_dims):
    """Each batched argument with its batch axis first, then as many 1s as it lacks of the
    highest sample rank: broadcasting then pairs sample with sample and leaves the rest to the
    usual rules (an unbatched argument broadcasts over the batch)."""
    rank = max(logical_ndim(a, d) for a, d in zip(args, batch_dims))
    lined_up = []
    for a, d in zip(args, batch_dims):
        if d is not None:
            a = batch_front(a, d)
            missing = rank - (a.ndim - 1)
            if missing:
                a = a.reshape(a.shape[0], *(1,) * missing, *a.shape[1:])
        lined_up.append(a)
    return lined_up


def dispatch(op, args):
    """Run ``op`` on arguments of which some are batched (``Function.__call__`` sends them here)."""
    level = max(a.level for a in args if isinstance(a, BatchedTensor))
    physical, batch_dims = [], []
    differentiable = False
    for a in args:
        if isinstance(a, BatchedTensor) and a.level == level:
            physical.append(a.physical)
            batch_dims.append(a.batch_dim)
            differentiable = differentiable or a._requires_grad
        else:  # a plain tensor, or one batched by an outer vmap: a constant for this level
            physical.append(a)
            batch_dims.append(None)
    if all(d is None for d in batch_dims):  # nothing batched at this level: the op as it is
        out, out_dim = op.fresh()(*physical), None
    else:
        out, out_dim = op.batch_rule(physical, batch_dims)
    result = BatchedTensor.wrap(out, out_dim, level)
    op.backend = result._backend
    if differentiable and state.enabled and out._array.dtype in out._backend.float_natives:
        op.record(args, result)  # a grad inside this vmap: the graph of the batched values
        if op.saves_output:  # the whole batch, not the array of one sample record() keeps
            op._output_array, op._output_level = out, (out_dim, level)
    return result


def saved_output(op):
    """The output a node saved, batched again (the node was recorded on batched values)."""
    return BatchedTensor.wrap(op._output_array, *op._output_level)


RANDOM = ("vmap: called random operation while in randomness error mode. Please either use the "
          "'same' or 'different' randomness flags on vmap or perform the randomness operation out "
          "of vmap")


def random(draw, shape):
    """A random op under vmap: ``draw(shape)`` once for all samples ('same'), or once for each
    sample of the innermost vmap ('different'), as vmap's ``randomness`` says."""
    if any(level.randomness == "error" for level in levels):
        raise RuntimeError(RANDOM)
    level = levels[-1]
    if level.randomness == "same":
        return draw(shape)
    return BatchedTensor.wrap(draw((level.batch_size,) + tuple(shape)), 0, level.number)


def is_batched(*values):
    return any(isinstance(v, BatchedTensor) for v in values)


def no_rule(op):
    name = type(op).__name__
    return RuntimeError(
        f"vmap: chainrule has no batching rule for {name} ({op.name()}), so it cannot run "
        f"under vmap (nor jacrev, jacfwd or hessian, which use vmap). Give {name} a "
        "batch_rule next to its backward (see chainrule/batching.py), or compute it outside vmap.")


