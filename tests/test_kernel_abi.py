"""The kernels' C ABI (src/include/tinyengine_kernels.h) as the compiler reads it
(tinyengine_tvm/kernels/header.py).

(a) The package's header reader (kernels/header.py) sees every struct and
    prototype of the header (counted here with a separate regex) and
    ``STRUCTS`` / ``FUNCTIONS`` are what it reads; the ``@op`` tags give exactly the operators
    the lowering's records emit kernels for, a kernel declared and defined in
    C alone becomes a KernelSpec, and bad tags are refused; every
    ``KERNELS`` entry must call an existing
    function with arguments of the right kinds, defined in its source file;
    a function takes ``void* scratch`` exactly when it has a
    ``*_get_buffer_size()``.
(b) All kernels (portable and src/kernels/arm/) are built into a host shared
    library with the flags of runtime/host.py and, through ctypes, every
    ``*_get_buffer_size()`` must equal ``scratch_bytes(k, attrs)`` (what
    the planner reserves) over a sweep of shapes.  On the host the arm
    kernels build without __ARM_FEATURE_DSP (plain C, same algorithm, same
    scratch); their DSP build uses inline Cortex-M assembly and cannot run
    here.  The ``*_get_buffer_size()`` functions contain no DSP-dependent
    code, so (c) only checks that the DSP build compiles with -Werror and
    defines them.
(c) With arm-none-eabi-g++ (skipped without it): the kernels compile for
    Cortex-M4 and M7 with the DSP path selected, and every
    ``*_get_buffer_size()`` symbol is defined.
"""
from __future__ import annotations

import ctypes
import glob
import itertools
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from tinyengine_tvm.kernels import header
from tinyengine_tvm.kernels import (FUNCTIONS, KERNELS, STRUCTS, TRAINING_KERNELS, buffer_size_function, c_function,
                                    kernel_dir, scratch_bytes)

