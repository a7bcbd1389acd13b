"""The training kernels of src/kernels/te_training.cc, as KernelGraph steps call them.

They carry no ``@op`` tag (no inference lowering emits them) and are kept out
of :data:`~.registry.KERNELS` on purpose: the tuner's cost model one-hot
encodes the sorted inference kernel names (``tune.features``), so adding names
there would shift every stored feature vector.  :func:`~.registry.spec` and
the source copier look here after KERNELS; ``tests/test_kernel_abi.py`` checks
these entries against the header like every other KernelSpec.

One C function can back several steps (the KernelSpec key differs from the
function): a parameter-gradient function computes the weight and the bias
gradient in one call, but the training step asks for them separately
(``*_grad_bias_*`` passes NULL for the filter gradient and the input) so that
each gradient is produced right before its update and dies there, and a
bias-only layer does not keep its forward input alive.  The "null" argument
word passes NULL for an optional pointer.

Softmax cross-entropy has two outputs (dL/dlogits and the loss): a Relax call
with a tuple of outputs, which ``KernelGraph.from_relax`` turns into
single-output steps (a ``te_buffer`` step declares the loss's buffer, as
patch-based inference declares its stage buffers, and the kernel writes it
through its last operand).  The QAS updates write the parameter in place
("inout"), with the momentum velocity as the step's persistent state (kept
in the arena between steps, zeroed by the reset function).
"""
from __future__ import annotations

from typing import Dict

from .abi import SOURCES
from .spec import KernelSpec


def _prod(*names):
    def macs(a: Dict) -> int:
        total = 1
        for n in names:
            total *= int(a.get(n, 1))
        return total
    return macs


def _spec(op_type: str, function: str, args, macs=None, **kw) -> KernelSpec:
    from .abi import FUNCTIONS

    struct = FUNCTIONS[function].params[0][0].replace("const ", "").rstrip("*")
    extra = {"macs": macs} if macs is not None else {}
    return KernelSpec(op_type, SOURCES[function], list(args), struct, function=function, **extra, **kw)


_FC_IN = _prod("batch", "input_depth", "output_depth")
_CONV = _prod("batch", "output_h", "output_w", "output_c", "kernel_h", "kernel_w", "input_c")
_DW = _prod("batch", "output_h", "output_w", "output_c", "kernel_h", "kernel_w")
_BIAS = _prod("batch", "output_h", "output_w", "output_c")

