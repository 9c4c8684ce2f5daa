"""What students read on screen must be what PyTorch prints: tensor reprs and nn.Module behaviour.

As in test_torch_parity.py, every case is written once as ``case(lib)`` and run in torch (2.13) and
in chainrule; the expected text is torch's own output, with ``torch.`` read as ``chainrule.``.
"""

import math
import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

import chainrule
from test_torch_parity import both


def on_cpu(case):
    """``case(chainrule)`` with tensors made on the CPU, as torch's are here: the suite also runs
    with CUDA as default device, where a ``device='cuda:0'`` suffix would change line breaks."""
    default = chainrule.get_default_device()
    chainrule.set_default_device("cpu")
    try:
        return case(chainrule)
    finally:
        chainrule.set_default_device(str(default))


def torch_text(text):
    return text.replace("torch.", "chainrule.")


def assert_repr_like_torch(case):
    expected = torch_text(repr(case(torch)))
    assert repr(on_cpu(case)) == expected


# ---------------------------------------------------------------- A. tensor reprs

nan, inf = math.nan, math.inf
GRID = np.linspace(-3, 3, 10000).reshape(100, 100)

REPRS = {
    "whole_numbers_spanning_over_1000": lambda lib: lib.tensor([1.0, 2000.0]),
    "whole_numbers_over_1e8": lambda lib: lib.tensor([1e9, 2.0]),
    "nan_inf_and_one": lambda lib: lib.tensor([nan, inf, 1.0]),
    "minus_inf_and_zero": lambda lib: lib.tensor([-inf, 0.0]),
    "minus_zero_and_one": lambda lib: lib.tensor([-0.0, 1.0]),
    "nan_among_fractions": lambda lib: lib.tensor([nan, 0.5, -2.25]),
    "all_true": lambda lib: lib.tensor([True, True]),
    "true_and_false": lambda lib: lib.tensor([True, False]),
    "empty_2x0": lambda lib: lib.zeros(2, 0),
    "empty_vector": lambda lib: lib.zeros(0),
    "empty_int64": lambda lib: lib.zeros(0, dtype=lib.int64),
    "empty_bool_3x0": lambda lib: lib.zeros(3, 0, dtype=lib.bool),
    "arange_2000": lambda lib: lib.arange(2000.0),
    "int_arange_5000": lambda lib: lib.arange(5000),
    "grid_100x100": lambda lib: lib.tensor(GRID.astype(np.float32)),
    "grid_100x100_float64": lambda lib: lib.tensor(GRID),
    "cube_10x20x10": lambda lib: lib.tensor(np.arange(2000.0).reshape(10, 20, 10)),
    "row_over_several_lines": lambda lib: lib.tensor(np.arange(30.0, dtype=np.float32) * 1.5),
    "float64_leaf_suffixes_wrap": lambda lib: lib.tensor(np.linspace(-1, 1, 12), requires_grad=True),
    "scalar": lambda lib: lib.tensor(-1234.5678),
    "parameter": lambda lib: lib.nn.Parameter(lib.tensor([0.0, 2000.0])),
}


@pytest.mark.parametrize("case", REPRS.values(), ids=REPRS.keys())
def test_repr_like_torch(case):
    assert_repr_like_torch(case)


