"""``assert_close`` for chainrule tensors, PyTorch tensors and arrays alike."""
import numpy as np
from .stand_in import not_covered_in


def to_numpy(value):
    """A NumPy copy of a chainrule tensor, a PyTorch tensor, an array or nested numbers."""
    if hasattr(value, "_backend") and hasattr(value, "_array"):       # a chainrule tensor
        return np.array(value._backend.to_numpy(value._array))
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    if hasattr(value, "get") and type(value).__module__.startswith("cupy"):
        return value.get()
    return np.asarray(value)


def assert_close(actual, expected, *, rtol=None, atol=None, msg=None):
    """Fail with a message saying where and by how much ``actual`` and ``expected`` differ.

    Default tolerances follow PyTorch's: 1.3e-6/1e-5 for float32, 1e-7/1e-7 for float64 (give
    both or neither, as in PyTorch). Unlike PyTorch's, dtypes may differ: values are compared, so
    a float32 result can be checked against a float64 reference.
    """
    if (rtol is None) != (atol is None):
        raise ValueError("Both 'rtol' and 'atol' must be either specified or omitted, but got no "
                         f"{'atol' if atol is None else 'rtol'}.")
    prefix = f"{msg}: " if msg else ""
    if actual is None or expected is None:
        if actual is None and expected is None:
            return
        raise AssertionError(f"{prefix}None mismatch: {actual!r} is not {expected!r} (a .grad "
                             "that was never filled is None: did backward reach this tensor?)")
    a, e = to_numpy(actual), to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{prefix}shapes differ: got {a.shape}, expected {e.shape}")
    if rtol is None or atol is None:
        lowest = np.float32 if np.float32 in (a.dtype.type, e.dtype.type) else np.float64
        rtol = (1.3e-6 if lowest is np.float32 else 1e-7) if rtol is None else rtol
        atol = (1e-5 if lowest is np.float32 else 1e-7) if atol is None else atol
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    bad = ~np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        difference = np.abs(a64 - e64)
        worst = np.unravel_index(np.nanargmax(np.where(bad, difference, -1)), a.shape) if a.ndim else ()
        raise AssertionError(
            f"{prefix}tensors are not close: {int(bad.sum())} of {a.size} elements differ "
            f"(rtol={rtol}, atol={atol}). First at index {list(where)}: got {float(a64[where])}, "
            f"expected {float(e64[where])}. Largest difference {difference[worst]:.3g} at index "
            f"{[int(i) for i in worst]}.")


__getattr__ = not_covered_in('torch.testing')  # what PyTorch has and chainrule lacks: one clear line
