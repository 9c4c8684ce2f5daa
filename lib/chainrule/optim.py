"""Optimisers: ``SGD`` with optional momentum, PyTorch's update rule and parameter groups."""
from .grad_mode import no_grad
from .tensor import Tensor
from .stand_in import not_covered_in


class Optimizer:
    """Holds ``param_groups``: dicts of ``params`` and their options (``lr``...), as in PyTorch,
    so ``optimizer.param_groups[0]["lr"] = 0.01`` changes the learning rate of later steps."""

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):  # list() would iterate over its rows
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got chainrule.Tensor. Pass [tensor], or "
                            "model.parameters().")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups = [{"params": list(group["params"]), **defaults,
                              **{k: v for k, v in group.items() if k != "params"}}
                             for group in groups]
        self.state = {}  # per parameter, e.g. {"momentum_buffer": tensor}

    def _params(self):
        return (p for group in self.param_groups for p in group["params"])

    def zero_grad(self, set_to_none=True):
        for p in self._params():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()


class SGD(Optimizer):
    """``p -= lr * g``, where with momentum ``g = momentum * g_prev + grad`` (PyTorch's form)."""

    def __init__(self, params, lr=1e-3, momentum=0.0):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @no_grad()
    def step(self):
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for p in group["params"]:
                update = p.grad
                if update is None:
                    continue
                if momentum:
                    state = self.state.setdefault(p, {})
                    previous = state.get("momentum_buffer")
                    update = update.clone() if previous is None else previous * momentum + update
                    state["momentum_buffer"] = update
                p.sub_(update, alpha=lr)


__getattr__ = not_covered_in('torch.optim')  # what PyTorch has and chainrule lacks: one clear line
