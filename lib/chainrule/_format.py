"""PyTorch's reprs, ``tensor([4., 7.], grad_fn=<AddBackward0>)``, following torch/_tensor_str.py."""
import numpy as np

from . import dtypes

PRECISION, THRESHOLD, EDGEITEMS, LINEWIDTH = 4, 1000, 3, 80
PREFIX = "tensor("


class _Formatter:
    """One style and one width for every element, as torch chooses them from the values shown."""

    def __init__(self, values):
        self.floating = values.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        if not self.floating:
            self.width = max(len(str(v)) for v in values.tolist())
            return
        # torch looks at the nonzero finite values only: nan, inf and 0 set neither style nor width
        shown = values[np.isfinite(values) & (values != 0)].astype(np.float64)
        if shown.size == 0:
            return
        size = np.abs(shown)
        self.int_mode = bool(np.all(shown == np.ceil(shown)))
        self.sci_mode = bool(size.max() / size.min() > 1000 or size.max() > 1e8 or size.min() < 1e-4)
        self.width = max(len(self._text(v)) for v in shown.tolist())

    def _text(self, value):
        if not self.floating:
            return str(value)
        if self.sci_mode:
            return f"{value:.{PRECISION}e}"
        if self.int_mode:
            # a trailing "." says the whole numbers are floats; nan and inf need no such hint
            return f"{value:.0f}" + ("." if np.isfinite(value) else "")
        return f"{value:.{PRECISION}f}"

    def format(self, value):
        return self._text(value).rjust(self.width)


def _edges(array):
    """What a summarised tensor shows: EDGEITEMS at each end of every long dimension."""
    for axis, n in enumerate(array.shape):
        if n > 2 * EDGEITEMS:
            array = np.take(array, [*range(EDGEITEMS), *range(n - EDGEITEMS, n)], axis=axis)
    return array


def _nested(array, indent, summarize, formatter):
    """Brackets within brackets; a vector's elements fill lines up to LINEWIDTH characters."""
    if array.ndim == 0:
        return formatter.format(array.item())
    if summarize and len(array) > 2 * EDGEITEMS:
        rows = [*array[:EDGEITEMS], None, *array[-EDGEITEMS:]]
    else:
        rows = list(array)
    if array.ndim == 1:
        texts = [" ..." if v is None else formatter.format(v.item()) for v in rows]
        per_line = max(1, (LINEWIDTH - indent) // (formatter.width + 2))
        lines = [", ".join(texts[i:i + per_line]) for i in range(0, len(texts), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    texts = ["..." if row is None else _nested(row, indent + 1, summarize, formatter) for row in rows]
    # one blank line between matrices, two between stacks of matrices, ...
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(texts) + "]"


def _add_suffixes(text, suffixes):
    """Each suffix goes on the last line, or on a line of its own where it would pass LINEWIDTH."""
    # torch's counts, and its names ("torch.float64" is shorter), so lines break where torch's do
    line_length = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        length = len(suffix.replace("chainrule.", "torch."))
        if line_length + length + 2 > LINEWIDTH:
            text += ",\n" + " " * len(PREFIX) + suffix
            line_length = len(PREFIX) + length
        else:
            text += ", " + suffix
            line_length += length + 2
    return text + ")"


def tensor_repr(tensor):
    array = tensor._backend.to_numpy(tensor._array)
    suffixes = []
    if tensor.is_cuda:
        suffixes.append(f"device='{tensor._backend.device}'")
    if array.size == 0:
        text = "[]"
        if array.ndim != 1:
            suffixes.append(f"size={array.shape}")
        # with no values to tell, any dtype but the default float32 is named
        show_dtype = tensor.dtype is not dtypes.default_float()
    else:
        summarize = array.size > THRESHOLD
        formatter = _Formatter((_edges(array) if summarize else array).reshape(-1))
        text = _nested(array, len(PREFIX), summarize, formatter)
        # the default float dtype, int64 and bool go unnamed, as in torch
        show_dtype = tensor.dtype.is_floating_point and tensor.dtype is not dtypes.default_float()
    if show_dtype:
        suffixes.append(f"dtype={tensor.dtype!r}")
    if tensor.grad_fn is not None:
        suffixes.append(f"grad_fn=<{tensor.grad_fn.name()}>")
    elif tensor.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(PREFIX + text, suffixes)
