"""The C of a training graph: the inference API plus ``<name>_train_init`` / ``<name>_train_step``.

:class:`TrainingCWriter` is the project's CWriter with two additions: its
``<name>_invoke()`` runs only the forward steps (the first
``forward_steps`` of the graph), and the source gets the training entry
points, which run every step on the same arena.  Sharing one plan is sound:
the planner gave disjoint bytes to any two buffers alive at the same step,
so the forward steps alone see the same non-overlapping layout; the
trainable parameters are resource variables, alive through every run, so
``invoke`` reads the weights the last ``train_step`` wrote.

A debug build (``-DTE_TRAIN_TRACE``) calls ``te_train_trace(step, data,
bytes)`` after every step of ``train_step`` with the step's output, which is
how the host tests read every gradient (:mod:`.host`).
"""
from __future__ import annotations

import numpy as np

from ..codegen.c_writer import _C_TYPES, CWriter, _c_float, comment_text
from ..kernels import spec as kernel_spec
from .backward import TrainingGraph

TRACE_HOOK = """
#ifdef TE_TRAIN_TRACE
void te_train_trace(uint32_t step, const void* data, uint32_t bytes);
#define TE_TRAIN_TRACE_STEP(step, data, bytes) te_train_trace((step), (data), (bytes))
#else
#define TE_TRAIN_TRACE_STEP(step, data, bytes) ((void)0)
#endif
"""


