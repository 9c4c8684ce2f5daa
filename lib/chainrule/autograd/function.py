"""``torch.autograd.function``'s names: ``Function``, ``FunctionCtx``, ``once_differentiable``."""
import functools

from ..custom_function import Function, FunctionCtx  # noqa: F401
from ..grad_mode import no_grad
from ..stand_in import not_covered_in


def once_differentiable(backward):
    """A custom Function's ``backward`` that runs unrecorded: its result has no graph of its
    own, so no second derivative goes through it."""
    @functools.wraps(backward)
    def unrecorded(ctx, *grad_outputs):
        with no_grad():
            return backward(ctx, *grad_outputs)
    return unrecorded


__getattr__ = not_covered_in("torch.autograd.function")
