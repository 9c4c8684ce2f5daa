"""Gradients PyTorch users find hard to reach: per sample, per seed (Jacobians), per loss term;
and ``torch.func``'s transforms (``grad``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian``,
``vmap``, ``functional_call``), at the end of this module.

``per_sample_grad`` answers "how do I get the gradient for every input, not the sum?" in one
forward and one backward pass. The backward pass is the ordinary one except where a parameter
meets the batch: there the op's ``per_sample_backward`` keeps the batch axis instead of summing
over it (for a linear layer, each sample's weight gradient is the outer product of its backprop
signal and its input). A layer used several times adds up its per-use contributions, sample by
sample, exactly as ``.grad`` adds them up for the whole batch.
"""
from . import autograd, engine
from .batching import BatchedTensor, Level, levels
from .creation import eye, ones_like, zeros, zeros_like
from .grad_mode import enable_grad, no_grad, set_grad_enabled
from .ops import cat, Reshape, stack
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


# =========================================================================== torch.func
# The transforms of ``torch.func``, with its names and semantics. ``vmap`` is real batching:
# each op meets the whole batch once, through its batching rule (``chainrule.batching``).
# ``grad`` and its relatives run the ordinary backward pass; inside ``vmap`` that pass runs on
# batched tensors, so ``vmap(grad(f))`` gives each sample its own gradient.


# --------------------------------------------------------------------------- pytrees
def tree_flatten(tree):
    """The tensors (and other leaves) of nested dicts, lists and tuples, and how to rebuild it."""
    if isinstance(tree, dict):
        keys = list(tree)
        children, node = [tree[k] for k in keys], (type(tree), keys)
    elif isinstance(tree, (list, tuple)):
        children, node = list(tree), (type(tree), len(tree))
    else:
        return [tree], None
    leaves, specs = [], []
    for child in children:
        child_leaves, spec = tree_flatten(child)
        leaves += child_leaves
        specs.append(spec)
    return leaves, (node, specs)


def tree_unflatten(leaves, spec):
    return _rebuild(iter(leaves), spec)


def _rebuild(leaves, spec):
    if spec is None:
        return next(leaves)
    (kind, keys), specs = spec
    children = [_rebuild(leaves, child) for child in specs]
    if issubclass(kind, dict):
        return kind(zip(keys, children))
    if hasattr(kind, "_fields"):  # a namedtuple
        return kind(*children)
    return kind(children)


