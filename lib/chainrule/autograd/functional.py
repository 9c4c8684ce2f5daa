"""``torch.autograd.functional``: Jacobians and vector-Jacobian products of a function."""
from ..creation import zeros_like
from ..func import jacobian as _one_pass_jacobian
from ..grad_mode import enable_grad
from ..stand_in import not_covered_in
from ..tensor import Tensor


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """d func / d inputs, shaped ``output.shape + input.shape`` (a tuple for a tuple of inputs).
    All rows come from one backward pass; with ``create_graph`` each row is a recorded backward
    pass of its own, so that the Jacobian can be differentiated again."""
    if not create_graph:
        return _one_pass_jacobian(func, inputs)
    from . import grad
    from ..ops import stack
    single = isinstance(inputs, Tensor)
    leaves = tuple(x.detach().requires_grad_(True) for x in ((inputs,) if single else inputs))
    with enable_grad():
        output = func(*leaves)
        flat = output.reshape(-1)
        rows = [grad(flat[k], leaves, retain_graph=True, create_graph=True, allow_unused=True)
                for k in range(flat.numel())]
    jacobians = tuple(
        stack([zeros_like(x) if row[i] is None else row[i] for row in rows]).reshape(*output.shape, *x.shape)
        for i, x in enumerate(leaves))
    return jacobians[0] if single else jacobians


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


def _single_element(output, name):
    if not isinstance(output, Tensor) or output.numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {name} should contain a "
                           "single element")
    return output


def _gradient_function(func, name):
    """``x -> d func / d x``, recorded (``create_graph``), so that it can be differentiated again."""
    from . import grad

    def gradient(*xs):
        output = _single_element(func(*xs), name)
        if not output.requires_grad:
            return tuple(zeros_like(x) for x in xs)
        grads = grad(output, xs, create_graph=True, allow_unused=True)
        return tuple(zeros_like(x) if g is None else g for g, x in zip(grads, xs))
    return gradient


def hessian(func, inputs, create_graph=False, strict=False):
    """The second derivatives of a scalar ``func``: the Jacobian of its gradient. For a tuple of
    inputs, a tuple of tuples: ``H[i][j]`` holds d2 func / d inputs[i] d inputs[j]."""
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    gradient = _gradient_function(func, "hessian")
    rows = tuple(jacobian(lambda *xs, i=i: gradient(*xs)[i], inputs) for i in range(len(inputs)))
    return rows[0][0] if single else rows


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v . H)``: the vector-Hessian product of a scalar ``func``, by two backward
    passes (the second through the first)."""
    from . import grad
    single = isinstance(inputs, Tensor)
    leaves = tuple(x.detach().requires_grad_(True) for x in ((inputs,) if single else inputs))
    with enable_grad():
        output = _single_element(func(*leaves), "vhp")
        gradient = _gradient_function(lambda *xs: output, "vhp")(*leaves)
    vectors = (v,) if isinstance(v, Tensor) else tuple(v)
    if any(g.requires_grad for g in gradient):
        products = grad([g for g in gradient if g.requires_grad],
                        leaves, [u for g, u in zip(gradient, vectors) if g.requires_grad],
                        create_graph=create_graph, allow_unused=True)
    else:
        products = (None,) * len(leaves)
    products = tuple(zeros_like(x) if p is None else p for p, x in zip(products, leaves))
    return output.detach(), products[0] if single else products


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H . v)``; the Hessian of a function with continuous second derivatives
    is symmetric, so this is ``vhp``."""
    return vhp(func, inputs, v, create_graph, strict)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J . v)``: the Jacobian-vector product, the change of the output along the
    direction ``v`` (here from the whole Jacobian: chainrule has no forward mode)."""
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    vectors = (v,) if isinstance(v, Tensor) else tuple(v)
    with enable_grad():
        output = func(*(x.detach() for x in inputs)).detach()
    jacobians = jacobian(func, inputs)
    n = output.numel()
    product = sum(j.reshape(n, u.numel()) @ u.reshape(u.numel()) for j, u in zip(jacobians, vectors))
    return output, product.reshape(output.shape)


__getattr__ = not_covered_in("torch.autograd.functional")
