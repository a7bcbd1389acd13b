"""The package's import structure (issue 9), read from the source with ``ast``.

(a) The module import graph of tinyengine_tvm, function-level (lazy) imports
    included, has no cycle.  Edges are the imports written in the source:
    ``from X import name`` is an edge to ``X.name`` when that is a module, else
    to ``X``; the implicit import of a module's parent packages is not an edge
    (every module would otherwise depend on ``tinyengine_tvm/__init__``).
(b) ``tinyengine_tvm.kernels``, the kernels' ABI, is a leaf: it imports the
    standard library, numpy, its own modules and ``tinyengine_tvm.errors``.
(c) The C writer knows no kernel by name: no string literal of
    ``codegen/c_writer.py`` holds a ``te_*`` kernel symbol.
(d) Production code never imports ``tinyengine_tvm.testing`` (it may need
    extra packages such as TFLM, and holds test doubles like fault injection).
"""
from __future__ import annotations

import ast
import os
import re
import sys
from typing import Dict, Iterator, List, Set, Tuple

import pytest

import tinyengine_tvm

PACKAGE_DIR = os.path.dirname(os.path.abspath(tinyengine_tvm.__file__))
PACKAGE = "tinyengine_tvm"
KERNELS = PACKAGE + ".kernels"
TRANSFORM = PACKAGE + ".transform"


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-len(".py")].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _modules() -> Dict[str, Tuple[str, bool]]:
    """module name -> (path, is a package's __init__)."""
    out = {}
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                out[_module_name(path)] = (path, f == "__init__.py")
    return out


MODULES = _modules()


def _imports(module: str) -> Iterator[Tuple[int, str]]:
    """(line, absolute name) of every import of ``module``, lazy ones included:
    a module of the package where the target is one, else the name imported."""
    path, is_package = MODULES[module]
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield node.lineno, sub if sub in MODULES else target


def _graph() -> Dict[str, Set[str]]:
    return {m: {t for _, t in _imports(m) if t in MODULES and t != m} for m in MODULES}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def _in_transform(cycle: List[str]) -> bool:
    return all(m.startswith(TRANSFORM + ".") for m in cycle)


def test_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = [c for c in _cycles(_graph()) if not _in_transform(c)]
    assert not cycles, f"import cycles: {cycles}"


def test_no_import_cycles_in_transform():
    cycles = [c for c in _cycles(_graph()) if _in_transform(c)]
    assert not cycles, f"import cycles: {cycles}"


def test_kernels_is_a_leaf():
    assert KERNELS in MODULES
    allowed_third_party = {"numpy"}
    bad = []
    for module in MODULES:
        if module != KERNELS and not module.startswith(KERNELS + "."):
            continue
        for line, target in _imports(module):
            top = target.split(".")[0]
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                ok = target == KERNELS or target.startswith(KERNELS + ".") or target == PACKAGE + ".errors"
            else:
                ok = top == "__future__" or top in sys.stdlib_module_names or top in allowed_third_party
            if not ok:
                bad.append(f"{module}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_the_old_registry_module_is_gone():
    """The registry lives in tinyengine_tvm.kernels only (codegen/kernel_specs.py was removed)."""
    users = [f"{m}:{line}" for m in MODULES for line, t in _imports(m) if t == PACKAGE + ".codegen.kernel_specs"]
    assert not users and PACKAGE + ".codegen.kernel_specs" not in MODULES, users


_KERNEL_NAME = re.compile(r"(?<![A-Za-z0-9_])te_[A-Za-z0-9_]+")


def _string_literals(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_kernel_name_pattern():
    assert _KERNEL_NAME.search('"te_conv2d_s8"')
    assert not _KERNEL_NAME.search("__attribute__((aligned(16)))")
    assert not _KERNEL_NAME.search('#include "tinyengine_kernels.h"')


def test_c_writer_knows_no_kernel_names():
    path, _ = MODULES[PACKAGE + ".codegen.c_writer"]
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    from tinyengine_tvm.kernels import KERNELS as registry

    hits = [(line, text) for line, text in _string_literals(tree) if _KERNEL_NAME.search(text)]
    assert not hits, f"kernel names in c_writer.py string literals: {hits}"
    names = set(registry)
    idents = [(n.lineno, n.id) for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in names]
    assert not idents, idents


TESTING = PACKAGE + ".testing"


def test_no_production_module_imports_testing():
    found = [f"{m}:{line} imports {t}" for m in MODULES if not (m == TESTING or m.startswith(TESTING + "."))
             for line, t in _imports(m) if t == TESTING or t.startswith(TESTING + ".")]
    assert found == []


def test_the_import_reader_sees_relative_lazy_and_absolute_imports(tmp_path, monkeypatch):
    src = ("from ..testing.reference import random_inputs\n"
           "def f():\n    from .. import testing\n"
           "import tinyengine_tvm.testing.faults\n")
    path = tmp_path / "probe.py"
    path.write_text(src)
    monkeypatch.setitem(MODULES, PACKAGE + ".micro.probe", (str(path), False))
    got = {t for _, t in _imports(PACKAGE + ".micro.probe")}
    assert {TESTING + ".reference", TESTING, TESTING + ".faults"} <= got