def _tree_map(function, tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([function(leaf) for leaf in leaves], spec)


def _spread(prefix, tree, what, describe, trees="inputs"):
    """One entry of ``prefix`` (an int, None, or a tree that is a prefix of ``tree``) per leaf of
    ``tree``: where each input's batch axis is (``in_dims``), or each output's (``out_dims``)."""
    spread = _spread_or_none(prefix, tree)
    if spread is None:
        raise ValueError(f"{describe}: {what} is not compatible with the structure of `{trees}`. "
                         f"{what} has structure {_tree_spec(prefix)} but {trees} has structure "
                         f"{_tree_spec(tree)}.")
    return spread


def _spread_or_none(prefix, tree):
    if prefix is None or isinstance(prefix, int):
        return [prefix] * len(tree_flatten(tree)[0])
    same_kind = isinstance(prefix, dict) == isinstance(tree, dict) and isinstance(tree, (dict, list, tuple))
    if not same_kind or len(prefix) != len(tree) or (isinstance(tree, dict) and set(prefix) != set(tree)):
        return None
    spread = []
    for key in (list(tree) if isinstance(tree, dict) else range(len(tree))):
        inner = _spread_or_none(prefix[key], tree[key])
        if inner is None:
            return None
        spread += inner
    return spread


def _tree_spec(tree, indent=0):
    """A tree's structure as PyTorch's pytree ``TreeSpec`` prints it (in its error messages)."""
    if not isinstance(tree, (dict, list, tuple)):
        return "*"
    children = list(tree.values()) if isinstance(tree, dict) else list(tree)
    context = list(tree) if isinstance(tree, dict) else None
    shown = [_tree_spec(child, indent + 2) for child in children]
    return f"TreeSpec({type(tree).__name__}, {context}, [" + (",\n" + " " * (indent + 2)).join(shown) + "])"


def _tree_outline(tree):
    """A tree with ``*`` for each leaf, as PyTorch's ``treespec_pprint`` prints it."""
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k!r}: {_tree_outline(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, (list, tuple)):
        inside = ", ".join(_tree_outline(v) for v in tree)
        return f"[{inside}]" if isinstance(tree, list) else f"({inside}{',' if len(tree) == 1 else ''})"
    return "*"


def _name(function):
    return getattr(function, "__name__", type(function).__name__)


# --------------------------------------------------------------------------- vmap
def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``func`` mapped over a batch axis of its inputs, as ``torch.func.vmap``: ``func`` is
    written for one sample, and runs once on the whole batch.

    ``in_dims`` says where each input's batch axis is (None: shared by every sample): an int for
    all inputs, or a tuple with one entry per input, itself a tree matching that input (dicts,
    lists, tuples). ``out_dims`` places the batch axis of each output. ``randomness`` decides
    what a random op inside does: 'error', 'same' (one draw for all samples), 'different'.
    ``chunk_size`` is accepted and ignored (the whole batch runs at once).
    """
    if randomness not in ("error", "different", "same"):
        raise RuntimeError("Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")

    def vmapped(*args, **kwargs):
        describe = f"vmap({_name(func)}, in_dims={in_dims}, ...)(<inputs>)"
        if not args:
            raise ValueError(f"vmap({_name(func)})(<inputs>): got no inputs. Maybe you forgot to "
                             "add inputs, or you are trying to vmap over a function with no "
                             "inputs. The latter is unsupported.")
        if not isinstance(in_dims, (int, tuple)):
            raise ValueError(f"{describe}: expected `in_dims` to be int or a (potentially nested) "
                             "tuple matching the structure of inputs, got: "
                             f"{type(in_dims)}.")
        dims = _spread(in_dims, args, "in_dims", describe)
        leaves, spec = tree_flatten(args)
        batch_size = _batch_size(leaves, dims, describe)
        level = Level(len(levels) + 1, batch_size, randomness)
        levels.append(level)
        try:
            wrapped = [leaf if d is None else BatchedTensor.wrap(leaf, d % leaf.ndim, level.number)
                       for leaf, d in zip(leaves, dims)]
            output = func(*tree_unflatten(wrapped, spec), **kwargs)
        finally:
            levels.pop()
        return _unbatched(output, out_dims, level, func)
    return vmapped


def _batch_size(leaves, dims, describe):
    sizes = []
    for leaf, d in zip(leaves, dims):
        if d is None:
            continue
        if not isinstance(d, int):
            raise ValueError(f"{describe}: in_dims must be int or None, got {d!r}")
        if not isinstance(leaf, Tensor):
            raise ValueError(f"{describe}: Got in_dim={d} for an input but the input is of type "
                             f"{type(leaf)}. We cannot vmap over non-Tensor arguments, please "
                             "use None as the respective in_dim")
        if not -leaf.ndim <= d < leaf.ndim:
            raise ValueError(f"{describe}: Got in_dim={d} for some input, but that input is a "
                             f"Tensor of dimensionality {leaf.ndim} so expected in_dim to satisfy "
                             f"-{leaf.ndim} <= in_dim < {leaf.ndim}.")
        sizes.append(leaf.shape[d])
    if not sizes:
        raise ValueError(f"{describe}: at least one input must be batched: in_dims is None for all")
    if len(set(sizes)) > 1:
        raise ValueError("vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0]


def _unbatched(output, out_dims, level, func):
    """vmap's outputs as whole batches, the batch axis at ``out_dims``."""
    leaves, spec = tree_flatten(output)
    describe = f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>)"
    if not (out_dims is None or isinstance(out_dims, (int, tuple, list, dict))):
        raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims}): `out_dims` must be an int, None or a python collection of "
                         "ints representing where in the outputs the vmapped dimension should appear.")
    dims = _spread(out_dims, output, "out_dims", describe, trees="outputs")
    results = []
    for leaf, d in zip(leaves, dims):
        if not isinstance(leaf, Tensor):
            raise ValueError(f"vmap({_name(func)}, ...): `{_name(func)}` must only return "
                             f"Tensors, got type {type(leaf)}. Did you mean to set out_dims= to "
                             "None for output?")
        batched = isinstance(leaf, BatchedTensor) and leaf.level == level.number
        physical = leaf.physical if batched else leaf
        batch_dim = leaf.batch_dim if batched else None
        if d is None:
            if batch_dim is not None:
                raise ValueError(f"vmap({_name(func)}, ...): `{_name(func)}` can not return a "
                                 "BatchedTensor when out_dim is None")
            results.append(physical)
            continue
        if batch_dim is None:  # the same for every sample: copied along a new batch axis
            physical = physical.unsqueeze(0).expand(level.batch_size, *physical.shape)
            batch_dim = 0
        if not -physical.ndim <= d < physical.ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-physical.ndim}, {physical.ndim - 1}], but got {d})")
        d = d % physical.ndim
        if d != batch_dim:
            order = list(range(physical.ndim))
            order.insert(d, order.pop(batch_dim))
            physical = physical.permute(*order)
        results.append(physical)
    return tree_unflatten(results, spec)


