"""The operators a model may use, read from the kernel registry: each TFLite
operator some lowering record accepts, with the kernels (``@op`` tags of
``tinyengine_kernels.h``) that compute it and their data types, and the ONNX
operators of the QDQ import.  ``tvmc compile --list-operators`` prints it and
the README's table is this text."""
from __future__ import annotations

from typing import Dict, List, Tuple

#: C pointer types of kernel arguments -> tensor data types.
_DTYPES = {"int8_t": "int8", "int16_t": "int16", "int32_t": "int32", "int64_t": "int64", "float": "float32",
           "bool": "bool"}


def _kernel_dtypes(params) -> Tuple[str, str]:
    """(activation in, out) data types of a kernel from its prototype: the first
    tensor input and the output (weights, bias and scratch are not activations)."""
    ins, outs = [], []
    for ctype, name in params[1:]:  # the first argument is the parameter struct
        base = ctype.replace("const", "").replace("*", "").strip()
        if "*" not in ctype or base not in _DTYPES or name in ("scratch", "state"):
            continue
        (ins if "const" in ctype else outs).append(_DTYPES[base])
    if not outs:  # in place: the one buffer is read and written
        return ins[0], ins[0]
    if not ins:  # in place with a non-const buffer first
        return outs[0], outs[-1]
    data = [t for t in ins if t != "bool"] or ins  # SELECT's condition is not its data
    return data[0], outs[0]


def tflite_operators() -> List[Tuple[str, List[str], List[str]]]:
    """(TFLite operator, its data types, its kernels) of every operator the import accepts, by name."""
    from .frontend.tflite import supported_dtypes, supported_ops
    from .kernels.header import parse_header

    _, functions = parse_header()
    by_op: Dict[str, List[str]] = {}
    for name, fn in functions.items():
        for op in fn.tags.get("op", "").split():
            by_op.setdefault(op, []).append(name)
    from .frontend.tflite_fixups import NO_KERNEL

    accepted = supported_dtypes()
    rows = []
    for op in sorted(supported_ops()):
        types = accepted[op]
        kernels, dtypes = [], set()
        for k in sorted(by_op.get(op, [])):
            src, dst = _kernel_dtypes(functions[k].params)
            if src in types or dst in types:  # e.g. int8 SPACE_TO_DEPTH, not the int16 transpose
                kernels.append(k)
                dtypes.add(f"{src} -> {dst}")
        if not dtypes and op in NO_KERNEL:
            dtypes.add(NO_KERNEL[op])
        rows.append((op, sorted(dtypes) or [f"{'/'.join(types)} (no kernel of its own: a view, or a clamp folded "
                                            "into its producer)"], kernels))
    from .frontend.tflite_variables import VARIABLE_OPS, VARIABLE_OPS_NOTE

    rows += [(op, [VARIABLE_OPS_NOTE], []) for op in VARIABLE_OPS]
    return sorted(rows)


def onnx_operators() -> List[str]:
    """ONNX operators the QDQ import accepts."""
    from .frontend.onnx import SUPPORTED_OPS

    return sorted(SUPPORTED_OPS)


def operator_table() -> str:
    """The Markdown table of supported operators (what ``--list-operators`` prints)."""
    lines = ["| TFLite operator | data types | kernels |", "|---|---|---|"]
    for op, dtypes, kernels in tflite_operators():
        lines.append(f"| {op} | {'; '.join(dtypes)} | {', '.join(f'`{k}`' for k in kernels) or '-'} |")
    lines += ["", "ONNX (QDQ): " + ", ".join(onnx_operators())]
    return "\n".join(lines)
