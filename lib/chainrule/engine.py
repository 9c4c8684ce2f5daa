"""The graph engine: reverse-mode traversal of the recorded graph.

It knows nothing about arrays or tensors' insides. A gradient is any object with ``+``, an
in-place ``+=``, ``clone()`` and ``_may_alias()`` (whether other code may hold it, so that a leaf
must copy it before keeping it); a node turns the gradient of its output into one gradient per
input (``Node.apply``). The traversal is iterative, so a chain of 10**5 ops needs no deep
recursion, and linear in the size of the graph.
"""


from .anomaly_mode import anomaly
from .grad_mode import is_grad_enabled


class Node:
    """A recorded operation: what PyTorch calls a ``grad_fn``.

    ``next_functions`` holds one ``(node, 0)`` pair per input, ``(None, 0)`` for an input that
    needs no gradient, as in PyTorch. Every node has a single output.
    """

    next_functions = ()
    pre_hooks = ()      # functions of the output's gradient (Tensor.register_hook)
    node_pre_hooks = ()  # the same, run only when the node itself runs (register_prehook)
    post_hooks = ()     # functions of (input gradients, output gradients) (register_hook)
    retained = None     # a weak reference to the non-leaf tensor whose .grad to fill (retain_grad)

    def name(self):
        return type(self).__name__ + "Backward0"

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    @property
    def metadata(self):
        """A dict of the user's own, kept with the node (PyTorch's ``Node.metadata``)."""
        if "_metadata" not in self.__dict__:
            self._metadata = {}
        return self._metadata

    def apply(self, grad):
        """The gradients of the inputs, given the gradient of the output."""
        raise NotImplementedError

    def release(self):
        """Free what the node saved for the backward pass (called unless retain_graph)."""

    def add_gradient_hook(self, hook):
        """``hook(grad)`` on the gradient of the output before the node uses it; a tensor it
        returns replaces the gradient (what ``Tensor.register_hook`` registers)."""
        if not self.pre_hooks:
            self.pre_hooks = []
        self.pre_hooks.append(hook)
        return RemovableHandle(self.pre_hooks, hook)

    def register_prehook(self, hook):
        """PyTorch's node pre-hook: ``hook(grad_outputs)``, a tuple, may return a new tuple. It
        runs after the tensor's hooks and its retain_grad, and only if the node runs (not for a
        tensor whose gradient ``autograd.grad`` returns)."""
        def on_gradient(grad):
            result = hook((grad,))
            return None if result is None else result[0]
        if not self.node_pre_hooks:
            self.node_pre_hooks = []
        self.node_pre_hooks.append(on_gradient)
        return RemovableHandle(self.node_pre_hooks, on_gradient)

    def register_hook(self, hook):
        """PyTorch's node hook: ``hook(grad_inputs, grad_outputs)`` after the node ran, tuples;
        a tuple it returns replaces the gradients of the inputs."""
        if not self.post_hooks:
            self.post_hooks = []
        self.post_hooks.append(hook)
        return RemovableHandle(self.post_hooks, hook)


class AccumulateGrad(Node):
    """The node behind a leaf tensor: adds the incoming gradient into ``variable.grad``."""

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "AccumulateGrad"

    def apply(self, grad):
        variable = self.variable
        # ``_grad``, not the ``.grad`` property: its checks are for users' assignments, and a
        # gradient always has its leaf's shape.
        if variable._grad is None:
            # Each leaf must own its .grad, so that updating it in place touches only its own:
            # a gradient may reach several leaves (``a + b`` hands the same one to both) or share
            # memory with another tensor (the gradient of a reshape is a view).
            variable._grad = grad.clone() if grad._may_alias() else grad
            grad._owned = True
        elif is_grad_enabled():
            variable._grad = variable._grad + grad  # recorded (create_graph): a new node of the graph
        else:
            # In place, as in PyTorch: whoever holds this .grad sees the sum.
            variable._grad += grad
        return ()


class RemovableHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook off again."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def topological_sort(roots):
    """Every node reachable from ``roots``, each before all the nodes it feeds into its inputs."""
    order, visited = [], set()
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.next_functions))]
        while stack:
            node, children = stack[-1]
            for child, _ in children:
                if child is not None and child not in visited:
                    visited.add(child)
                    if not child.next_functions:  # a leaf's node: done as soon as it is found
                        order.append(child)
                        continue
                    stack.append((child, iter(child.next_functions)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def backpropagate(roots, grads, *, keep_graph=False, capture=None, rule=None, order=None):
    """Send ``grads`` (one per root node) backwards through the graph.

    Without ``capture``, gradients end in the leaves' ``.grad`` (``Tensor.backward``). With
    ``capture`` (a collection of nodes), the total gradient reaching each of those nodes is
    returned in a dict instead and only the part of the graph leading to them runs; leaves are
    left alone (``autograd.grad``). ``rule(node, grad)`` replaces ``node.apply`` where a caller
    needs other gradients (per-sample gradients do). Unless ``keep_graph``, every node that ran
    frees its saved values. ``order`` spares sorting again a graph the caller has sorted.
    """
    order = topological_sort(roots) if order is None else order
    needed = leading_to(order, capture) if capture is not None else None
    pending = {}
    for root, grad in zip(roots, grads):
        pending[root] = pending[root] + grad if root in pending else grad
    captured = {}
    for node in order:
        grad = pending.pop(node, None)
        if grad is None:
            continue
        if node.pre_hooks:
            grad = run_pre_hooks(node.pre_hooks, grad)
        if node.retained is not None:
            tensor = node.retained()
            if tensor is not None:
                tensor.grad = grad.clone() if tensor.grad is None else tensor.grad + grad
        if needed is not None:
            if node in capture:
                captured[node] = grad
            if node not in needed:
                continue
        if node.node_pre_hooks:
            grad = run_pre_hooks(node.node_pre_hooks, grad)
        if anomaly.enabled:
            input_grads = anomaly.run(node, grad, rule)
        else:
            input_grads = rule(node, grad) if rule is not None else node.apply(grad)
        if node.post_hooks:
            for hook in node.post_hooks:
                result = hook(tuple(input_grads), (grad,))
                if result is not None:
                    input_grads = result
        for (child, _), child_grad in zip(node.next_functions, input_grads):
            if child is None or child_grad is None:
                continue
            pending[child] = pending[child] + child_grad if child in pending else child_grad
        if not keep_graph:
            node.release()
    return captured


def run_pre_hooks(hooks, grad):
    """The gradient after each of ``hooks`` has seen it (a hook may return a replacement)."""
    for hook in hooks:
        grad._owned = True  # a hook may keep what it sees: no leaf may take it as its .grad
        result = hook(grad)
        if result is not None:
            grad = result
            grad._owned = True  # nor what a hook returns, which its caller may hold
    return grad


def leading_to(order, targets):
    """The nodes of ``order`` (topologically sorted) from which an edge path reaches a target."""
    leads = set()
    for node in reversed(order):  # inputs come before the nodes that use them
        for child, _ in node.next_functions:
            if child is not None and (child in targets or child in leads):
                leads.add(node)
                break
    return leads