class TrainingCWriter(CWriter):
    """CWriter of a :class:`~.backward.TrainingGraph` (see the module doc)."""

    def __init__(self, name, training: TrainingGraph, plan, inputs, outputs, initial):
        super().__init__(name, training.graph, plan, inputs, outputs, initial)
        self.training = training
        self.invoke_steps = training.forward_steps

    def _learning_rate(self) -> float:
        return float(next((s.attrs["learning_rate"] for s in self.graph.steps if "learning_rate" in s.attrs), 0.0))

    def _step(self, s: int, step) -> str:
        """An update step reads the learning rate set at run time (its struct is then not const)."""
        text = super()._step(s, step)
        if "learning_rate" not in step.attrs:
            return text
        const = f"    static const {kernel_spec(step.kernel).struct} p = {{"
        text = text.replace(const, const.replace("static const ", ""))
        line_end = text.index("\n", text.index(f"    {kernel_spec(step.kernel).struct} p = {{"))
        return text[:line_end + 1] + f"    p.learning_rate = {self.name}_learning_rate;\n" + text[line_end + 1:]

    def _input_ctype(self) -> str:
        return _C_TYPES[self.inputs[0].dtype]

    def header(self) -> str:
        """include/<name>.h: the inference API and the training entry points."""
        n, N, t = self.name, self.name.upper(), self.training
        params = t.parameters
        trainable = sum(self.graph.tensors[p.tensor].nbytes for p in params)
        text = ["/* ---- On-device training (tinyengine_tvm.training) ---- */\n",
                f"/** Steps of {n}_train_step(): forward, loss, backward and updates. */\n"
                f"#define {N}_NUM_TRAIN_STEPS {len(self.graph.steps)}\n",
                f"/** Classes of the label (the logits' length). */\n"
                f"#define {N}_NUM_CLASSES {int(self.graph.tensors[t.logits].shape[-1])}\n",
                f"/** Trainable parameters, kept in the arena (SRAM): {trainable} bytes. */\n"
                f"#define {N}_NUM_PARAMETERS {len(params)}\n#define {N}_TRAINABLE_BYTES {trainable}\n\n"]
        for k, p in enumerate(params):
            tensor = self.graph.tensors[p.tensor]
            text.append(f"/* parameter {k}: '{comment_text(p.name)}' {tensor.dtype}{list(tensor.shape)}, "
                        f"{p.trained_channels} of {p.channels} channels trained */\n")
        text.append("\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n")
        text.append(f"/**\n * Copy the trainable parameters' initial values from flash into the arena and\n"
                    f" * zero the momentum (if any): training starts again from the model file's\n"
                    f" * weights.  The first {n}_train_step() or {n}_invoke() calls it if needed.\n */\n"
                    f"void {n}_train_init(void);\n\n")
        text.append(f"/**\n * One SGD step (QAS, sparse update) on one sample: forward, softmax\n"
                    f" * cross-entropy, backward and in-place updates of the trainable parameters,\n"
                    f" * which {n}_invoke() then uses.\n"
                    f" * @param input  {self.inputs[0].dtype}{list(self.inputs[0].shape)}, as for {n}_run().\n"
                    f" * @param label  class index in [0, {N}_NUM_CLASSES).\n"
                    f" * @param loss   receives the loss before the update (may be NULL).\n"
                    f" * @return 0, or 1 for a label out of range (nothing is run).\n */\n"
                    f"int {n}_train_step(const {self._input_ctype()}* input, int32_t label, float* loss);\n\n")
        text.append(f"/** Where trainable parameter i is (inside the arena), or NULL. */\n"
                    f"void* {n}_train_parameter(int32_t index);\n\n")
        text.append(f"/** The SGD learning rate of the next train steps (a schedule sets it between\n"
                    f" * steps; the compile-time value is {float(np.float32(self._learning_rate()))!r}). */\n"
                    f"void {n}_train_set_learning_rate(float learning_rate);\n\n")
        text.append("#ifdef __cplusplus\n}\n#endif\n\n")
        base = super().header()
        at = base.rindex(f"#endif /* {N}_H_ */")
        return base[:at] + "".join(text) + base[at:]

    def source(self) -> str:
        """src/<name>.c: the inference schedule, then the training entry points."""
        n, t = self.name, self.training
        base = super().source()
        # The run-time learning rate is read by the update steps of train_step, defined below it.
        out = [base, TRACE_HOOK, f"\n/* Learning rate of the updates (<name>_train_set_learning_rate). */\n"
                                 f"static float {n}_learning_rate = {_c_float(self._learning_rate())};\n\n"]
        out.append(f"void {n}_train_init(void) {{ {n}_reset(); }}\n\n")
        out.append(f"void {n}_train_set_learning_rate(float learning_rate) {{ {n}_learning_rate = learning_rate; }}\n\n")
        out.append(f"void* {n}_train_parameter(int32_t index) {{\n  switch (index) {{\n")
        for k, p in enumerate(t.parameters):
            out.append(f"    case {k}: return {n}_arena + {self._offset(p.tensor)};\n")
        out.append("    default: return 0;\n  }\n}\n\n")
        classes = int(self.graph.tensors[t.logits].shape[-1])
        x = self.graph.inputs[0]
        out.append(f"int {n}_train_step(const {self._input_ctype()}* input, int32_t label, float* loss) {{\n"
                   f"  if (label < 0 || label >= {classes}) return 1;\n"
                   f"  if (!{n}_state_ready) {n}_reset();\n"
                   f"  memcpy({n}_arena + {self._offset(x)}, input, {self.graph.tensors[x].nbytes});\n"
                   f"  memcpy({n}_arena + {self._offset(t.label)}, &label, sizeof label);\n")
        for s, step in enumerate(self.graph.steps):
            out.append(self._step(s, step))
            out.append(f"  TE_TRAIN_TRACE_STEP({s}u, {n}_arena + {self._offset(step.output)}, "
                       f"{self.graph.tensors[step.output].nbytes}u);\n")
        out.append(f"  if (loss) memcpy(loss, {n}_arena + {self._offset(t.loss)}, sizeof *loss);\n"
                   "  return 0;\n}\n")
        return "".join(out)


def trainable_initial(training: TrainingGraph) -> dict:
    """{parameter name: its initial raw values} (the flash copy the reset function reads)."""
    return {p.name: np.asarray(p.initial) for p in training.parameters}
