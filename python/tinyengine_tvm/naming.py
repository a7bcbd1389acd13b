"""How the model's tensor names are shown to users.

Operators and buffers are named after the model's own tensors (see
``frontend/tensor_names``); values the compiler derives from a tensor add a
bracketed suffix (``conv1[patch 3]``, ``conv1[scratch]``).  In text for people
(report, errors, plot) a name is shown quoted, with control characters escaped
so a name cannot break a line:

    op #12 CONV_2D 'model/conv1/Relu'

One format everywhere: ``op #<index in execution order> <TFLite-style type> '<name>'``.
C comments use :func:`tinyengine_tvm.codegen.c_writer.comment_text` instead.
"""
from __future__ import annotations

from typing import Iterable, Optional


def quote_name(name: str, limit: Optional[int] = None) -> str:
    """``'name'``: printable characters (non-ASCII included) as they are, others
    escaped; cut in the middle to ``limit`` characters when given."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(name))
    return "'" + (shorten(text, limit) if limit else text) + "'"


def describe_op(meta: dict, index: Optional[int], limit: Optional[int] = None) -> str:
    """``op #i TYPE 'name'`` for operator ``index`` of compile metadata."""
    op = meta["ops"][index]
    return f"op #{index} {op['type']} {quote_name(op['name'], limit)}"


def buffer_list(names: Iterable[str], limit: Optional[int] = None) -> str:
    """Quoted, comma-separated buffer names (each cut to ``limit`` when given)."""
    return ", ".join(quote_name(n, limit) for n in names)


def shorten(text: str, limit: int = 48) -> str:
    """``text`` cut in the middle to at most ``limit`` characters (for plot labels)."""
    if len(text) <= limit:
        return text
    keep = limit - 3
    return text[:keep - keep // 2] + "..." + text[len(text) - keep // 2:]
