"""Seeded mutations of serialized ONNX models, for robustness tests of the ONNX frontend.

Two families:

* :func:`field_mutation` edits one protobuf field of a valid model: an integer
  or float attribute value (strides, pads, axis, perm, kernel_shape, ...), a
  dimension of an initializer or of a graph input, an initializer's values
  (scales, zero points, weights, shapes: zero, negative, NaN, huge, wrong
  length), the ``raw_data`` length, a node input name, a tensor data type;
* :func:`byte_mutation` flips, overwrites, deletes or inserts bytes of the
  serialized model, or truncates it.

Every function is deterministic for a given ``numpy.random.Generator`` state
and returns ``(description, mutated_bytes)``.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["field_mutation", "byte_mutation", "mutate"]

# Integer values that break ranges and overflow int32 / int64 arithmetic.
_BAD_INTS = (0, -1, -2, 1, 2, 3, 7, 64, 255, 1 << 16, (1 << 31) - 1, 1 << 31, 1 << 40, -(1 << 62), (1 << 63) - 1)
_BAD_FLOATS = (0.0, -0.0, -1.0, 1e-45, 1e-30, 1e30, 3.4e38, float("inf"), float("-inf"), float("nan"), 0.5, 2.0)


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _mutate_attribute(model, rng) -> str:
    from onnx import AttributeProto

    sites = [(i, n, a) for i, n in enumerate(model.graph.node) for a in n.attribute
             if a.type in (AttributeProto.INT, AttributeProto.INTS, AttributeProto.FLOAT,
                           AttributeProto.FLOATS, AttributeProto.STRING)]
    if not sites:
        return _mutate_initializer_values(model, rng)
    i, n, a = _pick(rng, sites)
    what = int(rng.integers(4))
    if a.type == AttributeProto.INT:
        a.i = int(_pick(rng, _BAD_INTS))
        return f"node #{i} {n.op_type}.{a.name} = {a.i}"
    if a.type == AttributeProto.FLOAT:
        a.f = float(_pick(rng, _BAD_FLOATS))
        return f"node #{i} {n.op_type}.{a.name} = {a.f}"
    if a.type == AttributeProto.STRING:
        a.s = _pick(rng, (b"", b"bogus", b"SAME_UPPER", b"VALID", b"linear", b"cubic", b"reflect",
                          b"align_corners", b"ceil", b"tf_crop_and_resize"))
        return f"node #{i} {n.op_type}.{a.name} = {a.s!r}"
    values = list(a.ints) if a.type == AttributeProto.INTS else list(a.floats)
    if what == 0 and values:  # one element
        k = int(rng.integers(len(values)))
        values[k] = _pick(rng, _BAD_INTS) if a.type == AttributeProto.INTS else _pick(rng, _BAD_FLOATS)
    elif what == 1 and values:  # drop one
        del values[int(rng.integers(len(values)))]
    elif what == 2:  # append one
        values.append(_pick(rng, _BAD_INTS) if a.type == AttributeProto.INTS else _pick(rng, _BAD_FLOATS))
    else:  # empty
        values = []
    if a.type == AttributeProto.INTS:
        del a.ints[:]
        a.ints.extend(int(v) for v in values)
    else:
        del a.floats[:]
        a.floats.extend(float(v) for v in values)
    return f"node #{i} {n.op_type}.{a.name} = {values}"


def _mutate_dims(model, rng) -> str:
    g = model.graph
    tensors = [("initializer", t.name, t.dims) for t in g.initializer if len(t.dims)]
    tensors += [("input", vi.name, vi.type.tensor_type.shape.dim) for vi in g.input]
    tensors += [("output", vi.name, vi.type.tensor_type.shape.dim) for vi in g.output]
    kind, name, dims = _pick(rng, tensors)
    if not len(dims):
        return _mutate_attribute(model, rng)
    k = int(rng.integers(len(dims)))
    v = int(_pick(rng, _BAD_INTS))
    if kind == "initializer":
        if int(rng.integers(4)) == 0:
            del dims[k]
            return f"initializer {name} loses dim {k}"
        dims[k] = v
    elif int(rng.integers(5)) == 0:
        dims[k].Clear()
        dims[k].dim_param = "n"
        v = "n"
    else:
        dims[k].dim_value = v
    return f"{kind} {name} dim {k} = {v}"


def _mutate_initializer_values(model, rng) -> str:
    from onnx import numpy_helper

    g = model.graph
    if not len(g.initializer):
        return _mutate_dims(model, rng)
    k = int(rng.integers(len(g.initializer)))
    t = g.initializer[k]
    arr = numpy_helper.to_array(t).copy()
    what = int(rng.integers(6))
    if what == 0 and t.raw_data:  # wrong raw_data length
        cut = int(rng.integers(0, len(t.raw_data) + 4))
        t.raw_data = (t.raw_data + b"\x01\x02\x03")[:cut] if cut != len(t.raw_data) else t.raw_data + b"\x00"
        return f"initializer {t.name} raw_data length {len(t.raw_data)}"
    if what == 1 and arr.size:  # wrong element count, same declared dims
        flat = arr.reshape(-1)
        flat = flat[:-1] if int(rng.integers(2)) else np.concatenate([flat, flat[:1]])
        new = numpy_helper.from_array(flat, t.name)
        t.raw_data = new.raw_data
        return f"initializer {t.name} holds {flat.size} values for dims {list(t.dims)}"
    if what == 2:  # other data type, same bytes
        t.data_type = int(_pick(rng, (1, 2, 3, 5, 6, 7, 9, 10, 11, 16, 0, 99)))
        return f"initializer {t.name} data_type = {t.data_type}"
    if arr.size == 0:
        return f"initializer {t.name} (empty) unchanged"
    flat = arr.reshape(-1)
    idx = int(rng.integers(flat.size))
    if arr.dtype.kind == "f":
        flat[idx] = _pick(rng, _BAD_FLOATS)
    elif arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        flat[idx] = _pick(rng, (info.min, info.max, 0, -1 if info.min < 0 else 1, 2, 1 << min(30, info.bits - 2)))
    else:
        return f"initializer {t.name} ({arr.dtype}) unchanged"
    t.CopyFrom(numpy_helper.from_array(flat.reshape(arr.shape), t.name))
    return f"initializer {t.name}[{idx}] = {flat[idx]}"


def _mutate_wiring(model, rng) -> str:
    g = model.graph
    sites = [(i, n, k) for i, n in enumerate(g.node) for k in range(len(n.input))]
    i, n, k = _pick(rng, sites)
    what = int(rng.integers(3))
    if what == 0:
        n.input[k] = "does_not_exist"
    elif what == 1:
        n.input[k] = ""
    else:
        others = [o for m in g.node for o in m.output] + [t.name for t in g.initializer]
        n.input[k] = _pick(rng, others)
    return f"node #{i} {n.op_type}.input[{k}] = {n.input[k]!r}"


def _mutate_axis_attribute(model, rng) -> str:
    """Add or overwrite an attribute the node's operator knows (axis, perm, group, ...)."""
    from onnx import helper

    extra = {
        "QuantizeLinear": [("axis", 5), ("axis", -7), ("axis", 1), ("axis", 0)],
        "DequantizeLinear": [("axis", 5), ("axis", -7), ("axis", 1), ("axis", 3)],
        "Conv": [("group", 0), ("group", 2), ("group", -1), ("strides", [0, 1]), ("dilations", [1, -1]),
                 ("pads", [-1, 0, 0, 0]), ("pads", [1, 1]), ("kernel_shape", [3, 4]), ("kernel_shape", [0, 3])],
        "Gemm": [("transA", 1), ("transB", 0), ("transB", 5), ("alpha", 2.0)],
        "Concat": [("axis", 4), ("axis", -9), ("axis", 2)],
        "Transpose": [("perm", [0, 1, 1, 3]), ("perm", [0, 1]), ("perm", [0, 2, 3, 9])],
        "Softmax": [("axis", 7), ("axis", -3)],
        "Flatten": [("axis", 9), ("axis", -1)],
        "AveragePool": [("kernel_shape", [0, 3]), ("strides", [1, 0]), ("pads", [0, 0, -1, 0])],
        "MaxPool": [("kernel_shape", [3, -1]), ("strides", [0, 0]), ("pads", [9, 9, 9, 9])],
        "Resize": [("mode", "linear"), ("coordinate_transformation_mode", "bogus"), ("nearest_mode", "x")],
    }
    sites = [(i, n) for i, n in enumerate(model.graph.node) if n.op_type in extra]
    if not sites:
        return _mutate_attribute(model, rng)
    i, n = _pick(rng, sites)
    name, value = _pick(rng, extra[n.op_type])
    keep = [a for a in n.attribute if a.name != name]
    del n.attribute[:]
    n.attribute.extend(keep)
    n.attribute.append(helper.make_attribute(name, value))
    return f"node #{i} {n.op_type}.{name} = {value}"


