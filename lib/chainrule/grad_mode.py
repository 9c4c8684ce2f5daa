"""Whether operations are being recorded: ``no_grad`` and ``enable_grad`` switch it."""
import functools


class _State:
    enabled = True


state = _State()


def is_grad_enabled():
    return state.enabled


class set_grad_enabled:
    """Context manager and decorator that sets gradient recording on or off."""

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.previous = []

    def __enter__(self):
        self.previous.append(state.enabled)
        state.enabled = self.mode

    def __exit__(self, *exc):
        state.enabled = self.previous.pop()
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with type(self)(self.mode) if type(self) is set_grad_enabled else type(self)():
                return function(*args, **kwargs)
        return wrapper


class no_grad(set_grad_enabled):
    """Nothing inside is recorded: results do not require grad (updates of parameters, evaluation)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Recording is on inside, even within ``no_grad``."""

    def __init__(self):
        super().__init__(True)
