"""A tiny render graph: passes run in insertion order, inputs wired by name, per-pass GPU times.

Each node is ``(name, pass, edges)`` where ``edges`` maps an input slot of the pass to
``"producer.slot"`` (an output of an earlier node). Timing: before and after every pass the
graph submits a command buffer holding one ``write_timestamp`` into a timestamp query pool;
passes dispatch on the same (in-order) queue, so the difference of a pass's two stamps is the
device time of its work plus submission gaps, in milliseconds (``get_timestamp_results``
already divides the raw ticks by ``device.info.timestamp_frequency``; checked on lavapipe: a
0.2 s host sleep between two stamps reads 0.204 s). A pass of several steps adds ``node.step``
entries after its own (:meth:`~.passes.base.RenderPass.step_timings`; parts of the node's time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .passes.base import RenderContext, RenderPass, Resource


@dataclass
class Node:
    """One pass of the graph."""

    name: str
    """Unique node name (also the key of its timing)."""
    render_pass: RenderPass
    """The pass."""
    edges: dict[str, str] = field(default_factory=dict)
    """Input slot -> ``"producer.slot"``."""


class RenderGraph:
    """Ordered passes with named edges (module docstring)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def add(self, name: str, render_pass: RenderPass, edges: dict[str, str] | None = None) -> RenderGraph:
        """Append a pass; every edge must name an output of an earlier node, and a pass runs as
        one node only (it keeps its output buffers from frame to frame: a second node would
        overwrite the first's); ValueError otherwise."""
        if any(n.name == name for n in self.nodes):
            raise ValueError(f"duplicate node name {name!r}")
        again = next((n.name for n in self.nodes if n.render_pass is render_pass), None)
        if again is not None:
            raise ValueError(f"node {name!r}: its pass already runs as node {again!r} (one node per pass instance)")
        edges = dict(edges or {})
        known = {f"{n.name}.{s}" for n in self.nodes for s in n.render_pass.OUTPUTS}
        for slot, src in edges.items():
            if src not in known:
                raise ValueError(f"{name}.{slot} <- {src!r}: no earlier node outputs it (have {sorted(known)})")
        missing = [s for s in render_pass.INPUTS if s not in edges]
        if missing:
            raise ValueError(f"node {name!r} has unconnected inputs {missing}")
        self.nodes.append(Node(name, render_pass, edges))
        return self

    def execute(self, ctx: RenderContext, timed: bool = True) -> tuple[dict[str, Resource], dict[str, float]]:
        """Run every pass; returns (``{"node.slot": Resource}``, ``{node: ms, "node.step": ms}``) — timings empty
        when ``timed`` is False. Waits for the device before returning."""
        import slangpy as spy

        device = ctx.device
        pool = device.create_query_pool(type=spy.QueryType.timestamp, count=2 * len(self.nodes)) if timed else None

        def stamp(index: int) -> None:
            encoder = device.create_command_encoder()
            encoder.write_timestamp(pool, index)
            device.submit_command_buffer(encoder.finish())

        results: dict[str, Resource] = {}
        for i, node in enumerate(self.nodes):
            inputs = {slot: results[src] for slot, src in node.edges.items()}
            if timed:
                stamp(2 * i)
            out = node.render_pass.execute(ctx, inputs)
            if timed:
                stamp(2 * i + 1)
            results.update({f"{node.name}.{slot}": res for slot, res in out.items()})
        device.wait()
        timings: dict[str, float] = {}
        if timed and self.nodes:
            seconds = pool.get_timestamp_results(0, 2 * len(self.nodes))  # ticks / timestamp_frequency
            for i, node in enumerate(self.nodes):
                timings[node.name] = 1e3 * (seconds[2 * i + 1] - seconds[2 * i])
                timings.update({f"{node.name}.{step}": ms for step, ms in node.render_pass.step_timings().items()})
        return results, timings
