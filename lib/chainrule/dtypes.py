"""The dtypes chainrule knows, named as in PyTorch (``chainrule.float32`` ...)."""


class dtype:
    """A tensor element type. Backends map it to their own array dtype."""

    __slots__ = ("name", "is_floating_point", "itemsize")

    def __init__(self, name, is_floating_point, itemsize):
        self.name = name
        self.is_floating_point = is_floating_point
        self.itemsize = itemsize

    def __repr__(self):
        return f"chainrule.{self.name}"

    def __reduce__(self):
        return self.name  # pickles as the module-level singleton of that name


float32 = dtype("float32", True, 4)
float64 = dtype("float64", True, 8)
int64 = dtype("int64", False, 8)
bool = dtype("bool", False, 1)  # noqa: A001 - the name PyTorch uses

ALL = (float32, float64, int64, bool)
BY_NAME = {d.name: d for d in ALL}
BY_NAME.update(float=float32, double=float64, long=int64)


_default_float = [float32]


def default_float():
    """The dtype of floats made without one (``tensor([1.5])``, ``zeros(2)``): float32 unless changed."""
    return _default_float[0]


def set_default_dtype(d):
    d = resolve(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type")
    _default_float[0] = d


def get_default_dtype():
    return _default_float[0]


def resolve(d):
    """Accept a chainrule dtype, a torch-like name, or a NumPy dtype name; reject the rest clearly."""
    if isinstance(d, dtype):
        return d
    name = getattr(d, "name", None) or getattr(d, "__name__", None) or str(d)
    name = name.removeprefix("torch.").removeprefix("chainrule.")
    if name in BY_NAME:
        return BY_NAME[name]
    supported = ", ".join(x.name for x in ALL)
    raise TypeError(f"chainrule does not support dtype {d!r}; supported dtypes are {supported}")
