"""The numbers of every lesson, in one place and as plain NumPy arrays.

A notebook builds its chainrule and PyTorch tensors from these arrays; the
checks in :mod:`coursework.checks` rebuild their PyTorch reference from the
same functions, never from names in the student's namespace. Everything here
is deterministic: fixed values or NumPy generators with fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------
# Lesson 1 and 2: the small graph of the course brief.
#   a = x + 2*y,  b = a + z/2


def lesson1_leaves() -> dict[str, np.ndarray]:
    """The leaves of the course brief's graph: x = [2, 1], y = [1, 3], z = [5, 2]."""
    return {
        "x": np.array([2.0, 1.0]),
        "y": np.array([1.0, 3.0]),
        "z": np.array([5.0, 2.0]),
    }


def lesson1_exercise_leaves() -> dict[str, np.ndarray]:
    """The leaves of lesson 1's API exercise."""
    return {"u": np.array([1.0, -2.0, 0.5]), "v": np.array([3.0, 1.0, 2.0])}


# --------------------------------------------------------------------------
# Lesson 3: one Linear(1, 1, bias=False) used twice.

LESSON3_W = 0.9472
LESSON3_X = 10.0
LESSON3_Y = 5.0


def lesson3_rnn(k: int = 3, steps: int = 4, seed: int = 3) -> dict[str, np.ndarray]:
    """A square weight, a start state and a target for the unrolled layer."""
    rng = np.random.default_rng(seed)
    return {
        "W": rng.uniform(-0.8, 0.8, size=(k, k)),
        "h0": rng.normal(size=(1, k)),
        "target": rng.normal(size=(1, k)),
        "steps": steps,
    }


# --------------------------------------------------------------------------
# Lesson 4: Linear(1, 5, bias=False) -> sigmoid -> Linear(5, 1, bias=False).

LESSON4_N = 1000
LESSON4_HIDDEN = 5


def lesson4_weights(seed: int = 4) -> dict[str, np.ndarray]:
    """The two weights, drawn as PyTorch's default init would (uniform in +-1/sqrt(fan_in))."""
    rng = np.random.default_rng(seed)
    return {
        "0.weight": rng.uniform(-1.0, 1.0, size=(LESSON4_HIDDEN, 1)),
        "2.weight": rng.uniform(-1.0, 1.0, size=(1, LESSON4_HIDDEN)) / math.sqrt(LESSON4_HIDDEN),
    }


def lesson4_features(n: int = LESSON4_N) -> np.ndarray:
    """n scalar inputs evenly spread over [-3, 3], shape (n, 1)."""
    return np.linspace(-3.0, 3.0, n).reshape(n, 1)


def lesson4_targets(features: np.ndarray) -> np.ndarray:
    """What the little network is trained to fit in the SGD exercise: tanh(x)."""
    return np.tanh(features)


# --------------------------------------------------------------------------
# Lesson 5: a small physics-informed network for  -u'' = pi^2 sin(pi x)  on (0, 1)
# with u(0) = 0 (Dirichlet) and u'(1) = -pi (Neumann); the exact solution is sin(pi x).

LESSON5_HIDDEN = 8


def lesson5_x(seed: int = 5, shape=(1, 10)) -> np.ndarray:
    """The `x = rand(1, 10)` of the course brief, fixed by a seed."""
    return np.random.default_rng(seed).random(shape)


def lesson5_weights(seed: int = 5) -> dict[str, np.ndarray]:
    """Weights of the 1 -> 8 (tanh) -> 1 network, in named_parameters() order."""
    rng = np.random.default_rng(seed + 100)
    h = LESSON5_HIDDEN
    return {
        "0.weight": rng.uniform(-1.0, 1.0, size=(h, 1)) * 2.0,
        "0.bias": rng.uniform(-1.0, 1.0, size=(h,)),
        "2.weight": rng.uniform(-1.0, 1.0, size=(1, h)) / math.sqrt(h),
        "2.bias": rng.uniform(-1.0, 1.0, size=(1,)) / math.sqrt(h),
    }


def lesson5_points(n_interior: int = 16) -> dict[str, np.ndarray]:
    """Collocation points: interior points, the Dirichlet point x=0 and the Neumann point x=1."""
    return {
        "interior": np.linspace(0.05, 0.95, n_interior).reshape(n_interior, 1),
        "dirichlet": np.array([[0.0]]),
        "neumann": np.array([[1.0]]),
    }


def lesson5_source(x):
    """The right-hand side f(x) = pi^2 sin(pi x) (NumPy array in, NumPy array out)."""
    return math.pi ** 2 * np.sin(math.pi * np.asarray(x))


LESSON5_NEUMANN_VALUE = -math.pi
LESSON5_ETA = 0.1  # how fast the loss weights follow their new estimates
