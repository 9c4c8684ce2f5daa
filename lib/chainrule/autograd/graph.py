"""``torch.autograd.graph``: hooks on what the graph saves for the backward pass."""
import threading

from ..function import SAVED_TENSORS_HOOKS
from ..stand_in import not_covered_in


class saved_tensors_hooks:
    """Inside the block, every tensor an op saves for backward goes through ``pack_hook``, and
    the node keeps what it returns; backward gets the tensor back from ``unpack_hook`` (to keep
    it elsewhere meanwhile: on the CPU, on disk, compressed). The innermost block wins; the
    hooks apply to the thread that opened the block only, as in PyTorch."""

    def __init__(self, pack_hook, unpack_hook):
        self.hooks = (pack_hook, unpack_hook)

    def __enter__(self):
        self.entry = (threading.get_ident(), *self.hooks)
        SAVED_TENSORS_HOOKS.append(self.entry)
        return self

    def __exit__(self, *exc):
        SAVED_TENSORS_HOOKS.remove(self.entry)  # another thread's block may have opened since
        return False


class save_on_cpu(saved_tensors_hooks):
    """Saved tensors wait for backward in CPU memory, and go back to their device for it."""

    def __init__(self, pin_memory=False, device_type="cuda"):
        def pack(tensor):
            return tensor.device, tensor.detach().cpu().clone()

        def unpack(packed):
            device, tensor = packed
            return tensor.to(device)
        super().__init__(pack, unpack)


__getattr__ = not_covered_in("torch.autograd.graph")
