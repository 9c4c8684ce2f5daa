"""The CUDA device, backed by CuPy (an optional extra: ``pip install cupy-cuda12x``)."""
from .stand_in import not_covered_in

_backends = {}


def _probe():
    """Why CUDA cannot be used here, or None when it can."""
    try:
        import cupy
    except ImportError:
        return ("CuPy is not installed. Install the CUDA extra for your CUDA version: "
                "pip install cupy-cuda12x (CUDA 12) or pip install cupy-cuda13x (CUDA 13)")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # noqa: BLE001 - CuPy raises several kinds when no driver exists
        return f"CuPy is installed but no CUDA driver or GPU was found ({error})"
    if count == 0:
        return "CuPy is installed but this machine has no CUDA GPU"
    return None


def is_available():
    return _probe() is None


def device_count():
    return 0 if not is_available() else __import__("cupy").cuda.runtime.getDeviceCount()


def backend(index=0):
    if index not in _backends:
        problem = _probe()
        if problem is not None:
            raise RuntimeError(f"device='cuda' is not available: {problem}. Use device='cpu'.")
        from .backends import CupyBackend
        _backends[index] = CupyBackend(index)
    return _backends[index]


def manual_seed(seed):
    if is_available():
        backend(0).seed(seed)


__getattr__ = not_covered_in('torch.cuda')  # what PyTorch has and chainrule lacks: one clear line
