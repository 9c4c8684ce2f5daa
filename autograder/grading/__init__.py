"""The grading machinery behind ``python -m autograder``."""

import os as _os
import sys as _sys

# nbgrader's Gradebook runs the `alembic` script that sits next to this Python: make sure it
# is found even when the virtual environment is not activated.
_bin = _os.path.dirname(_sys.executable)
if _bin not in _os.environ.get("PATH", "").split(_os.pathsep):
    _os.environ["PATH"] = _bin + _os.pathsep + _os.environ.get("PATH", "")
