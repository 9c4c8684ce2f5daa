"""The autograd front end: ``backward``, ``grad`` and ``gradcheck``, over the graph engine."""
from .. import engine
from ..anomaly_mode import detect_anomaly, set_detect_anomaly  # noqa: F401 - torch.autograd's names
from ..creation import ones_like
from ..custom_function import Function, FunctionCtx  # noqa: F401 - torch.autograd's names
from ..grad_mode import set_grad_enabled
from ..stand_in import not_covered_in
from ..tensor import Tensor

NO_GRAD_FN = "element {} of tensors does not require grad and does not have a grad_fn"
UNUSED = ("The differentiated Tensor at index {} appears to not have been used in the graph. "
          "Set allow_unused=True if this is the desired behavior.")


def _as_tuple(value):
    if value is None:
        return None
    return (value,) if isinstance(value, Tensor) else tuple(value)


def _seeds(outputs, grad_outputs, is_grads_batched=False):
    """One seed per output; the implicit seed 1 exists only for a scalar output, as in PyTorch."""
    grad_outputs = _as_tuple(grad_outputs) or (None,) * len(outputs)
    for seed in grad_outputs:
        if seed is not None and not isinstance(seed, Tensor):
            raise TypeError(f"gradients can be either Tensors or None, but got "
                            f"{type(seed).__name__}. Make the seed a tensor first: "
                            "chainrule.tensor(seed) (from a NumPy array or a list).")
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one gradient per output: got {len(grad_outputs)} "
                           f"gradients for {len(outputs)} outputs")
    seeds = []
    for i, (output, seed) in enumerate(zip(outputs, grad_outputs)):
        if not output._requires_grad:
            raise RuntimeError(NO_GRAD_FN.format(i))
        if seed is None:
            if output.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            seed = ones_like(output)
            seed._owned = True  # made here, as the output is: none of the checks below can fail
            seeds.append(seed)
            continue
        expected = output._array.shape
        got = seed._array.shape[1:] if is_grads_batched else seed._array.shape
        if got != expected:
            shown = list(seed.shape[1:]) if is_grads_batched else list(seed.shape)
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of chainrule.Size({shown}) and "
                f"output[{i}] has a shape of chainrule.Size({list(expected)}). Pass a gradient "
                "with the output's shape (one seed per output element).")
        if seed._backend is not output._backend:
            raise RuntimeError("Expected all tensors to be on the same device, but found at least "
                               f"two devices, {output._backend.device} and {seed._backend.device}!")
        if seed._array.dtype != output._array.dtype:
            seed = seed.to(output.dtype)
        if not seed._requires_grad:  # one that does is part of the graph (create_graph)
            seed = Tensor._make(seed._array, seed._backend)
        seed._owned = True  # a leaf's .grad must never be the caller's own tensor
        seeds.append(seed)
    return seeds


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate d(tensors)/d(leaf) · grad_tensors into every leaf's ``.grad``."""
    tensors = _as_tuple(tensors)
    seeds = _seeds(tensors, grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = _as_tuple(inputs)
        grads = grad(tensors, inputs, seeds, retain_graph=retain_graph, create_graph=create_graph,
                     allow_unused=True)
        for tensor, g in zip(inputs, grads):
            if g is None:
                continue
            if tensor.grad_fn is None:  # a leaf: added as backward adds (in place once it has one)
                tensor._edge()[0].apply(g)
            else:
                tensor.grad = g.clone() if tensor._grad is None else tensor._grad + g
        return
    with set_grad_enabled(create_graph):
        engine.backpropagate([t.grad_fn or t._edge()[0] for t in tensors], seeds,
                             keep_graph=retain_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, is_grads_batched=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple; ``.grad`` is left alone.

    With ``is_grads_batched=True`` each seed has a leading batch axis and one vector-Jacobian
    product per seed is computed in a single backward pass (``chainrule.func.jacobian``).
    """
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    seeds = _seeds(outputs, grad_outputs, is_grads_batched)
    for i, tensor in enumerate(inputs):
        if not tensor.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors does not require grad "
                               f"(input {i}); call .requires_grad_() on it first.")
    if retain_graph is None:
        retain_graph = create_graph
    targets = [t._edge()[0] for t in inputs]
    with set_grad_enabled(create_graph):
        captured = engine.backpropagate([t.grad_fn or t._edge()[0] for t in outputs], seeds,
                                        keep_graph=retain_graph, capture=set(targets))
    results = []
    for index, target in enumerate(targets):
        g = captured.get(target)
        if g is None and not allow_unused:
            raise RuntimeError(UNUSED.format(index))
        results.append(g)
    return tuple(results)


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Compare autograd's gradients of ``fn`` with central finite differences, in float64.

    Every element of every output (``fn`` may return a tuple) is checked against every element
    of every input that requires grad: whole Jacobians. Inputs that are not tensors are passed
    as they are. Returns True, or raises (``raise_exception=False``: returns False) saying where
    they differ.
    """
    import numpy as np
    from ..creation import tensor as make_tensor

    inputs = _as_tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of them have requires_grad=True.")
    for i in checked:
        if inputs[i].dtype.name != "float64":
            raise ValueError(f"gradcheck needs float64 inputs for precision; input {i} is "
                             f"{inputs[i].dtype.name}: call .double() first")
    values = [t.detach().cpu().numpy() if isinstance(t, Tensor) else t for t in inputs]

    def evaluate(arrays):
        args = [make_tensor(a, dtype=t.dtype, device=t.device, requires_grad=t.requires_grad)
                if isinstance(t, Tensor) else t for a, t in zip(arrays, inputs)]
        outs = fn(*args)
        return args, (outs,) if isinstance(outs, Tensor) else tuple(outs)

    def flat(tensor):
        return tensor.detach().cpu().numpy().reshape(-1)

    for o, out in enumerate(evaluate(values)[1]):
        if not out.requires_grad:
            continue  # as in PyTorch, only differentiable outputs are checked
        n_out = out.numel()
        for i in checked:
            analytic = np.zeros((n_out, inputs[i].numel()))
            for k in range(n_out):
                args, outs = evaluate(values)
                seed = np.zeros(n_out)
                seed[k] = 1.0
                (g,) = grad(outs[o], args[i], make_tensor(seed.reshape(tuple(out.shape)),
                            dtype=out.dtype, device=out.device), allow_unused=True)
                analytic[k] = 0.0 if g is None else flat(g)
            numeric = np.zeros_like(analytic)
            for j in range(inputs[i].numel()):
                shifted = [v.copy() if k == i else v for k, v in enumerate(values)]
                position = shifted[i].reshape(-1)
                position[j] += eps
                plus = flat(evaluate(shifted)[1][o])
                position[j] -= 2 * eps
                minus = flat(evaluate(shifted)[1][o])
                numeric[:, j] = (plus - minus) / (2 * eps)
            bad = ~np.isclose(analytic, numeric, rtol=rtol, atol=atol)
            if bad.any():
                k, j = np.argwhere(bad)[0]
                message = (f"Jacobian mismatch for output {o} with respect to input {i}: "
                           f"d(output element {k})/d(input element {j}) is "
                           f"numerical {numeric[k, j]:.6g}, analytical {analytic[k, j]:.6g}")
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True):
    """``gradcheck`` of the gradient itself: of ``(inputs, v) -> v . d fn / d inputs``, recorded
    with ``create_graph=True``, so the second derivatives are compared with finite differences.

    Without ``grad_outputs``, each ``v`` is drawn uniformly from [-1, 1) as PyTorch draws it (from
    the same generator, so a seeded program draws the same numbers afterwards)."""
    from ..creation import empty

    inputs = _as_tuple(inputs)
    if grad_outputs is None:
        outputs = fn(*inputs)
        outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
        grad_outputs = tuple(empty(*o.shape, dtype=o.dtype, device=o.device).uniform_(-1, 1)
                             .requires_grad_() for o in outputs if o.requires_grad)
    grad_outputs = _as_tuple(grad_outputs)
    differentiable = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    count = len(grad_outputs)

    def gradient(*args):
        xs, vs = args[:-count], args[-count:]
        outs = fn(*xs)
        outs = [o for o in ((outs,) if isinstance(outs, Tensor) else outs) if o.requires_grad]
        grads = grad(outs, [xs[i] for i in differentiable], vs, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(gradient, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)


class GradcheckError(RuntimeError):
    """Raised by gradcheck when analytical and numerical gradients differ."""


from . import function, functional, graph  # noqa: E402 - torch.autograd.function, .functional, .graph

__getattr__ = not_covered_in('torch.autograd')  # what PyTorch has and chainrule lacks: one clear line
