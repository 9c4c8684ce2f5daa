"""Gradients PyTorch users find hard to reach: per sample, per seed (Jacobians), per loss term.

``per_sample_grad`` answers "how do I get the gradient for every input, not the sum?" in one
forward and one backward pass. The backward pass is the ordinary one except where a parameter
meets the batch: there the op's ``per_sample_backward`` keeps the batch axis instead of summing
over it (for a linear layer, each sample's weight gradient is the outer product of its backprop
signal and its input). A layer used several times adds up its per-use contributions, sample by
sample, exactly as ``.grad`` adds them up for the whole batch.
"""
from . import autograd, engine
from .creation import eye, ones_like, zeros
from .grad_mode import enable_grad, no_grad
from .ops import cat
from .tensor import Tensor
from .stand_in import not_covered_in


def per_sample_grad(model, inputs, targets=None, loss_fn=None, flat=False):
    """Each sample's own gradient, for every parameter of ``model``.

    Returns a dict ``{name: tensor of shape (batch, *param.shape)}`` in ``named_parameters()``
    order, or with ``flat=True`` the ``(batch, n_params)`` matrix of those rows laid end to end.

    * Without ``loss_fn`` the model's output is differentiated; it must hold one element per
      sample (shape ``(batch,)`` or ``(batch, 1)``).
    * With ``loss_fn`` each sample's loss is differentiated: row ``s`` is what a batch-size-1
      backward pass on sample ``s`` alone gives. So for ``nn.MSELoss(reduction='mean')`` a row is
      the gradient of that sample's mean over its output elements (not divided by the batch size;
      the mean of the rows is the batch ``.grad``), and for ``reduction='sum'`` the gradient of its
      sum (the sum of the rows is the batch ``.grad``). A function ``loss_fn(output, targets)``
      must return one loss per sample, shape ``(batch,)``.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("per_sample_grad: the model has no parameters that require grad")
    batch = inputs.shape[0]
    marked = inputs.detach().requires_grad_(True)  # marks the batch side of the graph
    with enable_grad():
        output = model(marked)
        root, seed = _per_sample_objective(output, targets, loss_fn, batch)
    if root.grad_fn is None:
        raise ValueError("per_sample_grad: the output does not depend on the parameters")

    param_nodes = {p._edge()[0]: name for name, p in named}
    order = engine.topological_sort([root.grad_fn])
    batch_side = engine.leading_to(order, {marked._edge()[0]})
    reaches_params = engine.leading_to(order, set(param_nodes))

    def rule(node, grad):
        slots, unneeded = [], []
        for i, (child, _) in enumerate(node.next_functions):
            if child in param_nodes:
                slots.append(i)
            elif child not in reaches_params:
                unneeded.append(i)  # e.g. the inputs themselves: no parameter lies beyond
            elif child not in batch_side:
                raise NotImplementedError(
                    f"per_sample_grad: a parameter passes through {child.name()} before meeting "
                    "the batch; per-sample rules need the parameter itself as the input of the "
                    "op that combines it with the batch (as nn.Linear does)")
        per_sample_backward = getattr(node, "per_sample_backward", None)
        if slots and (per_sample_backward is None or node not in batch_side):
            raise NotImplementedError(
                f"per_sample_grad: a parameter is used by {node.name()}, which has no per-sample "
                "rule. Use nn.Linear or elementwise ops between parameters and the batch, or a "
                "loop of batch-size-1 backward passes.")
        return _backward_with(node, grad, slots, unneeded, per_sample_backward)

    with no_grad():
        captured = engine.backpropagate([root.grad_fn], [seed], capture=set(param_nodes), rule=rule,
                                        order=order)
    grads = {}
    for name, p in named:
        g = captured.get(p._edge()[0])
        # computed under no_grad: g is already outside any graph
        grads[name] = zeros(batch, *p.shape, dtype=p.dtype, device=p.device) if g is None else g
    if flat:
        return cat([g.reshape(batch, -1) for g in grads.values()], dim=1)
    return grads


def _backward_with(node, grad, per_sample_slots, unneeded_slots, per_sample_backward):
    """The node's ordinary backward for its batch inputs, the per-sample rule for its parameters,
    nothing for inputs that lead to no parameter."""
    if not per_sample_slots and not unneeded_slots:
        return node.apply(grad)
    needs = node.needs_input_grad
    batch_needs = [need and i not in per_sample_slots and i not in unneeded_slots
                   for i, need in enumerate(needs)]
    if any(batch_needs):
        node.needs_input_grad = batch_needs
        try:
            grads = list(node.apply(grad))
        finally:
            node.needs_input_grad = needs
    else:  # only parameters want a gradient here (a first layer): no ordinary backward at all
        node.check_saved()
        grads = [None] * len(needs)
    for i in per_sample_slots:
        grads[i] = per_sample_backward(grad, i)
    return grads


def _per_sample_objective(output, targets, loss_fn, batch):
    """The tensor to differentiate and its seed, so that sample s's row is its own gradient."""
    if loss_fn is None:
        if output.numel() != batch or output.shape[0] != batch:
            raise ValueError(
                f"per_sample_grad without loss_fn differentiates the model's output, which must "
                f"have one element per sample: got shape {tuple(output.shape)} for a batch of "
                f"{batch}. Pass loss_fn=... (and targets) to differentiate a loss instead.")
        return output, ones_like(output)
    reduction = getattr(loss_fn, "reduction", None)
    if reduction is not None:
        loss = loss_fn(output, targets)
        if reduction == "none":
            return loss, ones_like(loss)
        # 'mean' divides by batch * elements_per_sample; a batch-size-1 pass divides by the latter.
        scale = float(batch) if reduction == "mean" else 1.0
        return loss, ones_like(loss) * scale
    losses = loss_fn(output, targets)
    if not isinstance(losses, Tensor) or tuple(losses.shape) != (batch,):
        shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
        raise ValueError(f"per_sample_grad: loss_fn must return one loss per sample, shape "
                         f"({batch},); got {shape}. A function returning a scalar hides which "
                         "sample each term came from.")
    return losses, ones_like(losses)