# --------------------------------------------------------------------------- reverse mode
class _Differentiating:
    """How many gradient transforms are running: an inner one keeps its graph for the outer."""
    depth = 0

    def __enter__(self):
        _Differentiating.depth += 1

    def __exit__(self, *exc):
        _Differentiating.depth -= 1


def _differentiable(x):
    """``x`` as an input of this transform's graph. Inside vmap the graph is recorded on batched
    tensors of the innermost level (a tensor vmap did not batch joins it unbatched), so that the
    backward pass runs on batched tensors too. An input an outer transform differentiates gets a
    node of its own, so the two transforms' gradients stay apart."""
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected the inputs to be differentiated to be Tensors, got {type(x)}")
    if levels:
        level = levels[-1].number
        if not (isinstance(x, BatchedTensor) and x.level == level):
            x = BatchedTensor.wrap(x, None, level)
    if x.requires_grad:
        return Reshape(tuple(x.shape))(x)
    leaf = BatchedTensor.wrap(x.physical, x.batch_dim, x.level) if isinstance(x, BatchedTensor) \
        else x.detach()
    return leaf.requires_grad_(True)


def _pull_back(outputs, leaves, cotangents, keep_graph, retain=False):
    """Each leaf's gradient of sum(output * cotangent) (zeros for a leaf no output reaches)."""
    roots, seeds = [], []
    for output, cotangent in zip(outputs, cotangents):
        if output.requires_grad:
            roots.append(output._edge()[0])
            seeds.append(cotangent)
    captured = {}
    if roots:
        targets = {leaf._edge()[0] for leaf in leaves}
        with set_grad_enabled(keep_graph):
            captured = engine.backpropagate(roots, seeds, keep_graph=keep_graph or retain,
                                            capture=targets)
    return [captured.get(leaf._edge()[0]) if leaf.requires_grad else None for leaf in leaves]


def _argnums_leaves(args, argnums):
    """The inputs to differentiate (``argnums``), made differentiable, and the new arguments."""
    if not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    numbers = (argnums,) if isinstance(argnums, int) else argnums
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    for n in numbers:
        if not isinstance(n, int):
            raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
        if not -len(args) <= n < len(args):
            raise RuntimeError(f"Got argnum={n}, but only {len(args)} positional inputs")
    args = list(args)
    for n in numbers:
        args[n] = _tree_map(_differentiable, args[n])
    chosen = args[argnums] if isinstance(argnums, int) else tuple(args[n] for n in argnums)
    return chosen, args


