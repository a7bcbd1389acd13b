"""The training step in Relax: the deployed int8 forward, the loss, the pruned backward pass
and the fused updates, as one function ``train_step`` added to the lowered module.

TVM's Relax gradient pass (``relax.transform.Gradient``) differentiates
Relax operators; after integer lowering the forward pass is a line of
``call_dps_packed`` calls to the project's int8 kernels, which it knows
nothing about (and the float QDQ graph before lowering is not the arithmetic
that runs on the device).  So the backward pass is built here by the
project's own rules, one rule per lowered forward kernel, and emitted as
Relax kernel calls (:mod:`tinyengine_tvm.kernel_call`) after a copy of the
forward bindings, in a function::

    train_step(input, label, <layer>.weight, <layer>.bias, ...)
        -> (model output, loss, updated <layer>.weight, updated <layer>.bias, ...)

The trained parameters are parameters of ``train_step`` and their updated
values are outputs, paired by the function's ``tinyengine.variables``
attribute: they are resource variables, as a TFLite model's VAR_HANDLE
variables are (:mod:`~tinyengine_tvm.frontend.tflite_variables`), so
``KernelGraph.from_relax`` keeps them in the arena (SRAM) for the whole run
and between runs, initialised from flash by the reset function; frozen
weights stay constants (flash).  The updates are in-place kernels (their
output is their input 0, which nothing reads afterwards, so value semantics
hold), a momentum velocity is the update step's persistent state, and
softmax cross-entropy is one call with two outputs (dL/dlogits and the
loss).  Every call the rules add carries a ``phase`` note (loss, backward or
update); the forward calls carry none.

What the rules produce, in reverse step order from the loss:

* softmax cross-entropy on the logits (the input of a final SOFTMAX, whose
  step stays for ``invoke``), giving dL/dlogits and the loss;
* per layer (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) whose output has a
  gradient: the fused clamp's mask (in place over dY), the input gradient
  only if a trained layer lies below (pruning), then for trained weights the
  weight gradient immediately followed by its QAS update (without momentum,
  a CONV_2D's or FULLY_CONNECTED's fused into one call that computes and
  applies one filter's gradient at a time), then likewise the bias: each
  gradient value dies at its update, and the planner reuses it;
* MEAN, AVERAGE_POOL_2D and MAX_POOL_2D pass gradients through (with their
  clamp's mask); ADD gives dY to both inputs (a residual's skip input first,
  the branch then adds into it: an in-place accumulating input gradient);
* reshapes are views: a gradient is keyed by the root of the activation.

:class:`AppendTrainingStep` is the same as a module pass.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Dict, List, Optional, Sequence, Set

import numpy as np
import tvm
from tvm import relax

from ..errors import TinyEngineError, UnsupportedModelError, UsageError
from ..frontend.tflite_variables import VARIABLES_ATTR
from ..kernel_call import make_kernel_call
from ..kernel_graph import KernelGraph, Step
from ..kernels import op_type
from ..transform.relax_utils import bindings, shape_of, substitute
from .config import TrainingConfig, resolve_layers
from .quantization import ModelQuant

#: Name of the training function in the module.
TRAIN_STEP = "train_step"
#: The note a call of the training step's loss, backward and update carries ("loss", "backward", "update").
PHASE = "phase"

#: Forward kernels with int8 weights and an int32 bias, and the family of their gradient kernels.
LAYER_KERNELS = {"te_conv2d_s8": "conv2d", "te_depthwise_conv2d_s8": "depthwise_conv2d",
                 "te_fully_connected_s8": "fully_connected",
                 # same operands and math; its output overwrites its input, which
                 # check_overwrites refuses wherever the backward pass reads that input
                 "te_depthwise_conv2d_inplace_s8": "depthwise_conv2d"}
_PASS_THROUGH = ("te_mean_s8", "te_avg_pool_s8", "te_max_pool_s8")
_ADD = ("te_add_s8", "te_add_inplace_s8")


@dataclasses.dataclass
class Layer:
    """A parameterised forward step (indices into the forward KernelGraph)."""

    index: int  # position among the model's layers
    step: int  # forward step index
    name: str
    family: str
    weight: int  # tensor indices
    bias: Optional[int]
    channels: int
    input_scale: float
    weight_scales: Optional[np.ndarray]  # float64, one per output channel (None: unknown)


@dataclasses.dataclass
class TrainableParameter:
    """A parameter kept in SRAM and updated by the training step."""

    name: str
    tensor: int  # in the training graph
    layer: str
    kind: str  # "weight" or "bias"
    trained_channels: int
    channels: int
    initial: np.ndarray = dataclasses.field(repr=False)  # the model file's values (flash)


@dataclasses.dataclass
class TrainingGraph:
    """The training step: its Relax module and the KernelGraph read back from ``train_step``."""

    module: tvm.IRModule  # ``main`` (the forward) and ``train_step``
    graph: KernelGraph
    forward_steps: int  # steps 0..forward_steps-1 are the forward pass (what invoke runs)
    layer_names: List[str]  # the model's layers in order (what the configuration's indices count)
    layers: List[Layer]  # those that are one step of this graph (not split into patches)
    parameters: List[TrainableParameter]
    label: int
    loss: int
    logits: int
    logits_scale: float


@dataclasses.dataclass
class _Selection:
    """What the configuration trains, resolved on the forward graph."""

    found: List[Layer]  # every layer step of the forward
    trained_steps: Set[int]
    weight_layers: Set[int]  # model layer indices
    bias_layers: Set[int]
    params: List[TrainableParameter]


class UnsafeForTraining(TinyEngineError):
    """A memory pass rewrote what this training step needs (a trained layer split into
    patches, or an activation the backward pass reads overwritten in place): compile the
    forward pass without that pass."""


class _Builder:
    """Emits ``train_step`` for one forward function; the analysis reads the forward's
    KernelGraph (tensor indices), the emitted values are Relax Vars."""

    def __init__(self, func: relax.Function, quant: ModelQuant, config: TrainingConfig,
                 layer_names: Optional[Sequence[str]] = None):
        self.func = func
        self.g = KernelGraph.from_relax(func)
        self.steps: List[Step] = self.g.steps
        self.quant = quant
        self.config = config
        self.layer_names = layer_names
        self.bb = relax.BlockBuilder()
        self.remap: Dict[relax.Var, relax.Expr] = {}  # forward Var -> its value in train_step
        self.param_of: Dict[int, relax.Var] = {}  # trained constant (forward index) -> train_step parameter
        self.updated: Dict[int, relax.Var] = {}  # trained constant -> its updated value
        self.scale_consts: Dict[str, relax.Expr] = {}

    # ------------------------------------------------------------------ values and calls
    def value(self, index: int) -> relax.Expr:
        """The train_step value of forward tensor ``index`` (a trained constant: its parameter)."""
        if index in self.param_of:
            return self.param_of[index]
        expr = self.g.tensors[index].var
        return self.remap.get(expr, expr) if isinstance(expr, relax.Var) else expr

    def bind(self, name: str, value: relax.Expr) -> relax.Var:
        """Bind ``value`` to a Var named exactly ``name`` (the builder's emit would rename it)."""
        value = self.bb.normalize(value)
        var = relax.Var(name, value.ty)
        self.bb.emit_normalized(relax.VarBinding(var, value))
        return var

    def emit(self, kernel: str, inputs: Sequence[relax.Expr], attrs: Dict, shape, dtype: str, name: str,
             phase: str, outputs: Sequence = ()) -> relax.Var:
        """Emit a kernel call; ``outputs`` are extra (shape, dtype) outputs (the value is then a tuple)."""
        return self.bind(name, make_kernel_call(kernel, list(inputs), dict(attrs), shape, dtype,
                                                notes={PHASE: phase}, extra_outputs=outputs))

    def grad_shape(self, like: int) -> List[int]:
        """A gradient has the shape of the activation's root (a reshape's gradient is its source's)."""
        return list(self.g.tensors[self.g.root(like)].shape)

    def scale_of(self, index: int) -> float:
        """Scale of an int8 activation: the model file's, by the tensor's (or its root's) name,
        else the producing step's notes."""
        for i in (index, self.g.root(index)):
            t = self.g.tensors[i]
            if t.name in self.quant.tensors:
                return self.quant.tensors[t.name][0]
        for s in self.steps:
            if s.output in (index, self.g.root(index)) and "out_scale" in s.notes:
                return float(s.notes["out_scale"])
        raise UnsupportedModelError([("TRAINING", self.g.tensors[index].name,
                                      "the scale of this activation is not in the model file")])

    # ------------------------------------------------------------------ layers
    def layers(self) -> List[Layer]:
        out = []
        for s, step in enumerate(self.steps):
            family = LAYER_KERNELS.get(step.kernel)
            if family is None:
                continue
            weight = step.inputs[1]
            bias = step.inputs[2] if len(step.inputs) > 2 and self.g.tensors[step.inputs[2]].dtype == "int32" \
                and self.g.tensors[step.inputs[2]].kind == "constant" else None
            channels = int(step.attrs["output_depth" if family == "fully_connected" else "output_c"])
            # A step the model file does not name (a patch of a layer) has no scales here: it is
            # refused if the training step ever needs them (:meth:`scales`).
            op = self.quant.operators.get(step.name)
            known = op is not None and op.weight_scales is not None
            scales = np.broadcast_to(op.weight_scales, (channels,)).astype(np.float64) if known else None
            out.append(Layer(len(out), s, step.name, family, weight, bias, channels,
                             op.input_scale if known else 0.0, scales))
        return out

    # ------------------------------------------------------------------ build
    def build(self) -> TrainingGraph:
        g, cfg = self.g, self.config
        if len(g.inputs) != 1 or len(g.outputs) != 1 or g.variables:
            raise UnsupportedModelError([("TRAINING", "model", "training needs one input and one output (the "
                                          "class scores), and no resource variables")])
        if g.tensors[g.inputs[0]].shape[:1] != [1]:
            raise UnsupportedModelError([("TRAINING", g.tensors[g.inputs[0]].name,
                                          "the training step takes one sample: the input's batch must be 1")])
        found = self.layers()
        # Layers are numbered as in the model (the configuration's indices), whatever the memory
        # passes did to the steps: a layer split into patches is no longer one step, and cannot be
        # trained in that forward graph.
        names = list(self.layer_names) if self.layer_names is not None else [layer.name for layer in found]
        if not names:
            raise UnsupportedModelError([("TRAINING", "model", "the model has no CONV_2D, DEPTHWISE_CONV_2D or "
                                          "FULLY_CONNECTED layer to train")])
        counts = Counter(layer.name for layer in found)
        for layer in found:
            layer.index = names.index(layer.name) if counts[layer.name] == 1 and layer.name in names else -1
        layers: Dict[int, Layer] = {layer.index: layer for layer in found if layer.index >= 0}
        if cfg.biases == "all":  # every layer that has a bias (the converter gives each one; a model may not)
            bias_layers = {k for k in range(len(names)) if k not in layers or layers[k].bias is not None}
        else:
            bias_layers = set(resolve_layers(cfg.biases, names, "biases"))
        weight_layers = set(resolve_layers(cfg.weights, names, "weights"))
        for k in sorted(bias_layers | weight_layers):
            if k not in layers:
                raise UnsafeForTraining(f"layer {names[k]!r} is not one step of this forward graph")
        ratios: Dict[int, float] = {}
        for ref, ratio in cfg.channel_ratio:
            (k,) = resolve_layers([ref], names, "channel_ratio")
            if k not in weight_layers:
                raise UsageError(f"training config: channel_ratio names layer {names[k]!r}, whose weights are not "
                                 "trained (add it to 'weights')")
            if layers[k].family == "depthwise_conv2d" and ratio < 1.0:
                raise UsageError(f"training config: layer {names[k]!r} is depthwise, whose channels are not "
                                 "contiguous in its [1, kh, kw, C] filter: a channel ratio applies to CONV_2D and "
                                 "FULLY_CONNECTED layers")
            ratios[k] = ratio
        for k in sorted(bias_layers):
            if layers[k].bias is None:
                raise UsageError(f"training config: layer {names[k]!r} has no int32 bias to train")
        trained_steps = {layers[k].step for k in bias_layers | weight_layers}

        # Trainable parameters: parameters of train_step, paired with their updated values.
        params: List[TrainableParameter] = []
        for k, layer in sorted(layers.items()):
            for kind, tensor, trained in (("weight", layer.weight, k in weight_layers),
                                          ("bias", layer.bias, k in bias_layers)):
                if not trained:
                    continue
                if sum(tensor in s.inputs for s in self.steps) != 1:
                    raise UnsupportedModelError([("TRAINING", layer.name, f"its {kind} is shared with other "
                                                  "layers")])
                t = g.tensors[tensor]
                name = f"{layer.name}.{kind}"
                self.param_of[tensor] = relax.Var(name, relax.TensorType(t.shape, t.dtype))
                n = layer.channels
                trained_ch = max(1, int(ratios.get(k, 1.0) * n)) if kind == "weight" else n
                params.append(TrainableParameter(name, tensor, layer.name, kind, trained_ch, n, t.data))

        # The loss on the logits: the input of a final SOFTMAX (behind a DEQUANTIZE to a float
        # output, if any), else the output itself.
        logits = g.outputs[0]
        for kernel in ("te_dequantize_s8_f32", "te_softmax_s8"):
            producer = next((s for s in self.steps if g.root(s.output) == g.root(logits)), None)
            if producer is not None and producer.kernel == kernel:
                logits = producer.inputs[0]
        lt = g.tensors[logits]
        if lt.dtype != "int8":
            raise UnsupportedModelError([("TRAINING", lt.name, "the logits must be int8")])
        logits_scale = self.scale_of(logits)

        x = self.func.params[0]
        inputs = [relax.Var(x.name, x.ty), relax.Var("label", relax.TensorType([1], "int32"))]
        self.remap[x] = inputs[0]
        trainables = [self.param_of[p.tensor] for p in params]
        sel = _Selection(found, trained_steps, weight_layers, bias_layers, params)
        with self.bb.function(TRAIN_STEP, inputs + trainables, pure=False, private=True):
            try:
                loss = self.emit_body(inputs[1], logits, logits_scale, sel)
            except Exception:
                self.bb.emit_func_output(relax.Tuple([]))  # close the scope: the error leaves no open block
                raise
        # Parameter 2 + k (after input and label) is read, output 2 + k (after the model's output
        # and the loss) assigned: resource variables.
        func = self.bb.get()[TRAIN_STEP].with_attr(
            VARIABLES_ATTR, [[p.name, 2 + k, 2 + k] for k, p in enumerate(params)])
        module = tvm.IRModule({"main": self.func, TRAIN_STEP: func})
        return _read_back(module, names, [layers[k] for k in sorted(layers)], params, self.value(logits), loss,
                          logits_scale)

    def emit_body(self, label: relax.Var, logits: int, logits_scale: float, sel: "_Selection") -> relax.Var:
        """The bindings and the return of train_step (inside its scope); returns the loss."""
        g = self.g
        lt = g.tensors[logits]
        self.emit_forward()
        ce = self.emit("te_softmax_cross_entropy_s8", [self.value(logits), label],
                       dict(batch=int(np.prod(lt.shape[:-1])), classes=int(lt.shape[-1]), input_scale=logits_scale),
                       self.grad_shape(logits), "float32", "softmax_cross_entropy", "loss",
                       outputs=[([1], "float32")])
        dz = self.bind(f"{lt.name}.grad", relax.TupleGetItem(ce, 0))
        loss = self.bind("loss", relax.TupleGetItem(ce, 1))
        self.emit_backward({g.root(logits): dz}, sel)
        updated = [self.updated.get(p.tensor, self.param_of[p.tensor]) for p in sel.params]
        self.bb.emit_func_output(relax.Tuple([self.value(g.outputs[0]), loss, *updated]))
        return loss

    def emit_forward(self) -> None:
        """The forward bindings, as deployed, with the trained constants replaced by parameters."""
        # Constants are matched by object, as KernelGraph.from_relax tells them apart.
        trained = {self.g.tensors[i].var.__chandle__(): v for i, v in self.param_of.items()}
        for b in bindings(self.func):
            value = b.value
            if isinstance(value, relax.Call) and len(value.args) == 2 and isinstance(value.args[1], tvm.ir.Tuple) \
                    and isinstance(value.args[0], relax.ExternFunc):
                fields = [trained.get(f.__chandle__(), f) if isinstance(f, tvm.ir.Constant) else f
                          for f in value.args[1].fields]
                value = relax.Call(value.op, [value.args[0], tvm.ir.Tuple(fields)], value.attrs, value.ty_args)
            self.remap[b.var] = self.bind(b.var.name, substitute(value, self.remap))

    def emit_backward(self, grads: Dict[int, relax.Var], sel: "_Selection") -> None:
        g = self.g
        forward_steps = len(self.steps)
        found, trained_steps = sel.found, sel.trained_steps
        weight_layers, bias_layers, params = sel.weight_layers, sel.bias_layers, sel.params
        # Which activations depend on a trained layer: only those need a gradient (pruning).
        below: Set[int] = set()  # roots of activations computed from a trained layer's output
        for s in range(forward_steps):
            step = self.steps[s]
            if s in trained_steps or any(g.root(i) in below for i in step.inputs
                                         if g.tensors[i].kind != "constant"):
                below.add(g.root(step.output))
        for s in reversed(range(forward_steps)):
            step = self.steps[s]
            out_root = g.root(step.output)
            if out_root not in grads:
                continue
            dy = grads.pop(out_root)
            x = step.inputs[0] if step.inputs else None
            need_input = x is not None and g.root(x) in below and g.tensors[x].kind != "constant"
            layer = next((L for L in found if L.step == s), None)
            if layer is not None:
                k = layer.index
                if not (need_input or k in weight_layers or k in bias_layers):
                    continue
                dy = self.mask(step, dy)
                if need_input:
                    self.grad_input(layer, step, dy, grads)
                if k in weight_layers:
                    self.update_weights(layer, step, dy, params)
                if k in bias_layers:
                    self.update_bias(layer, step, dy)
                continue
            if step.kernel in _ADD:
                self.add_grad(step, dy, grads, below)
                continue
            if not need_input:
                continue
            if step.kernel not in _PASS_THROUGH:
                raise UnsupportedModelError([(op_type(step.kernel, step.notes), step.name,
                                              "no backward rule for this operator yet (between the loss and a "
                                              "trained layer)")])
            if step.output != g.root(step.output):
                raise UnsupportedModelError([(op_type(step.kernel, step.notes), step.name,
                                              "an in-place forward step on the gradient path")])
            name = f"{step.name}.grad_input"
            if step.kernel == "te_mean_s8":
                dx = self.emit("te_mean_grad_f32", [dy], step.attrs, self.grad_shape(x), "float32", name, "backward")
            else:
                dy = self.mask(step, dy)
                if step.kernel == "te_avg_pool_s8":
                    dx = self.emit("te_avg_pool_grad_f32", [dy], step.attrs, self.grad_shape(x), "float32", name,
                                   "backward")
                else:
                    dx = self.emit("te_max_pool_grad_s8", [self.value(x), dy], step.attrs, self.grad_shape(x),
                                   "float32", name, "backward")
            self.put(grads, x, dx)

    def put(self, grads: Dict[int, relax.Var], x: int, dx: relax.Var) -> None:
        """Record ``dx`` as the gradient of ``x`` (a first contribution: written, not added)."""
        root = self.g.root(x)
        if root in grads:
            raise UnsupportedModelError([("TRAINING", self.g.tensors[x].name, "this activation feeds several "
                                          "operators and the last one's gradient kernel cannot add into an "
                                          "existing gradient")])
        grads[root] = dx

    def add_grad(self, step: Step, dy: relax.Var, grads: Dict[int, relax.Var], below: Set[int]) -> None:
        """ADD: y = a + b in real values (the int8 kernel rescales both onto y's scale), so each
        activation input receives dY, masked where y sits at its clamp.  A residual's skip input
        gets its copy first; the branch's first layer then adds into it (an accumulating input
        gradient, :meth:`grad_input`)."""
        g = self.g
        needs = [i for i in step.inputs[:2] if g.tensors[i].kind != "constant" and g.root(i) in below]
        if not needs:
            return
        size = int(np.prod(g.tensors[step.output].shape))
        if any(int(np.prod(g.tensors[i].shape)) != size for i in needs):
            raise UnsupportedModelError([("ADD", step.name, "broadcasting ADD on the gradient path (its gradient "
                                          "is a reduction)")])
        attrs = dict(size=size, act_min=int(step.attrs.get("act_min", -128)),
                     act_max=int(step.attrs.get("act_max", 127)))
        for k, x in enumerate(needs[:-1]):
            dx = self.emit("te_activation_grad_s8", [self.value(step.output), dy], attrs, self.grad_shape(x),
                           "float32", f"{step.name}.grad_input{k}", "backward")
            self.put(grads, x, dx)
        # The last input takes dY itself, masked in place (dY dies here).
        self.put(grads, needs[-1], self.mask(step, dy))

    # ------------------------------------------------------------------ rules
    def mask(self, step: Step, dy: relax.Var) -> relax.Var:
        """dY masked where the forward output sits at its clamp (fused ReLU/ReLU6 or int8 saturation),
        in place: dY is read by nothing else."""
        a = step.attrs
        size = int(np.prod(self.g.tensors[step.output].shape))
        return self.emit("te_activation_grad_inplace_s8", [dy, self.value(step.output)],
                         dict(size=size, act_min=int(a.get("act_min", -128)), act_max=int(a.get("act_max", 127))),
                         shape_of(dy), "float32", f"{step.name}.activation_grad", "backward")

    def scales(self, layer: Layer) -> relax.Expr:
        """The float32 constant of a layer's per-channel weight scales (one object per layer)."""
        if layer.weight_scales is None:
            raise UnsupportedModelError([("TRAINING", layer.name, "cannot find this layer's weight scales in "
                                          "the model file")])
        if layer.name not in self.scale_consts:
            self.scale_consts[layer.name] = relax.const(layer.weight_scales.astype(np.float32))
        return self.scale_consts[layer.name]

    def grad_params(self, layer: Layer, step: Step) -> Dict:
        a = step.attrs
        common = dict(input_offset=int(a["input_offset"]), input_scale=float(layer.input_scale), accumulate=0)
        if layer.family == "fully_connected":
            return dict(batch=int(a["batch"]), input_depth=int(a["input_depth"]),
                        output_depth=int(a["output_depth"]), **common)
        keys = ("batch", "input_h", "input_w", "input_c", "output_h", "output_w", "output_c", "kernel_h",
                "kernel_w", "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left")
        return dict({k: int(a[k]) for k in keys}, **common)

    def grad_input(self, layer: Layer, step: Step, dy: relax.Var, grads: Dict[int, relax.Var]) -> None:
        """dX of a layer, from dY and the filter before its update; added into the gradient already
        there when its input feeds several operators (the skip of a residual got its share first,
        in reverse order): that call writes in place over the existing gradient."""
        x = step.inputs[0]
        root = self.g.root(x)
        params = self.grad_params(layer, step)
        existing = grads.get(root)
        operands = [dy, self.value(layer.weight), self.scales(layer)]
        kernel = f"te_{layer.family}_grad_input_s8"
        if existing is not None:
            kernel, operands = f"te_{layer.family}_grad_input_acc_s8", [existing] + operands
            params["accumulate"] = 1
        grads[root] = self.emit(kernel, operands, params, self.grad_shape(x), "float32",
                                f"{layer.name}.grad_input", "backward")

    def qas(self, tensor: int, grad: relax.Var, scales: relax.Expr, size: int, channels: int, inner: int,
            input_scale: float, dtype: str, name: str) -> None:
        """The QAS SGD step updating trained constant ``tensor`` in place."""
        kernel = f"te_qas_sgd_momentum_{dtype}" if self.config.momentum > 0 else f"te_qas_sgd_{dtype}"
        t = self.g.tensors[tensor]
        self.updated[tensor] = self.emit(
            kernel, [self.param_of[tensor], grad, scales],
            dict(size=size, channels=channels, inner=inner, learning_rate=self.config.learning_rate,
                 momentum=self.config.momentum, input_scale=float(input_scale)), t.shape, t.dtype,
            f"{name}.update", "update")

    def update_weights(self, layer: Layer, step: Step, dy: relax.Var, params) -> None:
        p = next(q for q in params if q.tensor == layer.weight)
        w = self.g.tensors[layer.weight]
        inner = int(np.prod(w.shape)) // layer.channels
        attrs = self.grad_params(layer, step)
        n = p.trained_channels
        if layer.family == "fully_connected":
            # One sample: dY's first n entries are the trained channels' (output_depth is dY's row length
            # only through the batch stride, and the batch is 1).
            attrs["output_depth"] = n
            shape = [n, inner]
        else:
            shape = list(w.shape)  # the convolution kernels need every channel's dY row: all are computed
        if layer.family == "depthwise_conv2d":
            channels, inner_q = layer.channels, 1
        else:
            channels, inner_q = n, inner
        fused = {"fully_connected": "te_fully_connected_sgd_s8", "conv2d": "te_conv2d_sgd_s8"}.get(layer.family)
        if fused is not None and self.config.momentum == 0:
            # Filter row by filter row: one row's gradient in the arena instead of the whole filter's.
            attrs["learning_rate"] = self.config.learning_rate
            if layer.family == "conv2d":
                attrs["channels"] = n  # the filters updated (an FC's are its output_depth, set above)
            self.updated[layer.weight] = self.emit(
                fused, [self.param_of[layer.weight], dy, self.value(step.inputs[0]), self.scales(layer)], attrs,
                w.shape, w.dtype, f"{layer.name}.weight.update", "update")
            return
        dw = self.emit(f"te_{layer.family}_grad_weights_s8", [dy, self.value(step.inputs[0]), self.scales(layer)],
                       attrs, shape, "float32", f"{layer.name}.grad_weight", "backward")
        self.qas(layer.weight, dw, self.scales(layer), n * inner, channels, inner_q, 0.0, "s8",
                 f"{layer.name}.weight")

    def update_bias(self, layer: Layer, step: Step, dy: relax.Var) -> None:
        db = self.emit(f"te_{layer.family}_grad_bias_s8", [dy, self.scales(layer)], self.grad_params(layer, step),
                       [layer.channels], "float32", f"{layer.name}.grad_bias", "backward")
        self.qas(layer.bias, db, self.scales(layer), layer.channels, layer.channels, 1, layer.input_scale,
                 "s32", f"{layer.name}.bias")


def _read_back(module: tvm.IRModule, names: List[str], layers: List[Layer], params: List[TrainableParameter],
               logits_var: relax.Var, loss_var: relax.Var, logits_scale: float) -> TrainingGraph:
    """The TrainingGraph of ``module``'s train_step: its KernelGraph (what the planner and the C
    writer read) and where the parameters, label, loss and logits are in it."""
    graph = KernelGraph.from_relax(module[TRAIN_STEP])
    index = {t.var: t.index for t in graph.tensors if isinstance(t.var, relax.Var)}
    func = module[TRAIN_STEP]
    forward_steps = next((k for k, s in enumerate(graph.steps) if PHASE in s.notes), len(graph.steps))
    placed = [dataclasses.replace(p, tensor=index[func.params[2 + k]]) for k, p in enumerate(params)]
    label = index[func.params[1]]
    training = TrainingGraph(module, graph, forward_steps, names, layers, placed, label, index[loss_var],
                             index[logits_var],
                             logits_scale)
    check_overwrites(graph, forward_steps)
    return training


def check_overwrites(g: KernelGraph, forward_steps: int) -> None:
    """UnsafeForTraining if a step after the forward reads a forward activation that a later forward
    step overwrote in place (an in-place kernel or a paste writing into the same buffer)."""
    produced = {t: -1 for t in g.inputs}
    for s in range(forward_steps):
        produced[g.steps[s].output] = s
    writers: Dict[int, List[int]] = {}
    for s in range(forward_steps):
        writers.setdefault(g.root(g.steps[s].output), []).append(s)
    for b in range(forward_steps, len(g.steps)):
        for t in g.steps[b].inputs:
            if t not in produced:
                continue
            later = [s for s in writers.get(g.root(t), []) if s > produced[t]]
            if later:
                raise UnsafeForTraining(f"'{g.steps[b].name}' reads '{g.tensors[t].name}', which forward "
                                        f"step '{g.steps[later[0]].name}' overwrites in place")


def build_training_graph(func: relax.Function, quant: ModelQuant, config: TrainingConfig,
                         layer_names: Optional[Sequence[str]] = None) -> TrainingGraph:
    """The training step of a lowered forward ``main`` for ``config``: the module with ``main`` and
    ``train_step`` (the loss, the pruned backward pass and the fused QAS updates after the
    forward), and its KernelGraph.

    ``layer_names`` are the model's layers in order (what the configuration's indices count;
    default: this function's layer steps).  UnsafeForTraining when a memory pass changed what the
    step needs (see :class:`UnsafeForTraining`).
    """
    return _Builder(func, quant, config, layer_names).build()


@tvm.transform.module_pass(opt_level=0, name="AppendTrainingStep")
class AppendTrainingStep:
    """Add ``train_step`` to a lowered module (see the module doc), for ``config`` and the model's
    quantization ``quant`` (:func:`~.quantization.read_quantization`)."""

    def __init__(self, quant: ModelQuant, config: TrainingConfig, layer_names: Optional[Sequence[str]] = None):
        self.quant, self.config, self.layer_names = quant, config, layer_names

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        """``mod`` with ``train_step`` added (``main`` and the rest kept)."""
        out = mod.clone()
        out[TRAIN_STEP] = build_training_graph(mod["main"], self.quant, self.config,
                                               self.layer_names).module[TRAIN_STEP]
        return out


def layer_names(graph: KernelGraph) -> List[str]:
    """Names of the parameterised steps of a forward graph without memory passes, in order."""
    return [s.name for s in graph.steps if s.kernel in LAYER_KERNELS]