#: Every training kernel a KernelGraph step may name.
TRAINING_KERNELS: Dict[str, KernelSpec] = {
    # dX from dY and the (old) int8 filter: inputs [dY, filter, filter scales].
    "te_fully_connected_grad_input_s8": _spec("FULLY_CONNECTED_GRAD_INPUT", "te_fully_connected_grad_input_s8",
                                              ["p", "in0", "in1", "in2", "out"], _FC_IN),
    "te_conv2d_grad_input_s8": _spec("CONV_2D_GRAD_INPUT", "te_conv2d_grad_input_s8",
                                     ["p", "in0", "in1", "in2", "out"], _CONV),
    "te_depthwise_conv2d_grad_input_s8": _spec("DEPTHWISE_CONV_2D_GRAD_INPUT", "te_depthwise_conv2d_grad_input_s8",
                                               ["p", "in0", "in1", "in2", "out"], _DW),
    # The same, added into the gradient an earlier step gave that input (a residual's skip):
    # inputs [that gradient (written in place), dY, filter, filter scales]; attrs accumulate = 1.
    "te_fully_connected_grad_input_acc_s8": _spec("FULLY_CONNECTED_GRAD_INPUT", "te_fully_connected_grad_input_s8",
                                                  ["p", "in1", "in2", "in3", "inout"], _FC_IN, inplace=True),
    "te_conv2d_grad_input_acc_s8": _spec("CONV_2D_GRAD_INPUT", "te_conv2d_grad_input_s8",
                                         ["p", "in1", "in2", "in3", "inout"], _CONV, inplace=True),
    "te_depthwise_conv2d_grad_input_acc_s8": _spec("DEPTHWISE_CONV_2D_GRAD_INPUT",
                                                   "te_depthwise_conv2d_grad_input_s8",
                                                   ["p", "in1", "in2", "in3", "inout"], _DW, inplace=True),
    # dW only: inputs [dY, forward input, filter scales]; the bias gradient pointer is NULL.
    "te_fully_connected_grad_weights_s8": _spec("FULLY_CONNECTED_GRAD_WEIGHTS", "te_fully_connected_grad_weights_s8",
                                                ["p", "in0", "in1", "in2", "out", "null"], _FC_IN),
    "te_conv2d_grad_weights_s8": _spec("CONV_2D_GRAD_WEIGHTS", "te_conv2d_grad_weights_s8",
                                       ["p", "in0", "in1", "in2", "out", "null"], _CONV),
    "te_depthwise_conv2d_grad_weights_s8": _spec("DEPTHWISE_CONV_2D_GRAD_WEIGHTS",
                                                 "te_depthwise_conv2d_grad_weights_s8",
                                                 ["p", "in0", "in1", "in2", "out", "null"], _DW),
    # db only: inputs [dY, filter scales]; neither the forward input nor dW is touched (NULL).
    "te_fully_connected_grad_bias_s8": _spec("FULLY_CONNECTED_GRAD_BIAS", "te_fully_connected_grad_weights_s8",
                                             ["p", "in0", "null", "in1", "null", "out"],
                                             _prod("batch", "output_depth")),
    "te_conv2d_grad_bias_s8": _spec("CONV_2D_GRAD_BIAS", "te_conv2d_grad_weights_s8",
                                    ["p", "in0", "null", "in1", "null", "out"], _BIAS),
    "te_depthwise_conv2d_grad_bias_s8": _spec("DEPTHWISE_CONV_2D_GRAD_BIAS", "te_depthwise_conv2d_grad_weights_s8",
                                              ["p", "in0", "null", "in1", "null", "out"], _BIAS),
    "te_avg_pool_grad_f32": _spec("AVERAGE_POOL_2D_GRAD", "te_avg_pool_grad_f32", ["p", "in0", "out"]),
    # inputs [forward input, dY]
    "te_max_pool_grad_s8": _spec("MAX_POOL_2D_GRAD", "te_max_pool_grad_s8", ["p", "in0", "in1", "out"]),
    "te_mean_grad_f32": _spec("MEAN_GRAD", "te_mean_grad_f32", ["p", "in0", "out"]),
    # inputs [forward output, dY] -> dX
    "te_activation_grad_s8": _spec("ACTIVATION_GRAD", "te_activation_grad_s8", ["p", "in0", "in1", "out"]),
    # inputs [dY, forward output]: dX written over dY, which dies there.
    "te_activation_grad_inplace_s8": _spec("ACTIVATION_GRAD", "te_activation_grad_s8",
                                           ["p", "in1", "inout", "inout"], inplace=True),
    # inputs [int8 logits, int32 label] -> (dL/dlogits, loss): a call with two outputs in Relax; the
    # loss's buffer is the step's input 2 (KernelGraph.from_relax declares it with te_buffer).
    "te_softmax_cross_entropy_s8": _spec("SOFTMAX_CROSS_ENTROPY", "te_softmax_cross_entropy_s8",
                                         ["p", "in0", "in1", "out", "in2"], _prod("batch", "classes")),
    # inputs [parameter (updated in place), gradient, weight scales]
    # dW computed and applied one filter row at a time: inputs [filter (in place), dY, forward input, scales].
    "te_fully_connected_sgd_s8": _spec("FULLY_CONNECTED_SGD", "te_fully_connected_sgd_s8",
                                       ["p", "inout", "in1", "in2", "in3", "scratch"], _FC_IN,
                                       scratch=lambda a: 4 * int(a["input_depth"]), inplace=True),
    # The same for a convolution, one output channel's filter at a time.
    "te_conv2d_sgd_s8": _spec("CONV_2D_SGD", "te_conv2d_sgd_s8", ["p", "inout", "in1", "in2", "in3", "scratch"],
                              _prod("batch", "output_h", "output_w", "channels", "kernel_h", "kernel_w", "input_c"),
                              scratch=lambda a: 4 * int(a["kernel_h"]) * int(a["kernel_w"]) * int(a["input_c"]),
                              inplace=True),
    "te_qas_sgd_s8": _spec("QAS_SGD", "te_qas_sgd_s8", ["p", "inout", "in1", "in2", "null"], _prod("size"),
                           inplace=True),
    "te_qas_sgd_s32": _spec("QAS_SGD", "te_qas_sgd_s32", ["p", "inout", "in1", "in2", "null"], _prod("size"),
                            inplace=True),
    # With momentum: the velocity is the step's state, one float per updated element.
    "te_qas_sgd_momentum_s8": _spec("QAS_SGD", "te_qas_sgd_s8", ["p", "inout", "in1", "in2", "state"], _prod("size"),
                                    inplace=True, state=lambda a: 4 * int(a["size"])),
    "te_qas_sgd_momentum_s32": _spec("QAS_SGD", "te_qas_sgd_s32", ["p", "inout", "in1", "in2", "state"],
                                     _prod("size"), inplace=True, state=lambda a: 4 * int(a["size"])),
}

__all__ = ["TRAINING_KERNELS"]
