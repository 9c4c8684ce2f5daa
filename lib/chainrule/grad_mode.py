"""Whether operations are being recorded: ``no_grad`` and ``enable_grad`` switch it."""
import functools
import threading


class _State(threading.local):
    """Per thread, as in PyTorch: one thread's backward pass (which records nothing) must not
    stop another thread's forward pass from recording. Every thread starts with recording on."""
    enabled = True
    inference = False  # inside inference_mode: what is made is an inference tensor


state = _State()


def is_grad_enabled():
    return state.enabled


def is_inference_mode_enabled():
    return state.inference


class _Switch:
    """Sets recording to ``self.mode`` inside a ``with`` block, or around every call of a
    function it decorates, and restores what was there before."""

    mode = True

    def __enter__(self):
        self.previous.append(state.enabled)  # a stack: one object may be entered again inside
        state.enabled = self.mode

    def __exit__(self, *exc):
        state.enabled = self.previous.pop()
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self._fresh():
                return function(*args, **kwargs)
        return wrapper


class no_grad(_Switch):
    """Nothing inside is recorded: results do not require grad (updates of parameters, evaluation).

    ``@no_grad()`` and, as in PyTorch, ``@no_grad`` both decorate a function.
    """

    mode = False

    def __new__(cls, function=None):
        switch = super().__new__(cls)
        switch.previous = []
        return switch if function is None else switch(function)

    def _fresh(self):
        return type(self)()


class enable_grad(no_grad):
    """Recording is on inside, even within ``no_grad``."""

    mode = True


class set_grad_enabled(_Switch):
    """Recording on or off: as a plain call (``set_grad_enabled(False)``) it switches at once and
    stays; as a context manager or decorator it restores the previous mode afterwards."""

    def __init__(self, mode):
        self.mode = bool(mode)
        self.before = state.enabled
        state.enabled = self.mode

    def __enter__(self):
        state.enabled = self.mode

    def __exit__(self, *exc):
        state.enabled = self.before  # the mode from before the object was made, as in PyTorch
        return False

    def __call__(self, function):
        state.enabled = self.before  # decorating changes nothing until the function runs
        return super().__call__(function)

    def _fresh(self):
        return set_grad_enabled(self.mode)


class inference_mode(no_grad):
    """``no_grad``, and what is made inside is an inference tensor, which autograd may never
    save for backward (nor may it be updated in place outside inference mode)."""

    def __new__(cls, mode=True):
        switch = object.__new__(cls)
        switch.previous = []
        switch.mode = not mode
        return switch

    def __init__(self, mode=True):
        pass

    def __enter__(self):
        self.previous.append((state.enabled, state.inference))
        state.enabled, state.inference = self.mode, not self.mode

    def __exit__(self, *exc):
        state.enabled, state.inference = self.previous.pop()
        return False

    def _fresh(self):
        return type(self)(not self.mode)