SRC = kernel_dir()
HEADER = os.path.join(SRC, "include", "tinyengine_kernels.h")
HOST_FLAGS = ["-std=c++17", "-O2", "-fPIC", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror"]


# --------------------------------------------------------------------------- header parser
def parse_header(path: str = HEADER):
    """(structs, functions) as the package reads them: {name: [(type, field)]}, {name: (ret, [(type, param)])}."""
    structs, functions = header.parse_header(path)
    return structs, {name: (fn.returns, fn.params) for name, fn in functions.items()}


def test_parser_sees_the_whole_header():
    text = header.strip_comments(open(HEADER).read())
    structs, functions = parse_header()
    assert len(structs) == text.count("typedef struct")
    # every te_ function-call-like declaration was parsed
    declared = set(re.findall(r"\b(te_\w+)\s*\(", text))
    assert declared == set(functions), declared ^ set(functions)


# --------------------------------------------------------------------------- (a) header == python
def test_structs_match_header():
    structs, _ = parse_header()
    assert structs and sorted(structs) == sorted(STRUCTS)
    for name, fields in STRUCTS.items():
        assert structs[name] == fields, f"{name}: header {structs[name]} != kernels.STRUCTS {fields}"


def test_prototypes_match_header():
    _, functions = parse_header()
    assert functions and sorted(functions) == sorted(FUNCTIONS)
    for name, fn in FUNCTIONS.items():
        ret, params = functions[name]
        assert ret == fn.returns, f"{name} returns {ret}, kernels.FUNCTIONS says {fn.returns}"
        assert params == fn.params, f"{name}: header {params} != kernels.FUNCTIONS {fn.params}"


def test_every_kernel_takes_one_struct_then_tensors():
    structs_used = set()
    for name, fn in FUNCTIONS.items():
        first_type, first_name = fn.params[0]
        assert first_name == "p" and first_type.startswith("const te_") and first_type.endswith("_params*"), name
        structs_used.add(first_type[len("const "):-1])
        for ctype, pname in fn.params[1:]:
            assert ctype.endswith("*"), f"{name}: scalar argument {pname} outside the parameter struct"
        if name.endswith("_reset_state"):
            assert fn.returns == "void" and [p for _, p in fn.params] == ["p", "state"], name
            continue
        suffix = next((s for s in ("_get_buffer_size", "_get_state_size") if name.endswith(s)), None)
        if suffix:
            assert fn.returns == "int32_t" and len(fn.params) == 1
            kernel = FUNCTIONS[name[:-len(suffix)]]
            assert kernel.params[0] == fn.params[0], f"{name} must take the kernel's own struct"
        else:
            assert fn.returns == "void", name
    assert structs_used == set(STRUCTS), f"structs no function takes: {set(STRUCTS) - structs_used}"


def test_state_and_state_size_go_together():
    for name, fn in FUNCTIONS.items():
        if name.endswith(("_get_buffer_size", "_get_state_size", "_reset_state")):
            continue
        takes = any(p == "state" for _, p in fn.params)
        assert takes == (f"{name}_get_state_size" in FUNCTIONS), \
            f"{name}: a kernel takes state exactly when it has {name}_get_state_size()"


def test_scratch_and_buffer_size_go_together():
    for name, fn in FUNCTIONS.items():
        if name.endswith(("_get_buffer_size", "_get_state_size", "_reset_state")):
            continue
        takes = any(p == "scratch" for _, p in fn.params)
        if takes:
            assert fn.params[-1] == ("void*", "scratch"), f"{name}: scratch must be the last argument, void*"
        assert takes == (f"{name}_get_buffer_size" in FUNCTIONS), \
            f"{name}: a kernel takes scratch exactly when it has {name}_get_buffer_size()"


_ARG_KIND = {
    "out": lambda t: t.endswith("*") and not t.startswith("const"),
    "inout": lambda t: t.endswith("*"),
    "inputs": lambda t: t in ("const int8_t* const*", "const int16_t* const*"),
    "scratch": lambda t: t == "void*",
    "state": lambda t: t.endswith("*") and not t.startswith("const"),
    "null": lambda t: t.endswith("*"),  # a NULL pointer: the function must take a pointer there
}


def test_kernel_specs_call_their_functions_right():
    # The training kernels' table (kept apart from KERNELS) obeys the same rules.
    assert not set(KERNELS) & set(TRAINING_KERNELS)
    for kernel, spec in {**KERNELS, **TRAINING_KERNELS}.items():
        fn_name = c_function(kernel)
        if fn_name == "":
            assert not spec.args
            continue
        fn = FUNCTIONS[fn_name]
        assert spec.struct and fn.params[0][0] == f"const {spec.struct}*", kernel
        assert len(spec.args) == len(fn.params), f"{kernel}: {spec.args} vs {fn.params}"
        for word, (ctype, pname) in zip(spec.args, fn.params):
            if word == "p":
                assert pname == "p", kernel
            elif word.startswith("in") and word[2:].isdigit():
                assert ctype.endswith("*") and ctype.count("*") == 1, f"{kernel}: {word} -> {ctype} {pname}"
            else:
                assert _ARG_KIND[word](ctype), f"{kernel}: {word} -> {ctype} {pname}"
        for field, attr in spec.field_attrs.items():
            assert field in spec.fields, f"{kernel}: field_attrs names unknown field {field}"
        # scratch: Python formula <=> C size function
        assert ("scratch" in spec.args) == (buffer_size_function(kernel) is not None), kernel
        if "scratch" not in spec.args:
            assert scratch_bytes(kernel, {}) == 0, kernel
        # the source file named defines the function
        text = open(os.path.join(SRC, "kernels", spec.source)).read()
        assert re.search(rf"\b{fn_name}\b|TE_ARM_DW\({fn_name},", text), f"{fn_name} not in {spec.source}"


def test_header_is_plain_c(tmp_path):
    """The header compiles as strict C99 (generated models include it from C)."""
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("gcc not found")
    src = tmp_path / "h.c"
    src.write_text('#include "tinyengine_kernels.h"\nint main(void) { return 0; }\n')
    res = subprocess.run([cc, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-I",
                          os.path.join(SRC, "include"), "-c", str(src), "-o", str(tmp_path / "h.o")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------- (b) C sizes == python sizes
_CTYPES = {"int32_t": ctypes.c_int32, "float": ctypes.c_float, "const int32_t*": ctypes.POINTER(ctypes.c_int32)}


def ctypes_struct(name: str):
    """A ctypes Structure laid out from STRUCTS[name] (== the header, by (a))."""
    fields = []
    for ctype, field in STRUCTS[name]:
        m = re.fullmatch(r"(\w+)\[(\d+)\]", ctype)
        fields.append((field, _CTYPES[m.group(1)] * int(m.group(2)) if m else _CTYPES[ctype]))
    return type(name, (ctypes.Structure,), {"_fields_": fields})


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ not found; cannot build the kernel library")
    out = tmp_path_factory.mktemp("abi")
    sources = sorted(glob.glob(os.path.join(SRC, "kernels", "*.cc")) +
                     glob.glob(os.path.join(SRC, "kernels", "arm", "*.cc")))
    so = str(out / "libte_kernels.so")
    cmd = [cxx, *HOST_FLAGS, "-shared", "-I", os.path.join(SRC, "include"), "-I", os.path.join(SRC, "kernels"),
           *sources, "-o", so]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    return ctypes.CDLL(so)


def _conv_attrs(kh, kw, ic, oc, sh, sw, h, w, dh=1, dw=1, pt=None, pl=None, depthwise=False, batch=1):
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    pt = (ekh - 1) // 2 if pt is None else pt
    pl = (ekw - 1) // 2 if pl is None else pl
    oh = max(1, (h + 2 * pt - ekh) // sh + 1)
    ow = max(1, (w + 2 * pl - ekw) // sw + 1)
    return dict(batch=batch, input_h=h, input_w=w, input_c=ic, output_h=oh, output_w=ow,
                output_c=ic if depthwise else oc, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw,
                dilation_h=dh, dilation_w=dw, pad_top=pt, pad_left=pl, depth_multiplier=1, input_offset=5,
                output_offset=-3, act_min=-128, act_max=127)


def _conv_sweep():
    kernels = [(1, 1), (3, 3), (5, 5), (7, 7), (1, 3), (3, 1), (2, 5)]
    for (kh, kw), ic, oc, s, (h, w) in itertools.product(
            kernels, [1, 2, 3, 4, 5, 8, 12, 16, 27, 32], [1, 3, 8, 33], [1, 2], [(7, 7), (16, 9), (1, 12)]):
        if h < kh or w < kw:
            continue
        yield _conv_attrs(kh, kw, ic, oc, s, s, h, w)
    yield _conv_attrs(3, 3, 6, 10, 1, 1, 20, 20, dh=2, dw=2)                 # dilated
    yield _conv_attrs(3, 3, 3, 16, 2, 2, 96, 96, pt=0, pl=1)                # first layer, one-sided padding
    yield _conv_attrs(1, 1, 320, 1280, 1, 1, 7, 7, batch=2)                # wide pointwise


def _dw_sweep():
    for k, s, ch, (h, w) in itertools.product([3, 5, 7], [1, 2], [1, 3, 8, 32],
                                               [(7, 7), (8, 8), (12, 5), (5, 12), (40, 40), (1, 9)]):
        if h < k // 2 + 1 or w < k // 2 + 1:
            continue
        yield _conv_attrs(k, k, ch, ch, s, s, h, w, depthwise=True)
    for kh, kw, sh, sw in [(1, 1, 1, 1), (2, 3, 1, 2), (3, 5, 2, 1), (9, 9, 3, 3), (4, 4, 2, 2)]:
        yield _conv_attrs(kh, kw, 16, 16, sh, sw, 17, 23, depthwise=True)
    yield _conv_attrs(3, 3, 8, 8, 1, 1, 10, 10, pt=0, pl=0, depthwise=True)   # valid padding


def _dw_line_sweep():
    for k, s, d, ch, n in itertools.product([1, 3, 5, 9], [1, 2, 3], [1, 2, 8], [1, 5, 64], [9, 25, 49]):
        if (k - 1) * d + 1 > n:
            continue
        yield _conv_attrs(k, 1, ch, ch, s, 1, n, 1, dh=d, depthwise=True)
        yield _conv_attrs(1, k, ch, ch, 1, s, 1, n, dw=d, depthwise=True)


def _batch_matmul_sweep():
    for rows, cols, depth in itertools.product((1, 3, 8), (1, 2, 7, 16), (1, 4, 9, 64)):
        yield dict(batches=2, batch_dims=[2, 1, 1, 1], lhs_batch_strides=[rows * depth, 0, 0, 0],
                   rhs_batch_strides=[depth * cols, 0, 0, 0], rows=rows, cols=cols, depth=depth,
                   lhs_row_stride=depth, lhs_depth_stride=1, rhs_depth_stride=cols, rhs_col_stride=1,
                   lhs_offset=3, rhs_offset=-2, output_offset=1, output_multiplier=1 << 30, output_shift=-7)


def _svdf_sweep():
    for batch, filters, memory, rank in itertools.product((1, 3), (4, 12), (1, 5), (1, 2)):
        yield dict(batch=batch, input_size=7, num_filters=filters, memory_size=memory, rank=rank,
                   input_zero_point=0, state_zero_point=0, output_zero_point=0, feature_multiplier=1 << 30,
                   feature_shift=0, output_multiplier=1 << 30, output_shift=0)


def _lstm_sweep():
    for batch, time, units in itertools.product((1, 3), (1, 4), (1, 5, 16)):
        yield dict(batch=batch, time=time, input_size=6, units=units, time_major=0, input_zero_point=0,
                   hidden_zero_point=0, input_multiplier=[1 << 30] * 4, input_shift=[0] * 4,
                   recurrent_multiplier=[1 << 30] * 4, recurrent_shift=[0] * 4, forget_multiplier=1 << 30,
                   forget_shift=-14, update_multiplier=1 << 30, update_shift=-18, hidden_multiplier=1 << 30,
                   hidden_shift=-22, cell_scale_power=-11, cell_clip=0, cell_gate_tanh=1)


def _fc_sgd_sweep():
    for depth in (1, 3, 8, 17, 64, 128, 255, 1000):
        yield dict(batch=1, input_depth=depth, output_depth=3, input_offset=5, input_scale=0.1, learning_rate=0.01)


def _sweep_for(kernel):
    if kernel == "te_fully_connected_sgd_s8":
        return list(_fc_sgd_sweep())
    if kernel == "te_conv2d_sgd_s8":
        return [dict(a, input_scale=0.1, learning_rate=0.01, channels=a["output_c"]) for a in _conv_sweep()]
    if "svdf" in kernel:
        return list(_svdf_sweep())
    if "lstm" in kernel:
        return list(_lstm_sweep())
    if "batch_matmul" in kernel:
        return list(_batch_matmul_sweep())
    if "depthwise_conv1d" in kernel:
        return list(_dw_line_sweep())
    if "depthwise" in kernel:
        cases = list(_dw_sweep())
        m = re.search(r"_(\d)x\1s(\d)_", kernel)
        if m:  # a specialization is only called for its own shape
            k, s = int(m.group(1)), int(m.group(2))
            cases = [a for a in cases if (a["kernel_h"], a["kernel_w"], a["stride_h"], a["stride_w"]) == (k, k, s, s)]
        return cases
    return list(_conv_sweep())


def _c_field(Params, field, value):
    """A ctypes value for a struct field (array fields take a list)."""
    kind = dict(Params._fields_)[field]
    return kind(*value) if isinstance(value, (list, tuple)) else value


def _sized_kernels():
    return sorted(k for k in {**KERNELS, **TRAINING_KERNELS} if buffer_size_function(k) is not None)


def test_every_buffer_size_function_is_checked():
    """Every *_get_buffer_size() of the header is reached from some KERNELS or TRAINING_KERNELS entry."""
    reached = {buffer_size_function(k) for k in _sized_kernels()}
    assert reached == {f for f in FUNCTIONS if f.endswith("_get_buffer_size")}


@pytest.mark.parametrize("kernel", _sized_kernels())
def test_buffer_size_matches_python(lib, kernel):
    spec = {**KERNELS, **TRAINING_KERNELS}[kernel]
    Params = ctypes_struct(spec.struct)
    fn = getattr(lib, buffer_size_function(kernel))
    fn.argtypes = [ctypes.POINTER(Params)]
    fn.restype = ctypes.c_int32
    cases = _sweep_for(kernel)
    assert len(cases) >= 8, f"{kernel}: too few shapes swept"
    for attrs in cases:
        p = Params(**{f: _c_field(Params, f, attrs[f]) for f in spec.fields})
        c_size = fn(ctypes.byref(p))
        assert c_size == scratch_bytes(kernel, attrs), f"{kernel} {attrs}: C {c_size} != Python {scratch_bytes(kernel, attrs)}"
        assert c_size > 0 and c_size % (4 if "arm" in kernel else 1) == 0


@pytest.mark.parametrize("kernel", sorted(k for k in KERNELS if f"{c_function(k)}_get_state_size" in FUNCTIONS))
def test_state_size_matches_python(lib, kernel):
    from tinyengine_tvm.kernels import state_bytes

    spec = KERNELS[kernel]
    Params = ctypes_struct(spec.struct)
    fn = getattr(lib, f"{c_function(kernel)}_get_state_size")
    fn.argtypes = [ctypes.POINTER(Params)]
    fn.restype = ctypes.c_int32
    for attrs in _sweep_for(kernel):
        p = Params(**{f: _c_field(Params, f, attrs[f]) for f in spec.fields})
        assert fn(ctypes.byref(p)) == state_bytes(kernel, attrs) > 0, f"{kernel} {attrs}"


def test_dequantize_float_equals_tflm_double(lib):
    """te_quant_params.scale is a float: DEQUANTIZE in float equals TFLM's
    static_cast<float>(double(scale) * (x - zero_point)) for every int8 x."""
    Params = ctypes_struct("te_quant_params")
    lib.te_dequantize_s8_f32.argtypes = [ctypes.POINTER(Params), ctypes.c_void_p, ctypes.c_void_p]
    lib.te_dequantize_s8_f32.restype = None
    rng = np.random.default_rng(9)
    x = np.arange(-128, 128, dtype=np.int8)
    scales = np.concatenate([rng.uniform(1e-6, 1.0, 300), 10.0 ** rng.uniform(-12, 6, 300),
                             [1 / 256, 1 / 255, 0.1, 1e36, 1e-37]]).astype(np.float32)
    for scale in scales:
        zp = int(rng.integers(-128, 128))
        out = np.empty(x.size, np.float32)
        lib.te_dequantize_s8_f32(ctypes.byref(Params(size=x.size, scale=float(scale), zero_point=zp)),
                                 x.ctypes.data, out.ctypes.data)
        want = (np.float64(scale) * (x.astype(np.float64) - zp)).astype(np.float32)
        assert np.array_equal(out.view(np.uint32), want.view(np.uint32)), f"scale {scale!r} zp {zp}"


# --------------------------------------------------------------------------- (c) the DSP build
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7"])
def test_dsp_build_defines_buffer_size_functions(tmp_path, cpu):
    gxx, nm = shutil.which("arm-none-eabi-g++"), shutil.which("arm-none-eabi-nm")
    if gxx is None or nm is None:
        pytest.skip("arm-none-eabi-g++ not found: run scripts/install_arm_toolchain.sh")
    fpu = "fpv4-sp-d16" if cpu == "cortex-m4" else "fpv5-d16"
    flags = [f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=hard", f"-mfpu={fpu}", "-std=c++17", "-O2",
             "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror",
             "-I", os.path.join(SRC, "include"), "-I", os.path.join(SRC, "kernels")]
    probe = subprocess.run([gxx, *flags, "-dM", "-E", "-x", "c++", "/dev/null"], capture_output=True, text=True)
    assert "__ARM_FEATURE_DSP 1" in probe.stdout, f"{cpu}: the DSP path would not be selected"
    symbols = set()
    for src in sorted(glob.glob(os.path.join(SRC, "kernels", "*.cc")) +
                      glob.glob(os.path.join(SRC, "kernels", "arm", "*.cc"))):
        obj = str(tmp_path / (os.path.basename(src) + ".o"))
        res = subprocess.run([gxx, *flags, "-c", src, "-o", obj], capture_output=True, text=True)
        assert res.returncode == 0, f"{src}:\n{res.stderr}"
        out = subprocess.run([nm, "--defined-only", obj], capture_output=True, text=True).stdout
        symbols |= {line.split()[-1] for line in out.splitlines() if " T " in line}
    assert {f for f in FUNCTIONS} <= symbols, set(FUNCTIONS) - symbols


# --------------------------------------------------------------------------- (a) tags
def test_op_tags_are_the_kernels_of_the_lowering():
    """Every @op function is a portable kernel, of an operator some lowering record
    names (a TFLite operator, or the name of a record only ONNX models reach) or the
    frontend imports straight into its kernel call."""
    from tinyengine_tvm.frontend.tflite import supported_ops
    from tinyengine_tvm.kernels.portable import TAGGED

    tagged = {name for name, fn in FUNCTIONS.items() if "op" in fn.tags}
    assert tagged == set(TAGGED) and len(tagged) >= 19
    from tinyengine_tvm.transform.lowering import all_lowerings

    # TFLite operators, and the records no TFLite operator reaches (ONNX's LayerNormalization)
    ops = set(supported_ops()) | {rec.name for rec in all_lowerings() if not rec.tflite}
    for name in tagged:
        assert KERNELS[name].op_type in ops, f"{name}: @op {KERNELS[name].op_type} is imported by no record"
    # the costs the header states
    conv = dict(batch=1, output_h=4, output_w=5, output_c=6, kernel_h=3, kernel_w=2, input_c=7)
    assert KERNELS["te_conv2d_s8"].macs(conv) == 4 * 5 * 6 * 3 * 2 * 7
    assert KERNELS["te_depthwise_conv2d_inplace_s8"].scratch(dict(input_h=9, input_w=11)) == 99
    assert KERNELS["te_add_s8"].macs({}) == 0


def _kernel_tree(tmp_path, declaration: str, definition: str):
    """A copy of src/ with one more declaration in the header and one more kernel source."""
    root = tmp_path / "src"
    shutil.copytree(SRC, root)
    header = root / "include" / "tinyengine_kernels.h"
    text = header.read_text()
    at = text.rindex("#ifdef __cplusplus")
    header.write_text(text[:at] + declaration + "\n" + text[at:])
    (root / "kernels" / "new_op_s8.cc").write_text(definition)
    return str(root)


_NEW_DECL = """typedef struct { int32_t size; int32_t k; } te_new_params;
/**
 * A new operator.
 * @op NEW_OP
 * @macs size * (k + 1) / 2
 */
void te_new_op_s8(const te_new_params* p, const int8_t* input, int8_t* output, void* scratch);
/** Scratch of te_new_op_s8.
 * @size 4 * ((size + 3) / 4)
 */
int32_t te_new_op_s8_get_buffer_size(const te_new_params* p);
"""
_NEW_DEF = ('#include "tinyengine_kernels.h"\n'
            'void te_new_op_s8(const te_new_params* p, const int8_t* input, int8_t* output, void* scratch) {\n'
            '  (void)p; (void)input; (void)output; (void)scratch;\n}\n'
            'int32_t te_new_op_s8_get_buffer_size(const te_new_params* p) { return 4 * ((p->size + 3) / 4); }\n')


def _spec_in(root: str, monkeypatch):
    """KERNELS of a fresh import of tinyengine_tvm.kernels reading ``root``."""
    import importlib
    import sys

    import tinyengine_tvm

    monkeypatch.setenv("TINYENGINE_KERNEL_DIR", root)
    monkeypatch.setattr(tinyengine_tvm, "kernels", tinyengine_tvm.kernels)  # restored with sys.modules
    for mod in [m for m in sys.modules if m.startswith("tinyengine_tvm.kernels")]:
        monkeypatch.delitem(sys.modules, mod)
    return importlib.import_module("tinyengine_tvm.kernels")


def test_a_kernel_written_in_c_alone_becomes_a_kernel_spec(tmp_path, monkeypatch):
    kernels = _spec_in(_kernel_tree(tmp_path, _NEW_DECL, _NEW_DEF), monkeypatch)
    spec = kernels.KERNELS["te_new_op_s8"]
    assert (spec.op_type, spec.source, spec.args, spec.struct) == (
        "NEW_OP", "new_op_s8.cc", ["p", "in0", "out", "scratch"], "te_new_params")
    assert spec.fields == ["size", "k"]
    assert spec.macs(dict(size=10, k=4)) == 25 and kernels.scratch_bytes("te_new_op_s8", dict(size=10, k=0)) == 12
    assert kernels.buffer_size_function("te_new_op_s8") == "te_new_op_s8_get_buffer_size"
    assert "new_op_s8.cc" in kernels.kernel_sources_for(["te_new_op_s8"])


@pytest.mark.parametrize("declaration, definition, message", [
    (_NEW_DECL.replace("@size 4 * ((size + 3) / 4)", "no tag"), _NEW_DEF, "needs an @size tag"),
    (_NEW_DECL.replace("(k + 1) / 2", "__import__('os')"), _NEW_DEF, "may only use fields"),
    (_NEW_DECL.replace("(k + 1) / 2", "k +"), _NEW_DEF, "bad formula"),
    (_NEW_DECL, "/* nothing */\n", "no kernels/*.cc defines it"),
    (_NEW_DECL.replace("const te_new_params* p, const int8_t* input,", "const int8_t* input, const te_new_params* p,", 1),
     _NEW_DEF, "must take `const te_*_params* p` first"),
])
def test_bad_tags_are_refused(tmp_path, monkeypatch, declaration, definition, message):
    from tinyengine_tvm.errors import TinyEngineError

    root = _kernel_tree(tmp_path, declaration, definition)
    with pytest.raises(TinyEngineError, match=re.escape(message)):
        _spec_in(root, monkeypatch)
