"""The backward pass and the fused update, appended to the forward KernelGraph.

TVM's Relax gradient pass (``relax.transform.Gradient``) differentiates
Relax operators; after integer lowering the forward pass is a line of
``call_dps_packed`` calls to the project's int8 kernels, which it knows
nothing about (and the float QDQ graph before lowering is not the arithmetic
that runs on the device).  So the backward pass is built here by the
project's own rules, one rule per lowered forward kernel, on the KernelGraph
the planner and the C writer already read.

Why steps appended to the KernelGraph rather than kernel calls in Relax: the
update writes trainable parameters in place and keeps a momentum velocity
across training steps, and the loss kernel writes two results; KernelGraph
already models in-place aliasing (``view_of``), persistent values (resource
variables: live for the whole run and between runs, initialised by the
reset function) and per-step state, so the planner and the C writer take the
training graph with no special case.  Relax's value semantics would need
extra tuple outputs and a pass to turn them back into aliasing.

What the rules produce, in reverse step order from the loss:

* softmax cross-entropy on the logits (the input of a final SOFTMAX, whose
  step stays for ``invoke``), writing dL/dlogits and the loss;
* per layer (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) whose output has a
  gradient: the fused clamp's mask (in place over dY), the input gradient
  only if a trained layer lies below (pruning), then for trained weights the
  weight gradient immediately followed by its QAS update, then likewise the
  bias: each gradient buffer dies at its update, and the planner reuses it;
* MEAN, AVERAGE_POOL_2D and MAX_POOL_2D pass gradients through (with their
  clamp's mask);
* reshapes are views: a gradient is keyed by the root of the activation.

Trainable parameters become resource variables of the graph (SRAM, copied
from their flash initial values by the reset function, counted in the
arena); frozen weights stay constants (flash).
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Dict, List, Optional, Set

import numpy as np

from ..errors import TinyEngineError, UnsupportedModelError, UsageError
from ..kernel_graph import KernelGraph, Step, Tensor
from ..kernels import op_type
from .config import TrainingConfig, resolve_layers
from .quantization import ModelQuant

#: Forward kernels with int8 weights and an int32 bias, and the family of their gradient kernels.
LAYER_KERNELS = {"te_conv2d_s8": "conv2d", "te_depthwise_conv2d_s8": "depthwise_conv2d",
                 "te_fully_connected_s8": "fully_connected",
                 # same operands and math; its output overwrites its input, which
                 # _Builder.check_overwrites refuses wherever the backward pass reads that input
                 "te_depthwise_conv2d_inplace_s8": "depthwise_conv2d"}
_PASS_THROUGH = ("te_mean_s8", "te_avg_pool_s8", "te_max_pool_s8")
_ADD = ("te_add_s8", "te_add_inplace_s8")


@dataclasses.dataclass
class Layer:
    """A parameterised forward step."""

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
    tensor: int
    layer: str
    kind: str  # "weight" or "bias"
    trained_channels: int
    channels: int


@dataclasses.dataclass
class TrainingGraph:
    """The training KernelGraph and what was built into it."""

    graph: KernelGraph
    forward_steps: int  # steps 0..forward_steps-1 are the forward pass (what invoke runs)
    layer_names: List[str]  # the model's layers in order (what the configuration's indices count)
    layers: List[Layer]  # those that are one step of this graph (not split into patches)
    parameters: List[TrainableParameter]
    label: int
    loss: int
    logits: int
    logits_scale: float


class UnsafeForTraining(TinyEngineError):
    """A memory pass rewrote what this training step needs (a trained layer split into
    patches, or an activation the backward pass reads overwritten in place): compile the
    forward pass without that pass."""


class _Builder:
    def __init__(self, graph: KernelGraph, quant: ModelQuant, config: TrainingConfig,
                 layer_names: Optional[List[str]] = None):
        self.g = graph
        self.quant = quant
        self.config = config
        self.steps: List[Step] = graph.steps
        self.layer_names = layer_names

    # ------------------------------------------------------------------ tensors and steps
    def tensor(self, name: str, shape, dtype: str, kind: str = "activation", data=None,
               view_of: Optional[int] = None) -> int:
        t = Tensor(len(self.g.tensors), name, [int(d) for d in shape], dtype, kind, data, view_of)
        self.g.tensors.append(t)
        return t.index

    def constant(self, name: str, data: np.ndarray) -> int:
        return self.tensor(name, data.shape, str(data.dtype), "constant", data)

    def step(self, kernel: str, inputs: List[int], output: int, attrs: Dict, name: str) -> int:
        self.steps.append(Step(kernel, list(inputs), output, dict(attrs), name))
        return output

    def grad_tensor(self, like: int, name: str, view_of: Optional[int] = None) -> int:
        root = self.g.tensors[self.g.root(like)]
        return self.tensor(name, root.shape, "float32", view_of=view_of)

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
        forward_steps = len(self.steps)
        if len(g.inputs) != 1 or len(g.outputs) != 1:
            raise UnsupportedModelError([("TRAINING", "model", "training needs one input and one output (the "
                                          "class scores)")])
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

        # Trainable parameters: resource variables (SRAM, initialised from flash by reset).
        params: List[TrainableParameter] = []
        var_of: Dict[int, int] = {}
        for k, layer in sorted(layers.items()):
            for kind, tensor, trained in (("weight", layer.weight, k in weight_layers),
                                          ("bias", layer.bias, k in bias_layers)):
                if not trained:
                    continue
                if sum(tensor in s.inputs for s in self.steps) != 1:
                    raise UnsupportedModelError([("TRAINING", layer.name, f"its {kind} is shared with other "
                                                  "layers")])
                t = g.tensors[tensor]
                t.kind, t.name = "input", f"{layer.name}.{kind}"
                n = layer.channels
                trained_ch = max(1, int(ratios.get(k, 1.0) * n)) if kind == "weight" else n
                params.append(TrainableParameter(t.name, tensor, layer.name, kind, trained_ch, n))
                var_of[tensor] = len(g.variables)
                g.variables.append((t.name, tensor, None))

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
        classes = int(lt.shape[-1])
        batch = int(np.prod(lt.shape[:-1]))
        logits_scale = self.scale_of(logits)
        label = self.tensor("label", [1], "int32", "input")
        g.inputs.append(label)
        loss = self.tensor("loss", [1], "float32")
        self.step("te_buffer", [], loss, {}, "loss")
        g.outputs.append(loss)
        grads: Dict[int, int] = {}
        dz = self.grad_tensor(logits, f"{lt.name}.grad")
        self.step("te_softmax_cross_entropy_s8", [logits, label, loss], dz,
                  dict(batch=batch, classes=classes, input_scale=logits_scale), "softmax_cross_entropy")
        grads[g.root(logits)] = dz

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
                    self.update_weights(layer, step, dy, var_of[layer.weight], params)
                if k in bias_layers:
                    self.update_bias(layer, step, dy, var_of[layer.bias], params)
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
            if step.kernel == "te_mean_s8":
                dx = self.grad_tensor(x, f"{step.name}.grad_input")
                self.step("te_mean_grad_f32", [dy], dx, step.attrs, f"{step.name}.grad_input")
            else:
                dy = self.mask(step, dy)
                dx = self.grad_tensor(x, f"{step.name}.grad_input")
                if step.kernel == "te_avg_pool_s8":
                    self.step("te_avg_pool_grad_f32", [dy], dx, step.attrs, f"{step.name}.grad_input")
                else:
                    self.step("te_max_pool_grad_s8", [x, dy], dx, step.attrs, f"{step.name}.grad_input")
            self.put(grads, x, dx)
        self.check_overwrites(forward_steps)
        return TrainingGraph(g, forward_steps, names, [layers[k] for k in sorted(layers)], params, label, loss,
                             logits, logits_scale)

    def check_overwrites(self, forward_steps: int) -> None:
        """UnsafeForTraining if a backward step reads a forward activation that a later forward step
        overwrote in place (an in-place kernel or a paste writing into the same buffer)."""
        g = self.g
        produced = {t: -1 for t in g.inputs}
        for s in range(forward_steps):
            produced[self.steps[s].output] = s
        writers: Dict[int, List[int]] = {}
        for s in range(forward_steps):
            writers.setdefault(g.root(self.steps[s].output), []).append(s)
        for b in range(forward_steps, len(self.steps)):
            for t in self.steps[b].inputs:
                if t not in produced:
                    continue
                later = [s for s in writers.get(g.root(t), []) if s > produced[t]]
                if later:
                    raise UnsafeForTraining(f"'{self.steps[b].name}' reads '{g.tensors[t].name}', which forward "
                                            f"step '{self.steps[later[0]].name}' overwrites in place")

    def put(self, grads: Dict[int, int], x: int, dx: int) -> None:
        """Record ``dx`` as the gradient of ``x`` (a first contribution: written, not added)."""
        root = self.g.root(x)
        if root in grads:
            raise UnsupportedModelError([("TRAINING", self.g.tensors[x].name, "this activation feeds several "
                                          "operators and the last one's gradient kernel cannot add into an "
                                          "existing gradient")])
        grads[root] = dx

    def add_grad(self, step: Step, dy: int, grads: Dict[int, int], below: Set[int]) -> None:
        """ADD: y = a + b in real values (the int8 kernel rescales both onto y's scale), so each
        activation input receives dY, masked where y sits at its clamp.  A residual's skip input
        gets its copy first; the branch's first layer then adds into it (``accumulate``)."""
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
            dx = self.grad_tensor(x, f"{step.name}.grad_input{k}")
            self.step("te_activation_grad_s8", [step.output, dy], dx, attrs, f"{step.name}.grad_input{k}")
            self.put(grads, x, dx)
        # The last input takes dY itself, masked in place (dY dies here).
        self.put(grads, needs[-1], self.mask(step, dy))

    # ------------------------------------------------------------------ rules
    def mask(self, step: Step, dy: int) -> int:
        """dY masked where the forward output sits at its clamp (fused ReLU/ReLU6 or int8 saturation),
        in place: dY is read by nothing else."""
        a = step.attrs
        size = int(np.prod(self.g.tensors[step.output].shape))
        out = self.tensor(f"{step.name}.grad_masked", self.g.tensors[dy].shape, "float32", view_of=dy)
        return self.step("te_activation_grad_inplace_s8", [dy, step.output], out,
                         dict(size=size, act_min=int(a.get("act_min", -128)), act_max=int(a.get("act_max", 127))),
                         f"{step.name}.activation_grad")

    def scales(self, layer: Layer) -> int:
        """The float32 constant of a layer's per-channel weight scales."""
        if layer.weight_scales is None:
            raise UnsupportedModelError([("TRAINING", layer.name, "cannot find this layer's weight scales in "
                                          "the model file")])
        key = f"{layer.name}.weight_scales"
        for t in self.g.tensors:
            if t.name == key:
                return t.index
        return self.constant(key, layer.weight_scales.astype(np.float32))

    def grad_params(self, layer: Layer, step: Step) -> Dict:
        a = step.attrs
        common = dict(input_offset=int(a["input_offset"]), input_scale=float(layer.input_scale), accumulate=0)
        if layer.family == "fully_connected":
            return dict(batch=int(a["batch"]), input_depth=int(a["input_depth"]),
                        output_depth=int(a["output_depth"]), **common)
        keys = ("batch", "input_h", "input_w", "input_c", "output_h", "output_w", "output_c", "kernel_h",
                "kernel_w", "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left")
        return dict({k: int(a[k]) for k in keys}, **common)

    def grad_input(self, layer: Layer, step: Step, dy: int, grads: Dict[int, int]) -> None:
        """dX of a layer; added into the gradient already there when its input feeds several
        operators (the skip of a residual got its share first, in reverse order)."""
        x = step.inputs[0]
        root = self.g.root(x)
        params = self.grad_params(layer, step)
        existing = grads.get(root)
        if existing is None:
            dx = self.grad_tensor(x, f"{layer.name}.grad_input")
        else:  # the kernel adds into the existing buffer: a view of it, which keeps it alive until here
            dx = self.tensor(f"{layer.name}.grad_input", self.g.tensors[existing].shape, "float32",
                             view_of=existing)
            params["accumulate"] = 1
        self.step(f"te_{layer.family}_grad_input_s8", [dy, layer.weight, self.scales(layer)], dx, params,
                  f"{layer.name}.grad_input")
        grads[root] = dx

    def qas(self, param: int, grad: int, scales: int, size: int, channels: int, inner: int,
            input_scale: float, dtype: str, name: str) -> int:
        """The QAS SGD step updating ``param`` in place; returns the updated view."""
        kernel = f"te_qas_sgd_momentum_{dtype}" if self.config.momentum > 0 else f"te_qas_sgd_{dtype}"
        root = self.g.root(param)
        new = self.tensor(f"{name}.updated", self.g.tensors[root].shape, self.g.tensors[root].dtype,
                          view_of=param)
        self.step(kernel, [param, grad, scales], new,
                  dict(size=size, channels=channels, inner=inner, learning_rate=self.config.learning_rate,
                       momentum=self.config.momentum, input_scale=float(input_scale)), f"{name}.update")
        return new

    def update_weights(self, layer: Layer, step: Step, dy: int, var: int, params) -> None:
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
        if layer.family == "fully_connected" and self.config.momentum == 0:
            # Row by row: one row's gradient in the arena instead of the whole filter's.
            new = self.tensor(f"{layer.name}.weight.updated", self.g.tensors[self.g.root(layer.weight)].shape,
                              self.g.tensors[self.g.root(layer.weight)].dtype, view_of=layer.weight)
            attrs["learning_rate"] = self.config.learning_rate
            self.step("te_fully_connected_sgd_s8", [layer.weight, dy, step.inputs[0], self.scales(layer)], new,
                      attrs, f"{layer.name}.weight.update")
            name, value, _ = self.g.variables[var]
            self.g.variables[var] = (name, value, new)
            return
        dw = self.tensor(f"{layer.name}.grad_weight", shape, "float32")
        self.step(f"te_{layer.family}_grad_weights_s8", [dy, step.inputs[0], self.scales(layer)], dw, attrs,
                  f"{layer.name}.grad_weight")
        new = self.qas(layer.weight, dw, self.scales(layer), n * inner, channels, inner_q, 0.0, "s8",
                       f"{layer.name}.weight")
        name, value, _ = self.g.variables[var]
        self.g.variables[var] = (name, value, new)

    def update_bias(self, layer: Layer, step: Step, dy: int, var: int, params) -> None:
        db = self.tensor(f"{layer.name}.grad_bias", [layer.channels], "float32")
        self.step(f"te_{layer.family}_grad_bias_s8", [dy, self.scales(layer)], db, self.grad_params(layer, step),
                  f"{layer.name}.grad_bias")
        new = self.qas(layer.bias, db, self.scales(layer), layer.channels, layer.channels, 1, layer.input_scale,
                       "s32", f"{layer.name}.bias")
        name, value, _ = self.g.variables[var]
        self.g.variables[var] = (name, value, new)


def build_training_graph(graph: KernelGraph, quant: ModelQuant, config: TrainingConfig,
                         layer_names: Optional[List[str]] = None) -> TrainingGraph:
    """Append the loss, the pruned backward pass and the fused QAS updates to a forward
    KernelGraph (modified in place) for ``config``.

    ``layer_names`` are the model's layers in order (what the configuration's indices count;
    default: this graph's layer steps).  UnsafeForTraining when a memory pass changed what the
    step needs (see :class:`UnsafeForTraining`).
    """
    return _Builder(graph, quant, config, layer_names).build()


def layer_names(graph: KernelGraph) -> List[str]:
    """Names of the parameterised steps of a forward graph without memory passes, in order."""
    return [s.name for s in graph.steps if s.kernel in LAYER_KERNELS]
