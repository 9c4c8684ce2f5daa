"""Stateless forms of the layers: ``chainrule.nn.functional.linear``, ``mse_loss``..."""
import warnings

from .. import ops
from ..stand_in import not_covered_in

linear = ops.linear
sigmoid = ops.sigmoid
tanh = ops.tanh
relu = ops.relu
softmax = ops.softmax
log_softmax = ops.log_softmax
nll_loss = ops.nll_loss
cross_entropy = ops.cross_entropy
binary_cross_entropy_with_logits = ops.binary_cross_entropy_with_logits


def mse_loss(input, target, reduction="mean"):  # noqa: A002
    """Mean (or summed) squared error; ``reduction='none'`` keeps one value per element."""
    if hasattr(target, "shape") and tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=2)
    if reduction in ("mean", "sum", "none"):
        return ops.mse_loss(input, target, reduction)
    raise ValueError(f"{reduction} is not a valid value for reduction")


__getattr__ = not_covered_in('torch.nn.functional')  # what PyTorch has and chainrule lacks: one clear line
