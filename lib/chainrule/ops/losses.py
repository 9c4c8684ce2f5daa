"""Losses and the other ops of ``nn.functional``."""
from .arguments import binary_operands
from .elementwise import Elementwise
from .shape import _reshape


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
    return MseLoss(reduction)(*binary_operands(input, target))