def jacobian(f, inputs):
    """The Jacobian of ``f`` at ``inputs``, shaped ``output.shape + input.shape`` (as PyTorch's
    ``torch.autograd.functional.jacobian``). One backward pass carries all the one-hot seeds
    at once (``autograd.grad(..., is_grads_batched=True)``): row k is the vector-Jacobian
    product with the k-th one-hot seed."""
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    leaves = tuple(x.detach().requires_grad_(True) for x in inputs)
    with enable_grad():
        output = f(*leaves)
    n = output.numel()
    out_shape = tuple(output.shape)
    if not output.requires_grad:
        grads = (None,) * len(leaves)
    else:
        seeds = eye(n, dtype=output.dtype, device=output.device).reshape(n, *out_shape)
        grads = autograd.grad(output, leaves, seeds, is_grads_batched=True, allow_unused=True)
    jacobians = tuple(
        zeros(*out_shape, *x.shape, dtype=x.dtype, device=x.device) if g is None
        else g.reshape(*out_shape, *x.shape)
        for g, x in zip(grads, leaves))
    return jacobians[0] if single else jacobians


def per_loss_grads(losses, params):
    """One tuple of gradients per loss term, all from the one forward pass that built them.

    Like calling ``autograd.grad(loss_k, params, retain_graph=True)`` for every term but the last
    and without ``retain_graph`` for the last, which frees the shared graph. ``.grad`` is left
    untouched. A parameter a term does not use gets zeros.
    """
    params = list(params)
    losses = list(losses)
    results = []
    for k, loss in enumerate(losses):
        grads = autograd.grad(loss, params, retain_graph=k < len(losses) - 1, allow_unused=True)
        results.append(tuple(zeros(*p.shape, dtype=p.dtype, device=p.device) if g is None else g
                             for g, p in zip(grads, params)))
    return results


def mean_abs_grad(grads):
    """The mean of |g| over every weight of every tensor in ``grads``: one number per loss term."""
    total = sum(g.abs().sum().item() for g in grads)
    count = sum(g.numel() for g in grads)
    return total / count


def max_abs_grad(grads):
    return max(g.abs().max().item() for g in grads)


def balance_weights(term_grads, reference=0, previous=None, smoothing=0.9):
    """Loss weights from gradient statistics (learning-rate annealing for physics-informed nets).

    ``term_grads`` holds one tuple of gradients per loss term (``per_loss_grads``). Term i's
    weight is ``max|grad of the reference term| / mean|grad of term i|``: a term whose gradients
    are small next to the reference's gets a large weight. With ``previous`` weights the new ones
    are smoothed: ``smoothing * previous + (1 - smoothing) * new``. The reference keeps weight 1.
    """
    peak = max_abs_grad(term_grads[reference])
    weights = []
    for i, grads in enumerate(term_grads):
        new = 1.0 if i == reference else peak / mean_abs_grad(grads)
        if previous is not None and i != reference:
            new = smoothing * previous[i] + (1.0 - smoothing) * new
        weights.append(new)
    return weights


__getattr__ = not_covered_in('torch.func')  # what PyTorch has and chainrule lacks: one clear line
