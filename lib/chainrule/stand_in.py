"""chainrule standing in for PyTorch: ``import torch`` gives chainrule, for a whole program.

``python -m chainrule script.py`` runs a PyTorch script on chainrule, unchanged; in a notebook,
``chainrule.install_as_torch()`` in a cell does the same for the cells after it. Each ``torch``
module is its chainrule namesake (``torch.nn.functional`` is ``chainrule.nn.functional``...).
What chainrule lacks stops the program with one line naming the PyTorch API (``NotCovered``),
not an ``AttributeError`` hinting at a name that happens to be close.
"""
import importlib
import importlib.abc
import importlib.util
import sys

README = 'see "What chainrule covers" in README.md'


class NotCovered(AttributeError):
    """A PyTorch API chainrule does not have. An ``AttributeError``, so ``hasattr`` still works."""

    def __init__(self, api):
        super().__init__(f"{api}: chainrule does not cover this PyTorch API ({README})")
        self.api = api


class ModuleNotCovered(ModuleNotFoundError):
    """A PyTorch module chainrule has no namesake for (``torch.utils.data``...)."""

    def __init__(self, name):
        super().__init__(f"{name}: chainrule does not cover this PyTorch module ({README})", name=name)
        self.api = name


def not_covered_in(torch_name):
    """A module ``__getattr__`` (PEP 562): a missing public name is a PyTorch API chainrule lacks."""
    def __getattr__(name):
        if name.startswith("_"):  # Python's own probes (__path__, __wrapped__...): plain misses
            raise AttributeError(f"module {torch_name!r} has no attribute {name!r}")
        raise NotCovered(f"{torch_name}.{name}")
    return __getattr__


def _missing_tensor_attribute(tensor, name):
    """``Tensor.__getattr__`` while chainrule stands in for torch: called only for a name Tensor
    lacks. (Not defined on Tensor for good: on Python 3.11 a class with a ``__getattr__`` loses
    the interpreter's fast attribute access, which every op's hot path uses.)"""
    if name.startswith("_"):
        raise AttributeError(f"'Tensor' object has no attribute '{name}'")
    raise NotCovered(f"torch.Tensor.{name}")


def _missing_node_attribute(node, name):
    """``Node.__getattr__`` while chainrule stands in for torch (see ``_missing_tensor_attribute``):
    a public name, or ``_raw_saved_*``, is a graph node API chainrule lacks."""
    if name.startswith("_") and not name.startswith("_raw_saved_"):
        raise AttributeError(f"'{type(node).__name__}' object has no attribute '{name}'")
    raise NotCovered(f"torch.autograd.graph.Node.{name}")


def chainrule_name(name):
    """The chainrule module standing in for the ``torch`` module ``name``."""
    return "chainrule" + name[len("torch"):]


class _TorchFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torch`` and ``torch.*`` first; loading one puts its chainrule namesake in its place."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch" and not name.startswith("torch."):
            return None
        try:
            found = importlib.util.find_spec(chainrule_name(name))
        except ModuleNotFoundError:  # its parent is a module, not a package
            found = None
        if found is None:
            raise ModuleNotCovered(name)
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return None  # a placeholder, replaced in sys.modules by exec_module

    def exec_module(self, module):
        # The import system returns what sys.modules holds under the name after this call.
        sys.modules[module.__name__] = importlib.import_module(chainrule_name(module.__name__))


class install_as_torch:
    """Make ``import torch`` (and ``torch.nn``, ``torch.autograd``...) give chainrule.

    A plain call switches for the rest of the process; ``with chainrule.install_as_torch():``
    switches back at the end. Modules that imported torch before keep the real one: call this
    first (in a notebook, in the first cell).
    """

    def __init__(self):
        from .engine import Node
        from .tensor import Tensor
        self.finder = _TorchFinder()
        self.had_getattr = "__getattr__" in Tensor.__dict__
        Tensor.__getattr__ = _missing_tensor_attribute
        Node.__getattr__ = _missing_node_attribute
        self.replaced = {name: module for name, module in sys.modules.items()
                         if name == "torch" or name.startswith("torch.")}
        for name in self.replaced:
            del sys.modules[name]
        sys.meta_path.insert(0, self.finder)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    def remove(self):
        from .engine import Node
        from .tensor import Tensor
        if not self.had_getattr and "__getattr__" in Tensor.__dict__:
            del Tensor.__getattr__
            if "__getattr__" in Node.__dict__:
                del Node.__getattr__
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        for name in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
            del sys.modules[name]
        sys.modules.update(self.replaced)
