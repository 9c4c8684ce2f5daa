"""``python -m chainrule script.py [args...]``: run a PyTorch script with chainrule as ``torch``.

Where the script uses something chainrule does not have, it stops with one line on stderr that
names the PyTorch API and the script's line, and exit status 1.
"""
import os
import re
import runpy
import sys
import traceback

from .stand_in import ModuleNotCovered, NotCovered, install_as_torch

USAGE = "usage: python -m chainrule script.py [args...]"


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    script = argv[0]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script.py` sets it
    install_as_torch()
    try:
        runpy.run_path(script, run_name="__main__")
    except (NotCovered, ModuleNotCovered) as error:
        print(f"{_where(error, script)}{error}", file=sys.stderr)
        return 1
    except ImportError as error:
        missing = _missing_torch_api(error)
        if missing is None:
            raise
        print(f"{_where(error, script)}{missing}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:
        if error.filename == script:
            print(f"chainrule: can't open file {script!r}: {error.strerror}", file=sys.stderr)
            return 2
        raise
    return 0


def _missing_torch_api(error):
    """What an ImportError of the stand-in says, in one line: ``from torch import vmap`` (Python
    reports the name it could not import) or ``import torch.autograd.forward_ad`` (Python finds
    that chainrule.autograd is not a package before asking the stand-in)."""
    if isinstance(error, ModuleNotFoundError):
        if error.name and error.name.split(".")[0] == "torch":
            return ModuleNotCovered(error.name)
        return None
    named = re.fullmatch(r"cannot import name '(\w+)' from '(chainrule[\w.]*)'.*", str(error), re.S)
    if named:
        return NotCovered("torch" + named[2][len("chainrule"):] + "." + named[1])
    return None


def _where(error, script):
    """``program.py:12: ``: the innermost line of the program's own code in the traceback (not
    chainrule's, not Python's import machinery)."""
    library = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not f.filename.startswith(("<", library))]
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
