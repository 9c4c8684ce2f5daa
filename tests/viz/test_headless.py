"""Every widget runs in a headless kernel (as nbconvert / nbgrader autograde run notebooks):
no hang, no error, nothing on stderr, no pyplot figure left open."""

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    "from coursework.widgets import (lesson1_graph, lesson2_seeds, lesson3_reuse,\n"
    "                                lesson4_per_sample, lesson5_loss_weights)",
    "lesson1_graph()",
    "lesson2_seeds()",
    "p = lesson3_reuse(); p.slider.value = 0.5; p",
    "lesson4_per_sample()",
    "p5 = lesson5_loss_weights(train_steps=5); p5.train_button.click(); p5",
    "import sys\n"
    "print('pyplot loaded' if 'matplotlib.pyplot' in sys.modules else 'no pyplot')\n"
    "print(p.readout.value.count('cw-grad'), p5.error.value == '')",
]


@pytest.mark.slow
def test_widgets_execute_headless_without_stderr(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    for cell in nb.cells:
        for out in cell.outputs:
            assert out.output_type != "error", out
            assert not (out.output_type == "stream" and out.name == "stderr"), out.text
    for cell in nb.cells[1:6]:
        (out,) = cell.outputs
        assert "application/vnd.jupyter.widget-view+json" in out.data
    assert nb.cells[-1].outputs[0].text.split("\n")[:2] == ["no pyplot", "1 True"]