def _keeps_graph(args):
    """Whether results must stay differentiable: an outer transform, or inputs in a graph (at
    any vmap level: a batched tensor may hold one)."""
    return _Differentiating.depth > 0 or any(_in_a_graph(leaf) for leaf in tree_flatten(args)[0])


def _in_a_graph(value):
    while isinstance(value, BatchedTensor):
        if value.requires_grad:
            return True
        value = value.physical
    return isinstance(value, Tensor) and value.requires_grad


def _returned(value, keep_graph):
    """What a transform hands back: cut from its graph unless an outer one differentiates it."""
    if keep_graph:
        return value
    return _tree_map(lambda t: t.detach() if isinstance(t, Tensor) else t, value)


def _zeros_where_none(grads, leaves):
    return [zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves)]


def grad_and_value(func, argnums=0, has_aux=False):
    """``func``'s gradient with respect to input ``argnums`` (a tuple: several), and its value;
    ``func`` must return a 0-d tensor (with ``has_aux``: that and anything else, returned as
    is). As ``torch.func.grad_and_value``."""
    def wrapper(*args, **kwargs):
        keep_graph = _keeps_graph(args)
        with enable_grad(), _Differentiating():
            chosen, args = _argnums_leaves(args, argnums)
            output = func(*args, **kwargs)
            aux = None
            if has_aux:
                if not (isinstance(output, tuple) and len(output) == 2):
                    raise RuntimeError("grad_and_value(f)(*args): output of function f should be "
                                       "a tuple: (output, aux) if has_aux is True")
                output, aux = output
            if not isinstance(output, Tensor):
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"Tensor, got {type(output)}")
            if output.ndim != 0:
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a scalar "
                                   f"Tensor, got tensor with {output.ndim} dims. Maybe you wanted "
                                   "to use the vjp or jacrev APIs instead?")
            leaves, spec = tree_flatten(chosen)
            grads = _pull_back([output], leaves, [ones_like(output)], keep_graph)
        grads = _returned(tree_unflatten(_zeros_where_none(grads, leaves), spec), keep_graph)
        value = _returned(output, keep_graph)
        return (grads, (value, _returned(aux, keep_graph))) if has_aux else (grads, value)
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """The gradient of ``func`` (returning a 0-d tensor) with respect to input ``argnums``, as
    ``torch.func.grad``: ``grad(f)(x)`` is ``f'(x)``, itself a function to transform again
    (``grad(grad(f))``, ``vmap(grad(f))``)."""
    value_too = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        grads, value = value_too(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads
    return wrapper


def vjp(func, *primals, has_aux=False):
    """``(func(*primals), vjp_fn)``: ``vjp_fn(cotangents)`` gives, for each primal, the
    vector-Jacobian product, as ``torch.func.vjp``. ``vjp_fn`` may be called many times."""
    keep_graph = _keeps_graph(primals)
    with enable_grad(), _Differentiating():
        leaves_tree, output, aux = _call_on_leaves(func, primals, has_aux)
    outputs, out_spec = _only_tensors(output)
    leaves, spec = tree_flatten(leaves_tree)

    def vjp_fn(cotangents):
        flat, cotangent_spec = tree_flatten(cotangents)
        if cotangent_spec != out_spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree "
                               "structure of outputs to the function. cotangents: "
                               f"{_tree_outline(cotangents)}, primal output: {_tree_outline(output)}")
        with _Differentiating():
            grads = _pull_back(outputs, leaves, flat, keep_graph, retain=True)
        return _returned(tree_unflatten(_zeros_where_none(grads, leaves), spec), keep_graph)

    result = (_returned(output, keep_graph), vjp_fn)
    return result + (_returned(aux, keep_graph),) if has_aux else result