def random_array(rng, shape, dtype):
    """Values of one size, of mixed sizes, whole numbers, or with nan, inf and zeros among them."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "int64":
        return rng.integers(-(10 ** rng.integers(1, 12)), 10 ** rng.integers(1, 12), size=shape)
    kind = rng.integers(5)
    if kind == 0:
        a = rng.standard_normal(shape) * 10.0 ** rng.integers(-7, 10)
    elif kind == 1:
        a = rng.standard_normal(shape) * 10.0 ** rng.integers(-7, 10, size=shape)
    elif kind == 2:
        a = rng.integers(-1000, 1000, size=shape) * 10.0 ** rng.integers(0, 8)
    elif kind == 3:
        a = np.abs(rng.standard_normal(shape)) * 10.0 ** rng.integers(-3, 4)
    else:
        a = np.array(rng.standard_normal(shape))
        a.flat[rng.integers(a.size, size=3)] = rng.choice([nan, inf, -inf, 0.0, -0.0], size=3)
    return np.asarray(a, dtype=dtype)


SHAPES = {
    0: [()],
    1: [(1,), (4,), (9,), (25,), (2000,)],
    2: [(1, 1), (2, 3), (5, 9), (40, 40), (3, 500), (1200, 1)],
    3: [(2, 3, 4), (1, 1, 5), (11, 11, 11), (2, 1, 700)],
}
GRAD_FN = re.compile(r",\s*grad_fn=<\w+>")


@pytest.mark.parametrize("ndim", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_random_reprs_like_torch(dtype, ndim):
    """Random tensors, also leaves requiring grad and results of an op: the same text as torch's
    (grad_fn names left out: chainrule names its backward nodes its own way)."""
    rng = np.random.default_rng([ndim, len(dtype)])
    for i in range(40):
        shapes = SHAPES[ndim]
        array = random_array(rng, shapes[i % len(shapes)], dtype)
        grad = dtype.startswith("float") and i % 3

        def case(lib):
            t = lib.tensor(array, requires_grad=bool(grad))
            return t * 1 if grad == 2 else t

        expected = GRAD_FN.sub("", torch_text(repr(case(torch))))
        assert GRAD_FN.sub("", repr(on_cpu(case))) == expected, f"case {i}: {array.shape} {dtype}"


# ---------------------------------------------------------------- B. nn.Module


def network(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 4), nn.Sigmoid(),
                         nn.Sequential(nn.ReLU(), nn.Linear(4, 1, bias=False)))


def test_sequential_slice_keeps_the_names_of_its_modules():
    """``model[2:]`` still calls its first layer ``2``, in named_parameters, state_dict and repr."""

    def case(lib):
        part = network(lib)[2:]
        return [name for name, _ in part.named_parameters()], list(part.state_dict()), repr(part)

    th, cr = both(case)
    assert cr == th


def test_sequential_negative_index_and_slice():
    def case(lib):
        model = network(lib)
        return repr(model[-1]), repr(model[1:-1:2]), len(model[-2:])

    th, cr = both(case)
    assert cr == th


def test_assigning_a_parameter_keeps_its_place():
    """``lin.weight = nn.Parameter(...)`` replaces the weight where it was: before the bias."""

    def case(lib):
        lin = lib.nn.Linear(2, 3)
        lin.weight = lib.nn.Parameter(lib.zeros(3, 2))
        return [name for name, _ in lin.named_parameters()], [tuple(p.shape) for p in lin.parameters()]

    th, cr = both(case)
    assert cr == th


def test_assigning_a_submodule_keeps_its_place():
    def case(lib):
        model = network(lib)
        setattr(model, "0", lib.nn.Linear(2, 3, bias=False))
        return [name for name, _ in model.named_parameters()], repr(model)

    th, cr = both(case)
    assert cr == th


def with_extra_repr(lib):
    class Scaled(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = lib.nn.Linear(1, 1)

        def extra_repr(self):
            return "scale=2"

    return Scaled()


MODULES = {
    "mse_sum": lambda lib: lib.nn.MSELoss(reduction="sum"),
    "mse_none": lambda lib: lib.nn.MSELoss(reduction="none"),
    "mse_mean": lambda lib: lib.nn.MSELoss(),
    "linear": lambda lib: lib.nn.Linear(2, 3),
    "linear_without_bias": lambda lib: lib.nn.Linear(2, 3, bias=False),
    "activations": lambda lib: [lib.nn.Tanh(), lib.nn.Sigmoid(), lib.nn.ReLU(), lib.nn.Identity()],
    "nested_sequential": network,
    "named_sequential": lambda lib: lib.nn.Sequential(OrderedDict(hidden=lib.nn.Linear(2, 2), act=lib.nn.ReLU())),
    "empty_sequential": lambda lib: lib.nn.Sequential(),
    "extra_repr_and_children": with_extra_repr,
}


@pytest.mark.parametrize("case", MODULES.values(), ids=MODULES.keys())
def test_module_repr_like_torch(case):
    th, cr = both(case)
    assert repr(cr) == repr(th)
