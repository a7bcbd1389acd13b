"""Reads ``src/include/tinyengine_kernels.h``: the kernels' ABI is written once, in C.

* :func:`kernel_dir`: where ``include/tinyengine_kernels.h`` and ``kernels/*.cc`` are;
* :func:`parse_header`: every parameter struct (fields with C types) and every
  prototype (return type, parameters), with the ``@op``/``@macs``/``@size`` tags
  of the doc comment right above it (the header's introduction defines them);
* :func:`defining_sources`: which source file under ``kernels/`` defines each function;
* :func:`formula`: a tag's formula as a function of a parameter struct's fields.
"""
from __future__ import annotations

import ast
import dataclasses
import operator
import os
import re
from typing import Callable, Dict, List, Tuple

from ..errors import TinyEngineError

#: A C declaration: (C type, name).  Array fields are typed "int32_t[4]".
CDecl = Tuple[str, str]

HEADER = os.path.join("include", "tinyengine_kernels.h")


def kernel_dir() -> str:
    """Directory holding ``include/tinyengine_kernels.h`` and ``kernels/*.cc``.

    ``TINYENGINE_KERNEL_DIR`` overrides it; otherwise the ``src/`` of the
    checkout this package was installed from (editable install), or the copy
    shipped inside the package.
    """
    candidates = [os.environ.get("TINYENGINE_KERNEL_DIR", "")]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates.append(os.path.join(here, "_kernels"))
    candidates.append(os.path.normpath(os.path.join(here, "..", "..", "src")))
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, HEADER)):
            return c
    raise TinyEngineError("cannot find the kernel sources (src/); set TINYENGINE_KERNEL_DIR")


@dataclasses.dataclass(frozen=True)
class CFunction:
    """A function of tinyengine_kernels.h and the tags of its doc comment."""

    params: List[CDecl]
    returns: str = "void"
    tags: Dict[str, str] = dataclasses.field(default_factory=dict, compare=False)


def strip_comments(text: str) -> str:
    """C source without its comments."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _norm_type(t: str) -> str:
    t = re.sub(r"\s+", " ", t).strip()
    return re.sub(r"\s*\*", "*", t)


def _decl(text: str) -> CDecl:
    """'const int8_t* const* inputs' -> ('const int8_t* const*', 'inputs');
    'int32_t dims[4]' -> ('int32_t[4]', 'dims')."""
    text = re.sub(r"\s+", " ", text).strip()
    m = re.fullmatch(r"(.*?)\s*\b(\w+)\s*(\[\s*(\d+)\s*\])?", text)
    if not m:
        raise TinyEngineError(f"tinyengine_kernels.h: cannot parse the declaration {text!r}")
    ctype = _norm_type(m.group(1))
    if m.group(4):
        ctype += f"[{m.group(4)}]"
    return ctype, m.group(2)


_PROTOTYPE = re.compile(r"\b(void|int32_t)\s+(te_\w+)\s*\(([^;{)]*)\)\s*;")
_TAG = re.compile(r"^\s*\*?\s*@(op|macs|size)\s+(.+?)\s*$", re.M)


def _tags_above(text: str, start: int) -> Dict[str, str]:
    """Tags of the doc comment that ends right before ``start`` (only blanks between)."""
    before = text[:start].rstrip()
    if not before.endswith("*/"):
        return {}
    comment = before[before.rfind("/*"):]
    return {k: v.rstrip("*/ ").strip() for k, v in _TAG.findall(comment)}


def parse_header(path: str = "") -> Tuple[Dict[str, List[CDecl]], Dict[str, CFunction]]:
    """(structs, functions) of the header: {name: [(type, field)]}, {name: CFunction}."""
    path = path or os.path.join(kernel_dir(), HEADER)
    with open(path, encoding="utf-8") as fh:
        raw = fh.read()
    code = strip_comments(raw)
    structs = {}
    for body, name in re.findall(r"typedef\s+struct\s*\{(.*?)\}\s*(\w+)\s*;", code, flags=re.S):
        structs[name] = [_decl(f) for f in body.split(";") if f.strip()]
    functions: Dict[str, CFunction] = {}
    for m in _PROTOTYPE.finditer(raw):
        ret, name, params = m.groups()
        if re.search(r"/\*(?:(?!\*/).)*\Z", raw[:m.start()], flags=re.S):
            continue  # inside a comment
        if name in functions:
            raise TinyEngineError(f"tinyengine_kernels.h: {name} is declared twice")
        plist = [] if params.strip() in ("", "void") else [_decl(p) for p in params.split(",")]
        functions[name] = CFunction(plist, ret, _tags_above(raw, m.start()))
    return structs, functions


def defining_sources(root: str = "") -> Dict[str, str]:
    """Function -> the file under ``kernels/`` (e.g. ``te_conv2d.cc``, ``arm/arm_add_s8.cc``) defining it."""
    base = os.path.join(root or kernel_dir(), "kernels")
    out: Dict[str, str] = {}
    for dirpath, _, files in os.walk(base):
        for f in sorted(files):
            if not f.endswith(".cc"):
                continue
            path = os.path.join(dirpath, f)
            with open(path, encoding="utf-8") as fh:
                code = strip_comments(fh.read())
            for name in re.findall(r"\b(te_\w+)\s*\([^;{}]*\)\s*\{", code):
                out.setdefault(name, os.path.relpath(path, base).replace(os.sep, "/"))
    return out


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.floordiv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


def formula(text: str) -> Callable[[Dict], int]:
    """A tag's integer formula over struct fields, e.g. ``"input_h * input_w"``, as
    ``f(attrs) -> int`` (C's ``/`` on the non-negative sizes is floor division)."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise TinyEngineError(f"tinyengine_kernels.h: bad formula {text!r}: {exc}") from None

    def check(node):
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            check(node.left)
            check(node.right)
        elif not (isinstance(node, ast.Name) or (isinstance(node, ast.Constant) and isinstance(node.value, int))):
            raise TinyEngineError(f"tinyengine_kernels.h: formula {text!r} may only use fields, integers "
                                  f"and + - * / %")

    check(tree)

    def evaluate(node, attrs):
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](evaluate(node.left, attrs), evaluate(node.right, attrs))
        if isinstance(node, ast.Name):
            return int(attrs[node.id])
        return node.value

    return lambda attrs: evaluate(tree, attrs)
