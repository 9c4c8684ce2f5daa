"""coursework: the shared helpers of the automatic differentiation course.

- :mod:`coursework.problems` holds the data of every lesson (fixed seeds, plain
  NumPy), so that a notebook and its checks start from the very same numbers;
- :mod:`coursework.checks` holds every check that a test cell runs: it computes
  the reference in PyTorch itself and, when an answer is wrong, says what was
  expected, what came back, and which known misconception fits;
- :mod:`coursework.i18n` gives every message in the notebook's language (English,
  or Simplified Chinese: :func:`use_language`).
"""

from .i18n import use_language

__all__ = ["checks", "problems", "use_language"]
