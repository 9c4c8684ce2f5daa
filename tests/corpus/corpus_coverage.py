"""What the corpus exercises, as the README's "What chainrule covers" lists it.

``python tests/corpus/corpus_coverage.py`` prints the list; ``test_coverage.py`` fails when
the README's list (between its ``covers`` markers) is not this one. The list is read from the
programs' code: every ``torch...`` name they reach through their imports, and every attribute
they use that chainrule's ``Tensor``, ``nn.Module``, custom-Function ``ctx`` or graph node has.
"""
import ast
from pathlib import Path

import chainrule
from chainrule.autograd import FunctionCtx

CORPUS = Path(__file__).parent
MODULES = {"torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.autograd",
           "torch.autograd.function", "torch.autograd.functional", "torch.autograd.graph",
           "torch.optim", "torch.testing",
           "torch.func", "torch.cuda"}
KINDS = {  # the attributes of chainrule's objects that programs reach through a variable
    "torch.Tensor": {n for n in dir(chainrule.Tensor) if not n.startswith("_")},
    "torch.nn.Module": {n for n in dir(chainrule.nn.Module) if not n.startswith("_")},
    "ctx": {n for n in dir(FunctionCtx) if not n.startswith("_")},
    "grad_fn": {"next_functions", "name", "register_hook", "register_prehook", "metadata"},
}


def programs():
    return sorted(p for p in CORPUS.glob("*/*.py"))


def _aliases(tree):
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "torch":
                    names[alias.asname or "torch"] = alias.name if alias.asname else "torch"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node, aliases):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    parts.append(aliases[node.id])
    return ".".join(reversed(parts))


def exercised():
    """The set of PyTorch names the corpus uses, as ``torch.x``, ``torch.Tensor.x``, ``ctx.x``..."""
    used = set()
    for path in programs():
        tree = ast.parse(path.read_text())
        aliases = _aliases(tree)
        used.update(name for name in aliases.values() if name not in MODULES)
        resolved = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and id(node) not in resolved:
                dotted = _dotted(node, aliases)
                if dotted is not None:
                    inner = node.value
                    while isinstance(inner, ast.Attribute):
                        resolved.add(id(inner))
                        inner = inner.value
                    prefix = dotted
                    while prefix.rsplit(".", 1)[0] not in MODULES and "." in prefix:
                        prefix = prefix.rsplit(".", 1)[0]  # torch.float64.is_floating_point
                    used.add(prefix)
                    continue
                if node.attr.startswith("_saved_"):
                    used.add("grad_fn._saved_*")
                for kind, attributes in KINDS.items():
                    if node.attr in attributes:
                        used.add(f"{kind}.{node.attr}")
    return used


def listing():
    """The README's list: one line per module or kind, names in backticks, sorted."""
    groups = {}
    for name in exercised():
        owner, _, attribute = name.rpartition(".")
        groups.setdefault(owner, set()).add(attribute)
    order = ["torch", "torch.Tensor", "torch.nn", "torch.nn.Module", "torch.nn.functional",
             "torch.nn.init", "torch.optim", "torch.autograd", "torch.autograd.function",
             "torch.autograd.functional", "torch.autograd.graph", "ctx", "grad_fn"]
    lines = []
    for owner in sorted(groups, key=lambda o: (order.index(o) if o in order else len(order), o)):
        names = ", ".join(f"`{n}`" for n in sorted(groups[owner], key=lambda n: (n.lower(), n)))
        lines.append(f"- `{owner}`: {names}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(listing())
