"""Optimisers: ``SGD`` with optional momentum, PyTorch's update rule."""
from .grad_mode import no_grad
from .tensor import Tensor


class Optimizer:
    def __init__(self, params):
        if isinstance(params, Tensor):  # list() would iterate over its rows
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got chainrule.Tensor. Pass [tensor], or "
                            "model.parameters().")
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()


class SGD(Optimizer):
    """``p -= lr * g``, where with momentum ``g = momentum * g_prev + grad`` (PyTorch's form)."""

    def __init__(self, params, lr, momentum=0.0):
        super().__init__(params)
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        self.lr, self.momentum = lr, momentum
        self.velocity = [None] * len(self.params)

    @no_grad()
    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            update = p.grad
            if self.momentum:
                previous = self.velocity[i]
                update = update.clone() if previous is None else previous * self.momentum + update
                self.velocity[i] = update
            p.sub_(update, alpha=self.lr)
