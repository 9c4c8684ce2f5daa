"""Devices: ``"cpu"`` and ``"cuda"`` / ``"cuda:0"``; each has its own array backend."""
from . import backends


class device:
    """A device name, as in PyTorch: ``chainrule.device("cuda:0").type == "cuda"``."""

    def __init__(self, name):
        name = str(name)
        if name == "cuda":
            name = "cuda:0"
        kind, _, index = name.partition(":")
        if kind not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {name}")
        self.type = kind
        self.index = int(index) if index else None
        self._name = name

    def __repr__(self):
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None else ")")

    def __str__(self):
        return self._name

    def __eq__(self, other):
        return str(self) == str(device(other) if isinstance(other, str) else other)

    def __hash__(self):
        return hash(self._name)


_default = None


def set_default_device(name):
    """Where factories (``tensor``, ``zeros``, ``randn``, layers...) put tensors when no ``device=``
    is given, as ``torch.set_default_device``. ``None`` restores the CPU."""
    global _default
    _default = None if name is None else str(device(name))
    if _default is not None:
        backend_for(_default)  # fail now, clearly, if that device cannot be used


def get_default_device():
    return device(_default or "cpu")


def backend_for(name=None):
    """The backend that holds arrays on device ``name`` (default: the default device)."""
    if name is None:
        name = _default
    if name is None or name == "cpu":
        return backends.cpu()
    name = str(name)
    if name == "cpu":
        return backends.cpu()
    if name.startswith("cuda"):
        from . import cuda
        return cuda.backend(device(name).index or 0)
    raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {name}")


def to_device(tensor, name):
    """A copy of ``tensor`` on device ``name``, recorded so that gradients flow back across."""
    target = backend_for(name)
    if target is tensor._backend:
        return tensor
    from .ops import ToDevice
    return ToDevice(target)(tensor)
