"""PyTorch programs from the learning material, run on PyTorch and on chainrule: same text out.

Each ``<source>/*.py`` here is a program written in the style of one source learners read (the
seed posts of the course, PyTorch's autograd tutorials and notes, d2l.ai, micrograd's tests,
torch.func's tutorials and API examples).
It runs twice, ``python run_seeded.py program.py`` on PyTorch and ``python -m chainrule
run_seeded.py program.py`` with chainrule standing in for torch, and both must print the same
text, on stdout and on stderr (warnings), with the same exit status. Only what cannot be the
same is made equal first: object addresses, and the module in a type's name (``torch.float64``
and ``chainrule.float64``, ``<class 'torch.Tensor'>`` and ``<class 'chainrule.tensor.Tensor'>``).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent
PROGRAMS = sorted(p for p in CORPUS.glob("*/*.py"))


def normalized(text):
    text = re.sub(r"0x[0-9a-f]+", "0x...", text)
    text = re.sub(r" \(Triggered internally at [^)]*\)", "", text)  # where in PyTorch's C++
    # PyTorch warning about its own internals as torch.func loads (torch.jit.script deprecated)
    text = re.sub(r"[^\n]*/site-packages/torch/[^\n]*DeprecationWarning[^\n]*\n  warnings\.warn\(\n", "", text)
    text = re.sub(r"<class '(?:torch|chainrule)(?:\.\w+)*\.(\w+)'>", r"<class '\1'>", text)
    return re.sub(r"\bchainrule\.", "torch.", text)


def run(program, *switch):
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, *switch, str(CORPUS / "run_seeded.py"), program.name],
                          capture_output=True, text=True, cwd=program.parent, env=env, timeout=300)
    return done.returncode, normalized(done.stdout), normalized(done.stderr)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_program_prints_the_same_on_chainrule(program):
    status, out, err = run(program, "-m", "chainrule")
    torch_status, torch_out, torch_err = run(program)
    assert torch_status == 0, f"the program fails on PyTorch itself:\n{torch_err}"
    assert err == torch_err
    assert out == torch_out
    assert status == torch_status


def test_every_source_has_programs():
    sources = {p.parent.name for p in PROGRAMS}
    assert sources == {"seeds", "pytorch_tutorials", "autograd_mechanics", "autograd_api", "d2l",
                       "micrograd", "torch_func"}