def _call_on_leaves(func, primals, has_aux):
    """``func`` called on fresh leaves standing for every primal: the leaves, its output, its aux."""
    leaves_tree, args = _argnums_leaves(primals, tuple(range(len(primals))))
    output = func(*args)
    aux = None
    if has_aux:
        output, aux = output
    return leaves_tree, output, aux


def _only_tensors(output):
    outputs, spec = tree_flatten(output)
    for o in outputs:
        if not isinstance(o, Tensor):
            raise RuntimeError("vjp(f, *primals): expected f(*primals) to return only tensors, got "
                               f"unsupported type {type(o)}")
    return outputs, spec


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None):
    """The Jacobian of ``func`` by reverse mode, as ``torch.func.jacrev``: one vector-Jacobian
    product per output element, all of them at once (``vmap`` over the one-hot cotangents).
    Each block has the output's shape followed by the input's."""
    def wrapper(*args):
        keep_graph = _keeps_graph(args)
        with enable_grad(), _Differentiating():
            chosen, new_args = _argnums_leaves(args, argnums)
            output = func(*new_args)
            aux = None
            if has_aux:
                output, aux = output
            outputs, out_spec = _only_tensors(output)
            leaves, in_spec = tree_flatten(chosen)
            blocks = []
            for k, o in enumerate(outputs):
                n = o.numel()
                seeds = eye(n, dtype=o.dtype, device=o.device).reshape(n, *o.shape)

                def pull(seed, k=k):
                    cotangents = [seed if j == k else zeros_like(other) for j, other in enumerate(outputs)]
                    return tuple(_zeros_where_none(
                        _pull_back(outputs, leaves, cotangents, keep_graph, retain=True), leaves))
                rows = vmap(pull)(seeds)
                blocks.append(tree_unflatten([r.reshape(*o.shape, *leaf.shape)
                                              for r, leaf in zip(rows, leaves)], in_spec))
        jacobian = _returned(tree_unflatten(blocks, out_spec), keep_graph)
        return (jacobian, _returned(aux, keep_graph)) if has_aux else jacobian
    return wrapper


