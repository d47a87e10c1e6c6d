"""Reading a submission's code without running it: does an exercise only call the reference it was asked to write?

For each exercise the checks name the library functions that *are* its answer (``forbidden``: ``decode`` for the
lens, ``capture_residuals`` for the residual capture, ...). Starting from the learner's function, this follows
every top-level function and name of the notebook that it uses, and reports a forbidden name anywhere on that
path. Constructs that can hide a call from such a reading (``exec``, ``eval``, ``__import__``, ``importlib``,
``getattr`` with a computed name, ``sys.modules``, ``builtins``) are reported for review, without costing points.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

SUSPICIOUS_CALLS = {"exec", "eval", "compile", "__import__", "globals", "setattr", "delattr"}
SUSPICIOUS_NAMES = {"importlib", "builtins", "__builtins__", "ctypes", "subprocess"}
SUSPICIOUS_ATTRIBUTES = {"sys.modules", "os.system", "os.fork", "os.kill", "os._exit"}


@dataclass
class CodeReport:
    """What reading a submission's code found: forbidden names each exercise reaches, and what is worth a human look."""

    uses_reference: dict[str, list[str]] = field(default_factory=dict)  # exercise -> forbidden names it reaches
    review: list[str] = field(default_factory=list)  # one line per construct worth a human look


def _definitions(sources: list[str]) -> tuple[dict[str, list[ast.AST]], list[str]]:
    """Top-level name -> the nodes that define it, over every code cell that parses."""
    defs: dict[str, list[ast.AST]] = {}
    unparsable = []
    for i, source in enumerate(sources):
        try:
            tree = ast.parse(_strip_magics(source))
        except SyntaxError:
            unparsable.append(f"cell {i + 1} is not valid Python")
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defs.setdefault(node.name, []).append(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:  # x = ..., a, b = ...; not sys.modules[...] = ... (that defines no name)
                    names = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
                    for name in names:
                        if isinstance(name, ast.Name):
                            defs.setdefault(name.id, []).append(node)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    defs.setdefault((alias.asname or alias.name).split(".")[0], []).append(node)
    return defs, unparsable


def _strip_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _dotted(node: ast.expr) -> list[str]:
    """``lm.adapter.decode`` -> ["decode", "adapter.decode", "lm.adapter.decode"] (every dotted tail)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.insert(0, node.id)
    return [".".join(parts[i:]) for i in range(len(parts) - 1, -1, -1)]


def _names_used(node: ast.AST) -> set[str]:
    """Every name, attribute (with its dotted tails), imported name and identifier-like string in ``node``."""
    used = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            used.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            used.update(_dotted(sub))
        elif isinstance(sub, ast.alias):
            used.update(sub.name.split("."))
            if sub.asname:
                used.add(sub.asname)
        elif (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Name)
            and sub.func.id == "getattr"
            and len(sub.args) > 1
            and isinstance(sub.args[1], ast.Constant)
            and isinstance(sub.args[1].value, str)
        ):
            owner = sub.args[0]
            tails = _dotted(owner) if isinstance(owner, ast.Attribute) else [getattr(owner, "id", "")]
            used.update(f"{tail}.{sub.args[1].value}" for tail in tails if tail)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value.isidentifier():
            used.add(sub.value)  # getattr(lm.adapter, "decode")
    return used


def _local_names(node: ast.AST) -> set[str]:
    """A function's parameters and the names it assigns: they shadow the notebook's top-level names."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return set()
    args = node.args
    local = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            local.add(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub is not node:
            local.add(sub.name)  # a nested helper shadows a top-level one of the same name
        elif isinstance(sub, ast.arg):
            local.add(sub.arg)
        elif isinstance(sub, ast.alias):
            local.add((sub.asname or sub.name).split(".")[0])
    return local


def _reachable(start: str, defs: dict[str, list[ast.AST]]) -> list[ast.AST]:
    """The definitions ``start`` depends on: followed through the top-level names each one uses freely."""
    seen, todo, nodes = {start}, [start], []
    while todo:
        for node in defs.get(todo.pop(), []):
            nodes.append(node)
            for name in _names_used(node) - _local_names(node):
                if name in defs and name not in seen:
                    seen.add(name)
                    todo.append(name)
    return nodes


def _review(node: ast.AST) -> list[str]:
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in SUSPICIOUS_CALLS:
            found.append(f"calls {sub.func.id}()")
        elif (
            isinstance(sub, ast.Call)
            and isinstance(sub.func, ast.Name)
            and sub.func.id == "getattr"
            and len(sub.args) > 1
            and not isinstance(sub.args[1], ast.Constant)
        ):
            found.append("getattr() with a computed name")
        elif isinstance(sub, ast.Name) and sub.id in SUSPICIOUS_NAMES:
            found.append(f"uses {sub.id}")
        elif isinstance(sub, ast.Attribute) and set(_dotted(sub)) & SUSPICIOUS_ATTRIBUTES:
            found.append(f"uses {sorted(set(_dotted(sub)) & SUSPICIOUS_ATTRIBUTES)[0]}")
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in sub.names] + (
                [sub.module] if isinstance(sub, ast.ImportFrom) and sub.module else []
            )
            found += [f"imports {m}" for m in mods if m.split(".")[0] in SUSPICIOUS_NAMES]
    return found


def inspect_code(sources: list[str], forbidden: dict[str, tuple[str, ...]]) -> CodeReport:
    """``sources``: the learner's code cells; ``forbidden``: exercise -> the library names that are its answer
    (a bare name such as ``capture_residuals``, or a dotted tail such as ``adapter.decode``)."""
    defs, unparsable = _definitions(sources)
    report = CodeReport(review=list(unparsable))
    for exercise, names in forbidden.items():
        nodes = _reachable(exercise, defs)
        hits = sorted({n for node in nodes for n in _names_used(node)} & set(names))
        if hits:
            report.uses_reference[exercise] = hits
        for node in nodes:
            for line in _review(node):
                entry = f"{exercise}: {line}"
                if entry not in report.review:
                    report.review.append(entry)
    return report
