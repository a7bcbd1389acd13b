"""Production code never imports the test support package (tinyengine_tvm.testing):
it may need extra packages (TFLM) and holds test doubles such as fault injection."""
import ast
import os

import tinyengine_tvm

PACKAGE_DIR = os.path.dirname(os.path.abspath(tinyengine_tvm.__file__))
TESTING = "tinyengine_tvm.testing"


def _module_name(path: str) -> str:
    rel = os.path.relpath(path, os.path.dirname(PACKAGE_DIR))[:-len(".py")].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _imported(tree: ast.AST, module: str, is_package: bool):
    """(line, absolute module name) of every import in ``tree``, lazy ones included;
    ``from X import name`` yields both X and X.name (name may be a module)."""
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
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"


def _testing_imports():
    found = []
    for root, dirs, files in os.walk(PACKAGE_DIR):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(root, f)
            module = _module_name(path)
            if module == TESTING or module.startswith(TESTING + "."):
                continue
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read(), path)
            for line, target in _imported(tree, module, f == "__init__.py"):
                if target == TESTING or target.startswith(TESTING + "."):
                    found.append(f"{os.path.relpath(path, PACKAGE_DIR)}:{line} imports {target}")
    return sorted(set(found))


def test_no_production_module_imports_testing():
    assert _testing_imports() == []


def test_the_check_sees_relative_and_absolute_imports():
    src = ("from ..testing.reference import random_inputs\n"
           "def f():\n    from .. import testing\n"
           "import tinyengine_tvm.testing.faults\n"
           "from tinyengine_tvm.runtime import project\n")
    got = {t for _, t in _imported(ast.parse(src), "tinyengine_tvm.micro.mlperf_host", False)}
    assert {"tinyengine_tvm.testing.reference", "tinyengine_tvm.testing",
            "tinyengine_tvm.testing.faults"} <= got
    assert not any(t.startswith(TESTING) for t in
                   {t for _, t in _imported(ast.parse("from ..runtime import project\n"),
                                            "tinyengine_tvm.micro.cli", False)})