_FIELD_MUTATIONS = (_mutate_attribute, _mutate_attribute, _mutate_axis_attribute, _mutate_dims,
                    _mutate_initializer_values, _mutate_initializer_values, _mutate_wiring)


def field_mutation(model_bytes: bytes, rng: np.random.Generator) -> Tuple[str, bytes]:
    """One protobuf-level field mutation of a serialized model."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    desc = _pick(rng, _FIELD_MUTATIONS)(model, rng)
    return desc, model.SerializeToString()


def byte_mutation(model_bytes: bytes, rng: np.random.Generator) -> Tuple[str, bytes]:
    """Flip, overwrite, delete or insert bytes, or truncate the serialized model."""
    data = bytearray(model_bytes)
    what = int(rng.integers(5))
    pos = int(rng.integers(1, len(data)))
    if what == 0:
        n = int(rng.integers(1, 4))
        for _ in range(n):
            p = int(rng.integers(1, len(data)))
            data[p] ^= 1 << int(rng.integers(8))
        return f"{n} bit flip(s) from {pos}", bytes(data)
    if what == 1:
        data[pos] = int(rng.integers(256))
        return f"byte {pos} overwritten", bytes(data)
    if what == 2:
        n = int(rng.integers(1, 9))
        del data[pos:pos + n]
        return f"{n} byte(s) deleted at {pos}", bytes(data)
    if what == 3:
        ins = bytes(int(b) for b in rng.integers(0, 256, size=int(rng.integers(1, 9))))
        data[pos:pos] = ins
        return f"{len(ins)} byte(s) inserted at {pos}", bytes(data)
    return f"truncated to {pos} bytes", bytes(data[:pos])


def mutate(model_bytes: bytes, rng: np.random.Generator) -> Tuple[str, bytes]:
    """A field mutation (2 in 3) or a byte mutation (1 in 3)."""
    if int(rng.integers(3)) < 2:
        return field_mutation(model_bytes, rng)
    return byte_mutation(model_bytes, rng)
