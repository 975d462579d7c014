"""Show the module graph: a picture (matplotlib, PNG or SVG), Graphviz DOT text, and JSON.

The picture has one column per stage, left to right (the input first, the output last),
one box per module labelled with its name, neuron count and unstable-ReLU count (the
more unstable, the darker), and an arrow wherever one module reads another, labelled
with the interface width (neurons read).  No Graphviz binary is needed: DOT is written
as text for those who have one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from verify.compress.layers import INPUT
from verify.compress.modules import Module, module_graph


def _label(g: nx.DiGraph, node: str) -> str:
    data = g.nodes[node]
    if data["kind"] == "input":
        return f"input\n{data['n_neurons']} inputs"
    if data["kind"] == "output":
        return f"{node}\n{data['n_neurons']} output(s)"
    n = data["n_neurons"]
    return f"{node}\n{n} neuron{'s' if n != 1 else ''}\n{data['n_unstable']} unstable"


def _positions(g: nx.DiGraph) -> dict[str, tuple[float, float]]:
    by_stage: dict[int, list[str]] = {}
    for node, data in g.nodes(data=True):
        by_stage.setdefault(int(data["stage"]), []).append(node)
    pos = {}
    for stage, nodes in by_stage.items():
        for k, node in enumerate(nodes):
            pos[node] = (float(stage), (len(nodes) - 1) / 2.0 - k)
    return pos


def draw_modules(modules: list[Module], n_inputs: int, path: str | Path, title: str = "",
                 max_unstable: int = 12) -> Path:
    """Write the module picture to ``path`` (format from the suffix: .png or .svg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    g = module_graph(modules, n_inputs)
    pos = _positions(g)
    n_stages = max(int(d["stage"]) for _, d in g.nodes(data=True)) + 1
    tallest = max(sum(1 for _, d in g.nodes(data=True) if d["stage"] == s) for s in range(n_stages))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.9 * n_stages), 1.1 * tallest + 0.8))
    w, h = 0.62, 0.78
    for src, dst, data in g.edges(data=True):
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        ax.annotate("", xy=(x1 - w / 2, y1), xytext=(x0 + w / 2, y0),
                    arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 0.8, "shrinkA": 0, "shrinkB": 0})
        if g.out_degree(src) * g.in_degree(dst) <= 4 or len(g.edges) <= 12:
            ax.text(x0 + w / 2 + 0.3 * (x1 - x0 - w), y0 + 0.3 * (y1 - y0) + 0.05, str(data["width"]),
                    fontsize=7, color="0.3", ha="center", va="bottom")
    cmap = plt.get_cmap("Oranges")
    for node, data in g.nodes(data=True):
        x, y = pos[node]
        if data["kind"] == "hidden":
            face = cmap(0.15 + 0.7 * min(1.0, data["n_unstable"] / max(1, max_unstable)))
        else:
            face = "#dde8f5"
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.06",
                                    facecolor=face, edgecolor="0.2", lw=0.9))
        ax.text(x, y, _label(g, node), ha="center", va="center", fontsize=7.5)
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(-0.6, n_stages - 0.4)
    ax.set_ylim(min(ys) - 0.65, max(ys) + 0.65)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    path = Path(path)
    fig.savefig(path, bbox_inches="tight", dpi=130)
    plt.close(fig)
    return path


def to_dot(modules: list[Module], n_inputs: int, name: str = "modules") -> str:
    """Graphviz DOT text of the module graph (left to right, one rank per stage)."""
    g = module_graph(modules, n_inputs)
    lines = [f'digraph "{name}" {{', "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontsize=10];']
    for node, data in g.nodes(data=True):
        label = _label(g, node).replace("\n", "\\n")
        color = "#dde8f5" if data["kind"] != "hidden" else ("#f7b67a" if data["n_unstable"] else "#fde3c8")
        lines.append(f'  "{node}" [label="{label}", fillcolor="{color}"];')
    by_stage: dict[int, list[str]] = {}
    for node, data in g.nodes(data=True):
        by_stage.setdefault(int(data["stage"]), []).append(node)
    for nodes in by_stage.values():
        lines.append("  { rank=same; " + " ".join(f'"{n}";' for n in nodes) + " }")
    for src, dst, data in g.edges(data=True):
        lines.append(f'  "{src}" -> "{dst}" [label="{data["width"]}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    """Plain JSON values (non-finite floats become None)."""
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer, np.floating)):
        return _jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def graph_json(graph: nx.DiGraph, modules: list[Module], weights: bool = False) -> dict[str, Any]:
    """A JSON-ready description of a graph and its modules (weights only with ``weights``)."""
    nodes = []
    for node, data in graph.nodes(data=True):
        entry = {"name": node, **{k: _jsonable(v) for k, v in data.items() if k not in ("W", "b", "groups")}}
        if data["op"] == "affine":
            entry["nonzero_weights"] = int(np.count_nonzero(data["W"]))
            if weights:
                entry["W"], entry["b"] = _jsonable(data["W"]), _jsonable(data["b"])
        nodes.append(entry)
    edges = [{"from": u, "to": v, "port": int(d.get("port", 0))} for u, v, d in graph.edges(data=True)]
    mg = module_graph(modules, int(graph.nodes[INPUT]["size"])) if INPUT in graph else nx.DiGraph()
    return {"output": graph.graph.get("output"), "nodes": nodes, "edges": edges,
            "modules": [m.to_json() for m in modules],
            "module_edges": [{"from": u, "to": v, "width": int(d["width"])} for u, v, d in mg.edges(data=True)],
            "removed": _jsonable(graph.graph.get("removed", {}))}


def write_all(graph: nx.DiGraph, modules: list[Module], out_dir: str | Path, title: str = "",
              max_unstable: int = 12, extra: dict[str, Any] | None = None) -> list[Path]:
    """Write ``modules.svg``, ``modules.png``, ``graph.dot`` and ``graph.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_in = int(graph.nodes[INPUT]["size"])
    paths = [draw_modules(modules, n_in, out / "modules.svg", title, max_unstable),
             draw_modules(modules, n_in, out / "modules.png", title, max_unstable)]
    (out / "graph.dot").write_text(to_dot(modules, n_in))
    data = graph_json(graph, modules)
    if extra:
        data.update(_jsonable(extra))
    (out / "graph.json").write_text(json.dumps(data, indent=1))
    return paths + [out / "graph.dot", out / "graph.json"]
