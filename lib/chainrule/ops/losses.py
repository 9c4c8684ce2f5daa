"""Losses and the other ops of ``nn.functional``."""
from .. import dtypes
from ..batching import batch_front, is_batched, levels
from ..function import Function
from ..tensor import Tensor
from .arguments import as_floating, binary_operands, normalize_dims
from .elementwise import Elementwise, exp, sigmoid
from .shape import _all_batched, _reshape


class MseLoss(Elementwise):
    """``mean((input - target) ** 2)`` (or its sum, or with reduction 'none' each squared
    difference) as one node, PyTorch's ``MseLossBackward0``.

    One node instead of four (sub, pow, mean and their backward) matters in a training step,
    where the loss is small and the time goes to per-op overhead.
    """
    saves_inputs = (0, 1)
    saved_names = ("self", "target")

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, xp, input, target):  # noqa: A002 - PyTorch's name
        squared = input - target
        squared *= squared  # in place: the difference is a fresh array
        if self.reduction == "none":
            return squared
        total = xp.sum(squared)
        # The sum over the count is the mean's own arithmetic, without NumPy's mean's Python layer.
        return total / squared.size if self.reduction == "mean" else total

    def local_grads(self, grad):
        input, target = self.inputs
        if self.on_arrays(grad) and self.shapes[0] == self.shapes[1] and \
                self.dtypes[0] == self.dtypes[1] == grad._array.dtype:
            return self.local_grads_on_arrays(grad._array, input._array, target._array)
        difference = input - target
        scale = 2.0 / difference.numel() if self.reduction == "mean" else 2.0
        lead = self.lead(grad)
        seed = grad * scale
        if lead and self.reduction != "none":  # one seed per leading axis: line them up
            seed = _reshape(seed, tuple(grad._array.shape[:lead]) + (1,) * difference.ndim)
        grad_input = difference * seed
        return (grad_input if self.needs_input_grad[0] else None,
                -grad_input if self.needs_input_grad[1] else None)

    def local_grads_on_arrays(self, grad, input, target):  # noqa: A002
        """``local_grads`` for an input and a target of one shape and dtype, with nothing
        recorded: the same values, in one temporary instead of three ops' results."""
        grad_input = input - target
        grad_input *= grad * (2.0 / grad_input.size if self.reduction == "mean" else 2.0)
        return (self.tensor(grad_input) if self.needs_input_grad[0] else None,
                self.tensor(-grad_input) if self.needs_input_grad[1] else None)

    def batch_rule(self, args, batch_dims):
        """Each sample's squared differences, then each sample's own mean or sum."""
        squared, _ = MseLoss("none").batch_rule(args, batch_dims)
        return _reduce_each_sample(squared, self.reduction), 0


def _reduce_each_sample(losses, reduction):
    """A batch of per-element losses (batch axis first) reduced sample by sample."""
    if reduction == "none":
        return losses
    rows = losses.reshape(losses.shape[0], -1)
    return rows.mean(dim=1) if reduction == "mean" else rows.sum(dim=1)


def mse_loss(input, target, reduction="mean"):  # noqa: A002
    return MseLoss(reduction)(*binary_operands(input, target))


class LogSoftmax(Function):
    """``a - log(sum(exp(a)))`` along ``dim``, computed after subtracting the maximum (no overflow)."""
    saves_output = True

    def __init__(self, dim):
        self.dim = dim  # negative: it counts from the end, past any leading seed axes

    def forward(self, xp, a):
        shifted = a - xp.max(a, axis=self.dim, keepdims=True)
        return shifted - xp.log(xp.sum(xp.exp(shifted), axis=self.dim, keepdims=True))

    def backward(self, grad):
        return (grad - exp(self.output) * grad.sum(dim=self.dim, keepdim=True),)

    def batch_rule(self, args, batch_dims):
        """``dim`` counts from the end: with the batch axis first it names the same axis."""
        return self.fresh()(batch_front(args[0], batch_dims[0])), 0


def log_softmax(a, dim):
    return LogSoftmax(_from_end(dim, a))(as_floating(a))


def _from_end(dim, a):
    (d,) = normalize_dims(dim, a.ndim)
    return d - a.ndim


class Softmax(LogSoftmax):
    def forward(self, xp, a):
        exponentials = xp.exp(a - xp.max(a, axis=self.dim, keepdims=True))
        return exponentials / xp.sum(exponentials, axis=self.dim, keepdims=True)

    def backward(self, grad):
        out = self.output
        return (out * (grad - (grad * out).sum(dim=self.dim, keepdim=True)),)


