"""``torch.autograd.functional``: Jacobians and vector-Jacobian products of a function."""
from ..creation import zeros_like
from ..func import jacobian  # noqa: F401 - one pass for all one-hot seeds
from ..grad_mode import enable_grad
from ..stand_in import not_covered_in
from ..tensor import Tensor


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v . d func / d inputs)``, the output detached, as PyTorch returns them."""
    from . import grad
    single = isinstance(inputs, Tensor)
    leaves = tuple(x.detach().requires_grad_(True) for x in ((inputs,) if single else inputs))
    with enable_grad():
        outputs = func(*leaves)
    outs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    seeds = None if v is None else (v,) if isinstance(v, Tensor) else tuple(v)
    if any(o.requires_grad for o in outs):
        grads = grad(outs, leaves, seeds, create_graph=create_graph, allow_unused=True)
    else:
        grads = (None,) * len(leaves)
    if strict and any(g is None for g in grads):
        raise RuntimeError("The output of the user-provided function is independent of input 0. "
                           "This is not allowed in strict mode.")
    grads = tuple(zeros_like(x) if g is None else g for g, x in zip(grads, leaves))
    detached = outputs.detach() if isinstance(outputs, Tensor) else tuple(o.detach() for o in outs)
    return detached, grads[0] if single else grads


__getattr__ = not_covered_in("torch.autograd.functional")
