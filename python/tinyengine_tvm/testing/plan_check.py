"""An arena plan checked without the planner: no two buffers alive at once share bytes."""
from __future__ import annotations


def check_plan_valid(compiled):
    """No two buffers alive during one step overlap in the arena (recomputed here)."""
    graph, plan = compiled.graph, compiled.plan
    n = len(graph.steps)
    live = {}  # root -> [first, last]

    def touch(root, step):
        lo, hi = live.get(root, (step, step))
        live[root] = (min(lo, step), max(hi, step))

    for t in graph.inputs:
        touch(graph.root(t), -1)
    for s, step in enumerate(graph.steps):
        for i in step.inputs:
            if graph.tensors[i].kind != "constant":
                touch(graph.root(i), s)
        touch(graph.root(step.output), s)
    for t in graph.outputs:
        touch(graph.root(t), n)
    spans = [(lo, hi, plan.offset_of(r), graph.tensors[r].nbytes, r) for r, (lo, hi) in live.items()]
    spans += [(s, s, plan.offset_of(("scratch", s)), b.size, ("scratch", s))
              for s in range(n) for k, b in plan.buffers.items() if k == ("scratch", s)]
    spans += [(-1, n, b.offset, b.size, k) for k, b in plan.buffers.items()
              if isinstance(k, tuple) and k[0] == "state"]
    for a in range(len(spans)):
        for b in range(a + 1, len(spans)):
            la, ha, oa, sa, ka = spans[a]
            lb, hb, ob, sb, kb = spans[b]
            if ha < lb or hb < la:
                continue
            assert oa + sa <= ob or ob + sb <= oa, f"buffers {ka} and {kb} overlap while both are alive"
        assert spans[a][2] + spans[a][3] <= plan.arena_bytes