# --------------------------------------------------------------------------- forward mode
def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """``(func(*primals), J @ tangents)``, the Jacobian-vector product, as ``torch.func.jvp``.

    Forward mode here is the double-vjp construction, not dual numbers: with ``u`` a stand-in
    cotangent, ``g(u) = J^T u`` is a backward pass recorded as a graph (backward rules are tensor
    ops), and it is linear in ``u``, so a second backward pass through it, seeded with the
    tangent, gives ``J t``. Every op then needs only the backward rule it already has, where
    dual numbers would need a second, forward-mode rule per op; the price is two backward
    passes where forward mode would run one.
    """
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it "
                           "should be valid to call f(*primals).")
    keep_graph = _keeps_graph((primals, tangents))
    with enable_grad(), _Differentiating():
        leaves_tree, output, aux = _call_on_leaves(func, primals, has_aux)
        outputs, out_spec = tree_flatten(output)
        leaves, _ = tree_flatten(leaves_tree)
        flat_tangents, _ = tree_flatten(tangents)
        stand_ins = [_differentiable(zeros_like(o)) for o in outputs]
        transposed = _pull_back(outputs, leaves, stand_ins, keep_graph=True)  # J^T u, as a graph
        used = [(g, t) for g, t in zip(transposed, flat_tangents) if g is not None and g.requires_grad]
        products = _pull_back([g for g, _ in used], stand_ins, [t for _, t in used], keep_graph)
    products = _zeros_where_none(products, outputs)
    result = (_returned(output, keep_graph), _returned(tree_unflatten(products, out_spec), keep_graph))
    return result + (_returned(aux, keep_graph),) if has_aux else result


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """The Jacobian of ``func`` by forward mode, as ``torch.func.jacfwd``: one Jacobian-vector
    product per input element, all at once (``vmap`` of ``jvp`` over one-hot tangents). See
    ``jvp`` for how forward mode is built here."""
    def wrapper(*args):
        numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        chosen = args[argnums] if isinstance(argnums, int) else tuple(args[n] for n in numbers)
        leaves, in_spec = tree_flatten(chosen)

        def func_of_chosen(*leaf_values):
            new_args = list(args)
            picked = tree_unflatten(list(leaf_values), in_spec)
            if isinstance(argnums, int):
                new_args[argnums] = picked
            else:
                for n, value in zip(numbers, picked):
                    new_args[n] = value
            return func(*new_args)

        columns = []  # per input leaf: the tree of outputs, each (n_in, *out.shape)
        output = aux = None
        for i, leaf in enumerate(leaves):
            n = leaf.numel()
            basis = eye(n, dtype=leaf.dtype, device=leaf.device).reshape(n, *leaf.shape)

            def push(tangent, i=i):
                tangents = tuple(tangent if j == i else zeros_like(other) for j, other in enumerate(leaves))
                return jvp(func_of_chosen, tuple(leaves), tangents, has_aux=has_aux)
            pushed = vmap(push, randomness=randomness)(basis)
            if has_aux:
                output, column, aux = pushed
                aux = _tree_map(lambda t: t[0] if isinstance(t, Tensor) else t, aux)
            else:
                output, column = pushed
            columns.append(column)
        outputs, out_spec = tree_flatten(columns[0])
        blocks = []
        for k, o in enumerate(outputs):
            out_shape = tuple(o.shape[1:])
            per_input = []
            for column, leaf in zip(columns, leaves):
                c = tree_flatten(column)[0][k]  # (n_in, *out_shape): the input axis goes last
                c = c.reshape(c.shape[0], -1).mT.reshape(*out_shape, *leaf.shape)
                per_input.append(c)
            blocks.append(tree_unflatten(per_input, in_spec))
        jacobian = tree_unflatten(blocks, out_spec)
        return (jacobian, aux) if has_aux else jacobian
    return wrapper


def hessian(func, argnums=0):
    """The matrix of second derivatives, as ``torch.func.hessian``: ``jacfwd(jacrev(func))``."""
    return jacfwd(jacrev(func, argnums), argnums)


# --------------------------------------------------------------------------- modules
def functional_call(module, parameter_and_buffer_dicts, args=(), kwargs=None, *, tie_weights=True,
                    strict=False):
    """Call ``module`` with the given tensors in place of its parameters (and buffers), named as
    in ``named_parameters()``, as ``torch.func.functional_call``: the module as a function of its
    parameters, which ``grad`` and ``vmap`` can then transform. The module is left as it was."""
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        dicts = (dicts,)
    replacements = {}
    for d in dicts:
        for name in d:
            if name in replacements:
                raise ValueError(f"{name} appeared in multiple dictionaries; behavior of "
                                 "functional call is ambiguous")
        replacements.update(d)
    args = args if isinstance(args, tuple) else (args,)
    replaced = []
    try:
        for name, value in replacements.items():
            *path, attribute = name.split(".")
            owner = module
            for part in path:
                owner = getattr(owner, part)
            replaced.append((owner, attribute, owner.__dict__.get(attribute)))
            object.__setattr__(owner, attribute, value)  # bypasses the parameter registry
        return module(*args, **(kwargs or {}))
    finally:
        for owner, attribute, original in reversed(replaced):
            object.__setattr__(owner, attribute, original)


def stack_module_state(models):
    """The parameters (and buffers) of same-shaped ``models`` stacked along a new first axis,
    as ``torch.func.stack_module_state``: one ensemble to ``vmap`` over with ``functional_call``."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    named = [dict(m.named_parameters()) for m in models]
    params = {}
    for name, first in named[0].items():
        params[name] = stack([n[name].detach() for n in named]).requires_grad_(first.requires_grad)
    return params, {}


__getattr__ = not_covered_in('torch.func')  # what PyTorch has and chainrule lacks: one clear line
