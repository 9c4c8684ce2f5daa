"""Anomaly detection: ``autograd.detect_anomaly()`` and ``set_detect_anomaly(True)``.

While it is on, every recorded op remembers where in the program it was made, and the backward
pass checks each gradient a node returns: one holding NaN stops it with PyTorch's error, and
any error in a node is preceded by a warning that shows the forward call that made the node.
"""
import traceback
import warnings


class _Anomaly:
    enabled = False
    check_nan = True

    def run(self, node, grad, rule=None):
        """``node``'s input gradients, computed and checked as anomaly mode does."""
        try:
            input_grads = rule(node, grad) if rule is not None else node.apply(grad)
            if self.check_nan:
                for i, g in enumerate(input_grads):
                    if g is not None and bool((g != g).any()):
                        raise RuntimeError(f"Function '{node.name()}' returned nan values in its "
                                           f"{i}th output.")
        except Exception:
            stack = "".join(getattr(node, "forward_stack", ()))
            warnings.warn(f"Error detected in {node.name()}. Traceback of forward call that caused "
                          f"the error:\n{stack}", UserWarning, stacklevel=2)
            raise
        return input_grads


anomaly = _Anomaly()


def forward_stack():
    """Where the op being recorded was called from (anomaly mode keeps it on the node)."""
    return traceback.format_stack()[:-3]


def is_anomaly_enabled():
    return anomaly.enabled


def is_anomaly_check_nan_enabled():
    return anomaly.check_nan


class set_detect_anomaly:
    """Anomaly detection on or off, at once (a plain call), or inside a ``with`` block."""

    def __init__(self, mode, check_nan=True):
        self.before = (anomaly.enabled, anomaly.check_nan)
        anomaly.enabled, anomaly.check_nan = bool(mode), bool(check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        anomaly.enabled, anomaly.check_nan = self.before
        return False


class detect_anomaly:
    """Anomaly detection on inside a ``with`` block (or a decorated function), with PyTorch's
    warning that it slows everything down."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", UserWarning, stacklevel=2)

    def __enter__(self):
        self.before = (anomaly.enabled, anomaly.check_nan)
        anomaly.enabled, anomaly.check_nan = True, self.check_nan

    def __exit__(self, *exc):
        anomaly.enabled, anomaly.check_nan = self.before
        return False

    def __call__(self, function):
        def wrapper(*args, **kwargs):
            with self:
                return function(*args, **kwargs)
        return wrapper
