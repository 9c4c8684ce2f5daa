"""Run a corpus program after ``torch.manual_seed(0)``, as every run of the corpus does.

``python run_seeded.py program.py`` runs it on PyTorch; ``python -m chainrule run_seeded.py
program.py`` runs the very same on chainrule (``import torch`` here is then chainrule), so
that a program drawing random numbers without seeding them, as learners' posts do, draws the
same numbers in both runs.
"""
import runpy
import sys

import torch

torch.manual_seed(0)
program = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(program, run_name="__main__")
