"""The floor plan: every package imports only from the layers below it.

The layers, bottom to top. A module may import its own package and any package
of a lower layer, never one of its own layer or above: serving never imports
training, evaluation never imports training, the request-path packages never
import the feed that wires them.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("phoenix.config",),
    ("phoenix.parallel",),
    ("phoenix.data",),
    ("phoenix.model",),
    ("phoenix.workdir",),
    ("phoenix.evaluation", "phoenix.serving"),
    ("phoenix.training",),
    ("phoenix.retrieval", "phoenix.benchmark"),
    ("candidate_pipeline",),
    ("filters", "scorers"),
    ("phoenix.feed",),
    ("phoenix.cli", "phoenix"),
)
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """The layer unit a dotted module belongs to: `phoenix.<sub>` or a top-level package."""
    parts = module.split(".")
    if parts[0] == "phoenix" and len(parts) > 1:
        return f"phoenix.{parts[1]}"
    return parts[0]


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def import_edges() -> list[tuple[str, str, str]]:
    """(importing module, its unit, imported unit) for every project import."""
    edges = []
    for package in ("phoenix", "candidate_pipeline", "scorers", "filters"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = module_name(path)
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    targets = [node.module]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                for target in targets:
                    if unit_of(target) in LAYER or target.split(".")[0] in {"phoenix", "candidate_pipeline"}:
                        edges.append((module, unit_of(module), unit_of(target)))
    return edges


def test_every_unit_has_a_layer():
    units = {unit for _, unit, _ in import_edges()} | {target for _, _, target in import_edges()}
    assert units <= set(LAYER), f"packages without a layer: {sorted(units - set(LAYER))}"


def upward(edges: list[tuple[str, str, str]]) -> list[str]:
    """The edges that import a unit of the same layer or above (the package `phoenix` itself is the top)."""
    return [
        f"{module} ({unit}, layer {LAYER[unit]}) imports {target} (layer {LAYER[target]})"
        for module, unit, target in edges
        if target != unit and LAYER[target] >= LAYER[unit] and unit != "phoenix"
    ]


def test_imports_point_down_only():
    bad = upward(import_edges())
    assert not bad, "imports that do not point down:\n" + "\n".join(bad)


def test_the_check_sees_upward_and_sideways_imports():
    """The rule fails when broken: serving importing training (up) or evaluation (its own layer)."""
    edges = import_edges()
    assert any(unit == "phoenix.training" and target == "phoenix.model" for _, unit, target in edges)
    assert not upward([("phoenix.training.loop", "phoenix.training", "phoenix.model")])
    assert upward([("phoenix.serving.service", "phoenix.serving", "phoenix.training")])
    assert upward([("phoenix.serving.service", "phoenix.serving", "phoenix.evaluation")])
    assert upward([("candidate_pipeline.types", "candidate_pipeline", "scorers")])