def softmax(a, dim):
    return Softmax(_from_end(dim, a))(as_floating(a))


class NllLoss(Function):
    """``-input[i, target[i]]`` for each row, averaged (or summed, or kept): the class
    log-probabilities of a batch picked by the class indices. ``target`` is a constant."""

    def __init__(self, target, reduction):
        self.target, self.reduction = target, reduction

    def picking(self, xp, classes, dtype):
        """Row i is one-hot at target[i]: picking by a product, which every namespace has."""
        return xp.astype(xp.arange(classes)[None, :] == self.target[:, None], dtype)

    def forward(self, xp, log_probs):
        picked = -xp.sum(log_probs * self.picking(xp, log_probs.shape[1], log_probs.dtype), axis=1)
        if self.reduction == "none":
            return picked
        return xp.mean(picked) if self.reduction == "mean" else xp.sum(picked)

    def backward(self, grad):
        rows, classes = self.shapes[0]
        backend = grad._backend
        one_hot = Tensor._make(self.picking(backend.xp, classes, grad._array.dtype), backend)
        scale = -1.0 / rows if self.reduction == "mean" else -1.0
        seed = grad.unsqueeze(-1) if self.reduction == "none" else grad.unsqueeze(-1).unsqueeze(-1)
        return (one_hot * (seed * scale),)


def nll_loss(input, target, reduction="mean"):  # noqa: A002
    _check_reduction(reduction)
    if levels and is_batched(input, target):
        return _nll_loss_batched(input, target, reduction)
    if input.ndim != 2:
        from ..stand_in import NotCovered
        raise NotCovered(f"nll_loss on a {input.ndim}-D input (chainrule has (batch, classes))")
    if target.dtype is not dtypes.int64:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_c_name(target.dtype)}")
    if target.ndim != 1 or target.shape[0] != input.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0] if target.ndim else 0}).")
    classes = input.shape[1]
    values = target.tolist()
    for value in values:
        if not 0 <= value < classes:
            raise IndexError(f"Target {value} is out of bounds.")
    return NllLoss(target._array, reduction)(input)


def _nll_loss_batched(log_probs, target, reduction):
    """nll_loss under vmap, where the targets may be batched too: each row's class picked by a
    one-hot mask, from ops that all have batching rules."""
    from ..creation import arange
    classes = arange(log_probs.shape[-1], device=log_probs.device)
    one_hot = (classes == target.unsqueeze(-1)).to(log_probs.dtype)
    picked = -(log_probs * one_hot).sum(dim=-1)
    return picked if reduction == "none" else picked.mean() if reduction == "mean" else picked.sum()


def cross_entropy(input, target, reduction="mean"):  # noqa: A002
    """``nll_loss(log_softmax(input, 1), target)`` with class indices as targets, as in PyTorch."""
    if input.ndim == 1:  # one sample: (classes,) and a 0-d target
        return cross_entropy(input.unsqueeze(0), target.reshape(1), reduction).reshape(())
    return nll_loss(log_softmax(input, 1), target, reduction)


class BinaryCrossEntropyWithLogits(Function):
    """``-(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))``, computed from the logits x without
    overflow as ``max(x, 0) - x t + log(1 + exp(-|x|))``."""
    saves_inputs = (0, 1)
    saved_names = ("self", "target")

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, xp, x, t):
        losses = xp.maximum(x, xp.zeros_like(x)) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        if self.reduction == "none":
            return losses
        return xp.mean(losses) if self.reduction == "mean" else xp.sum(losses)

    def backward(self, grad):
        x, t = self.inputs
        scale = 1.0 / x.numel() if self.reduction == "mean" else 1.0
        seed = grad * scale
        return ((sigmoid(x) - t) * seed if self.needs_input_grad[0] else None,
                -x * seed if self.needs_input_grad[1] else None)

    def batch_rule(self, args, batch_dims):
        x, t = _all_batched(args, batch_dims)  # same shapes: a target without batch is copied
        return _reduce_each_sample(BinaryCrossEntropyWithLogits("none")(x, t), self.reduction), 0


def binary_cross_entropy_with_logits(input, target, reduction="mean"):  # noqa: A002
    _check_reduction(reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape!r}) must be the same as input size "
                         f"({input.shape!r})")
    input, target = binary_operands(input, target, floating=True)
    return BinaryCrossEntropyWithLogits(reduction)(input, target)


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _c_name(dtype):
    return {"float32": "Float", "float64": "Double", "int64": "Long", "bool": "Bool"}[dtype.name]
