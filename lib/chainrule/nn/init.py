"""Parameter initialisation, in place and unrecorded (PyTorch's ``nn.init``)."""
import math

from ..grad_mode import no_grad
from ..stand_in import not_covered_in


@no_grad()
def uniform_(tensor, a=0.0, b=1.0):
    return tensor.uniform_(a, b)


@no_grad()
def normal_(tensor, mean=0.0, std=1.0):
    return tensor.normal_(mean, std)


@no_grad()
def constant_(tensor, value):
    return tensor.fill_(value)


@no_grad()
def zeros_(tensor):
    return tensor.zero_()


def linear_bound(fan_in):
    """PyTorch's default Linear initialisation draws from U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


__getattr__ = not_covered_in('torch.nn.init')  # what PyTorch has and chainrule lacks: one clear line
