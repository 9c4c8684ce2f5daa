"""chainrule standing in for torch: ``python -m chainrule script.py`` and ``install_as_torch()``."""
import subprocess
import sys
import textwrap

import pytest
import torch

import chainrule
from chainrule.stand_in import NotCovered


def run_switched(tmp_path, source):
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run([sys.executable, "-m", "chainrule", str(script)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)


def test_a_script_importing_torch_and_its_submodules_gets_chainrule(tmp_path):
    done = run_switched(tmp_path, """
        import sys
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        from torch import autograd, optim
        import torch.func
        import torch.testing
        print(torch.__name__, nn.__name__, F.__name__, autograd.__name__, optim.__name__)
        print(torch.Tensor([2, 1]).requires_grad_() * 2, sys.argv[0].endswith("program.py"))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "chainrule chainrule.nn chainrule.nn.functional chainrule.autograd chainrule.optim",
        "tensor([4., 2.], grad_fn=<MulBackward0>) True"]
    assert done.stderr == ""


@pytest.mark.parametrize("line, api", [
    ("torch.fft.fft(torch.ones(2))", "torch.fft"),
    ("torch.ones(2).cumprod(0)", "torch.Tensor.cumprod"),
    ("torch.nn.functional.gelu(torch.ones(2))", "torch.nn.functional.gelu"),
    ("import torch.utils.data", "torch.utils"),
    ("from torch.autograd.forward_ad import dual_level", "torch.autograd.forward_ad"),
    ("from torch.func import linearize", "torch.func.linearize"),
    ("(torch.ones(2, requires_grad=True) * 2).grad_fn._raw_saved_self", "torch.autograd.graph.Node._raw_saved_self"),
    ("torch.ones(2, requires_grad=True).exp().grad_fn.register_multi_grad_hook", "torch.autograd.graph.Node.register_multi_grad_hook"),
])
def test_a_missing_api_stops_with_one_line_naming_it(tmp_path, line, api):
    done = run_switched(tmp_path, f"import torch\nprint('before')\n{line}\nprint('after')\n")
    assert done.returncode == 1
    assert done.stdout == "before\n"
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"{tmp_path / 'program.py'}:3: ")
    assert f"{api}: chainrule does not cover this PyTorch" in done.stderr
    assert "What chainrule covers" in done.stderr and "Did you mean" not in done.stderr


def test_other_errors_keep_their_traceback(tmp_path):
    done = run_switched(tmp_path, "import torch\ntorch.ones(2) @ torch.ones(3)\n")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError" in done.stderr


def test_usage_without_a_script():
    done = subprocess.run([sys.executable, "-m", "chainrule"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: python -m chainrule script.py" in done.stderr


def test_install_as_torch_in_a_notebook_cell_and_back():
    with chainrule.install_as_torch():
        import torch as switched
        import torch.nn.functional as functional
        assert switched is chainrule and functional is chainrule.nn.functional
        assert not hasattr(switched, "compile")  # hasattr works: the error is an AttributeError
        with pytest.raises(NotCovered, match=r"^torch\.compile: chainrule does not cover"):
            switched.compile
    import torch as real
    assert real is torch


def test_a_missing_tensor_method_is_named_without_a_close_match_hint():
    x = chainrule.ones(2)
    with chainrule.install_as_torch():
        with pytest.raises(NotCovered) as error:
            x.cumprod(0)
        assert not hasattr(x, "_private_thing") and not hasattr(chainrule.nn.Parameter(x), "cumprod")
    assert str(error.value) == ('torch.Tensor.cumprod: chainrule does not cover this PyTorch API '
                                '(see "What chainrule covers" in README.md)')
    # Only while standing in: a __getattr__ on Tensor would slow every attribute access (3.11)
    assert "__getattr__" not in chainrule.Tensor.__dict__


@pytest.mark.parametrize("args, shape", [(([2, 1],), (2,)), ((2, 3), (2, 3)), ((), (0,)),
                                         ((torch.Size([3]),), (3,))])
def test_the_legacy_tensor_constructor_makes_float32(args, shape):
    args = tuple(chainrule.Size(a) if isinstance(a, torch.Size) else a for a in args)
    made, theirs = chainrule.Tensor(*args), torch.Tensor(*[a if not isinstance(a, chainrule.Size)
                                                           else torch.Size(a) for a in args])
    assert tuple(made.shape) == tuple(theirs.shape) == shape
    assert made.dtype is chainrule.float32 and made.is_leaf and not made.requires_grad
    if args and isinstance(args[0], list):
        assert made.tolist() == theirs.tolist()


def test_the_legacy_constructor_refuses_a_number_like_torch():
    for lib in (torch, chainrule):
        with pytest.raises(TypeError, match=r"new\(\): data must be a sequence \(got float\)"):
            lib.Tensor(2.5)
