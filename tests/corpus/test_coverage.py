"""The README's "What chainrule covers" list is what the corpus exercises (corpus_coverage.py)."""
import re
from pathlib import Path

import chainrule
from corpus_coverage import exercised, listing

README = Path(__file__).parents[2] / "README.md"


def test_readme_lists_what_the_corpus_exercises():
    block = re.search(r"<!-- covers: begin -->\n(.*)\n<!-- covers: end -->", README.read_text(), re.S)
    assert block, "README.md has no <!-- covers: begin/end --> block"
    assert block[1] == listing(), ("README.md's coverage list is out of step with tests/corpus; "
                                   "paste the output of `python tests/corpus/corpus_coverage.py`")


def test_every_torch_name_the_corpus_uses_exists_in_chainrule():
    for name in exercised():
        if name.startswith("torch."):
            target = chainrule
            for part in name.split(".")[1:]:
                target = getattr(target, part)  # NotCovered names the missing one
