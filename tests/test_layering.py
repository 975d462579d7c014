"""The package follows its pipeline: model -> IR -> compress -> modules -> bounds ->
compose/refine -> certificate; spec; falsify; check; commands, cli and gate on top.

Every module of ``verify/`` is parsed (not imported) and its imports of verify modules
collected, at any nesting level: ``import verify.x``, ``from verify.x import y`` (the module
``verify.x.y`` when that is a module, else ``verify.x``; a package counts as its
``__init__``), relative imports, and ``importlib.import_module`` calls.  Then:

* no import cycles.  Besides the imports written, importing ``verify.a.b`` first runs the
  ``__init__`` of the package ``verify.a``: an import of ``verify.a.b`` from outside
  ``verify.a`` counts as an import of ``verify.a`` too (a package ``__init__`` that imports
  what imports it back fails, or not, depending on which module is imported first);
* imports of verify modules sit at the top of the file: inside a function only where
  :data:`LAZY` says why (start-up time, each measured by a test).  Third-party packages
  imported inside functions (torch, onnx, onnxruntime, auto_LiRPA, z3, matplotlib) are
  not counted;
* every import goes to a module of equal or lower rank (:data:`RANKS`), and what a
  package ``__init__`` imports to a rank no higher than any module importing the package's
  modules from outside;
* the certificate checker stays independent: it imports only ``verify.errors``, the spec
  reader ``verify.spec`` (part of its trusted core, see ``verify/certcheck/__init__.py``)
  and itself.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "verify"

#: Layers, lowest first; a module's rank is that of its longest matching prefix.
RANKS = {
    # 0: what everything may use
    "verify": 0,  # the package __init__: the version and a table of lazily exported names
    "verify.errors": 0,
    "verify.numerics": 0,  # the decision threshold and its safety margins
    "verify.runtime": 0,  # output files, the watchdog, progress lines, the longest timeout
    "verify.cluster": 0,  # tasks on a Ray cluster (retries, hard timeouts): knows tasks, not networks
    # 1: the inputs (the network, the property)
    "verify.ir": 1,
    "verify.model": 1,
    "verify.spec": 1,
    # 2: representations and kernels built on them
    "verify.graph": 2,  # the flat networkx form of the IR
    "verify.bounds.linear_relax": 2,  # bound kernels on weight lists (IBP, CROWN, alpha): torch only
    "verify.bounds.adam": 2,
    "verify.certcheck": 2,  # the independent checker: errors, spec and itself (test below)
    # 3: compression (the chain form is folded with its exact passes)
    "verify.compress": 3,
    "verify.graph.chain": 3,  # the chain form read off the IR (no networkx)
    "verify.graph.chain_graph": 3,  # chains to and from the flat networkx form compression rewrites
    # 4: modules of the compressed network
    "verify.modules": 4,
    # 5: bounds on modules and networks (backends, engines)
    "verify.bounds": 5,
    # 6: the certificate format (producer side, used by the provers above it), falsification
    "verify.certificate": 6,
    "verify.falsify": 6,
    "verify.strategies": 6,  # hypothesis strategies over a property's region (falsify's search uses them)
    # 7: provers
    "verify.compose": 7,
    "verify.refine": 7,
    # 8: the check pipeline and what reads its results
    "verify.check": 8,
    "verify.relational": 8,  # templated and relational properties: derivative bounds, products, pairs
    "verify.report": 8,
    "verify.testing": 8,
    # 9: the applications
    "verify.cli": 9,
    "verify.commands": 9,
    "verify.gate": 9,
    "verify.batch": 9,
    "verify.batch_worker": 9,
    "verify.pytest_plugin": 9,
}

#: Imports of verify modules inside functions, by importing module: (the modules it
#: imports there, why).  Each keeps a third-party package out of a measured start-up.
LAZY = {
    "verify.check": ({"verify.falsify.combined", "verify.compose", "verify.compress", "verify.graph.chain_graph"},
                     "hypothesis loads only when a counterexample search runs, networkx only when a chain is "
                     "compressed or composed for branch and bound: a chain its bounds settle loads neither "
                     "(tests/test_startup.py)"),
    "verify.falsify.corners": ({"verify.graph.chain_graph", "verify.graph.extract"},
                               "networkx loads only for a network that is a chain once its convolutions are "
                               "written out densely, not for a dense chain (tests/test_startup.py)"),
    "verify.compose.policy": ({"verify.bounds.z3_backend"},
                              "z3 loads only when a module is bounded exactly (tests/test_startup.py)"),
    "verify.gate.worker": ({"verify.check", "verify.model.network", "verify.relational"},
                           "torch loads only when a property is checked or a model loaded: a fully cached gate "
                           "imports neither (tests/gate/test_cached_startup.py)"),
    "verify.gate.pictures": ({"verify.compress", "verify.modules.draw"},
                             "networkx, torch and matplotlib load only when a picture is drawn, not when the "
                             "cache has it (tests/gate/test_cached_startup.py)"),
    "verify.testing": ({"verify.falsify.combined", "verify.model.network", "verify.strategies"},
                       "the pytest plugin imports verify.testing in every pytest session; torch and hypothesis "
                       "load when assert_property first runs (tests/test_startup.py)"),
}

#: Modules importing verify modules by name (``importlib.import_module``, inside a function): why.
DYNAMIC = {
    "verify": "the public API's names load on first use, so that `import verify` (run by every "
              "import of a verify module) stays cheap",
    "verify.falsify": "the falsifiers' names load on first use, so that importing verify.falsify.base "
                      "(replay in a cached gate) loads no torch or hypothesis",
    "verify.cli": "the command line imports the one command module that runs (the cached gate's process "
                  "imports no torch: tests/gate/test_cached_startup.py)",
    "verify.batch": "the worker process imports verify.batch_worker (torch); the supervisor must not",
    "verify.graph": "extract_graph and evaluate_graph (networkx) load on first use, so that the chain form "
                    "(verify.graph.chain, on every check of a dense chain) loads no networkx",
    "verify.model.onnx_lite": "imports onnx's protobuf and checker modules (not verify's) without the onnx "
                              "package's __init__ (ml_dtypes, 0.86 s): tests/model/test_onnx_lite.py",
}

#: Inside-function imports of verify/certcheck/, which is being reworked by another change
#: (not edited here): ``checker`` and ``modules`` import each other inside functions (a cycle),
#: and ``checker`` imports the spec reader inside ``check_certificate``.  Left out of the
#: checks until that change moves them to the top (the shared names, ``ClaimFailed`` and
#: ``_polytope_rows``, into a module both import); remove an entry once its import is gone.
PENDING = {
    "verify.certcheck.checker": {"verify.certcheck.modules", "verify.spec"},
    "verify.certcheck.modules": {"verify.certcheck.checker"},
}

CERTCHECK_MAY_IMPORT = ("verify.errors", "verify.spec", "verify.certcheck")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    line: int
    nested: bool  # inside a function or method
    dynamic: bool = False  # importlib.import_module


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {m for m, p in MODULES.items() if p.name == "__init__.py"}


def _imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[Import] = []
    here = module.split(".") if module in PACKAGES else module.split(".")[:-1]

    def add(target: str, node: ast.AST, nested: bool, dynamic: bool = False) -> None:
        if target == "verify" or target.startswith("verify."):
            found.append(Import(module, target, node.lineno, nested, dynamic))  # type: ignore[attr-defined]

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, nested)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(here[:len(here) - child.level + 1] + ([base] if base else []))
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    add(sub if sub in MODULES else base, child, nested)
            elif isinstance(child, ast.Call) and _is_import_module(child.func):
                arg = child.args[0] if child.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(arg.value, child, nested, dynamic=True)
                else:  # a computed name (a verify module, or not): listed in DYNAMIC all the same
                    found.append(Import(module, "verify", child.lineno, nested, dynamic=True))
            visit(child, nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def _is_import_module(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module" and isinstance(func.value, ast.Name) and func.value.id == "importlib"
    return isinstance(func, ast.Name) and func.id == "import_module"


IMPORTS = [i for m, p in MODULES.items() for i in _imports(m, p)]
STATIC = [i for i in IMPORTS if not i.dynamic and i.target not in PENDING.get(i.source, ())]


def _ancestors(module: str) -> list[str]:
    """The packages whose ``__init__`` runs before ``module`` (``verify`` itself left out)."""
    parts = module.split(".")
    return [".".join(parts[:k]) for k in range(2, len(parts))]


def _implied(imp: Import) -> list[str]:
    """The package ``__init__`` files an import runs besides its target (not the importer's own)."""
    own = set(_ancestors(imp.source)) | ({imp.source} if imp.source in PACKAGES else set())
    return [p for p in _ancestors(imp.target) if p not in own and p in MODULES]


def rank(module: str) -> int:
    parts = module.split(".")
    for k in range(len(parts), 1, -1):
        prefix = ".".join(parts[:k])
        if prefix in RANKS:
            return RANKS[prefix]
    if module == "verify":
        return RANKS["verify"]
    raise AssertionError(f"{module} has no rank: add it (or its package) to RANKS in tests/test_layering.py")


def _where(imp: Import) -> str:
    return f"{MODULES[imp.source].relative_to(PACKAGE.parent)}:{imp.line}: {imp.source} imports {imp.target}"


def test_the_import_graph_is_read() -> None:
    """The parser sees what is there (a broken parser would make every check below pass)."""
    assert len(MODULES) > 80 and "verify.check" in MODULES and "verify.ir" in PACKAGES
    pairs = {(i.source, i.target) for i in STATIC}
    assert ("verify.check", "verify.spec.property") in pairs
    assert ("verify.spec", "verify.spec.property") in pairs  # a package re-exporting its module
    assert ("verify.compress", "verify.compress.fold") in pairs
    assert any(i.source == "verify.cli" and i.dynamic for i in IMPORTS)
    assert any(i.nested for i in IMPORTS if i.source == "verify.gate.worker")


def test_no_import_cycles() -> None:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for imp in STATIC:
        for target in [imp.target, *_implied(imp)]:
            if target != imp.source:
                graph.add_edge(imp.source, target)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    lines = [f"  {a} -> {b}" for a, b in cycle]
    pytest.fail("import cycle (move what both sides share into a module lower down):\n" + "\n".join(lines))


def test_verify_imports_inside_functions_are_the_listed_ones() -> None:
    unlisted = [_where(i) for i in STATIC if i.nested and i.target not in LAZY.get(i.source, ((), ""))[0]]
    assert not unlisted, "import at the top of the file instead (or add to LAZY, with the start-up test " \
                         "that needs it):\n" + "\n".join(unlisted)
    used = {(i.source, i.target) for i in STATIC if i.nested}
    stale = [f"{m} -> {t}" for m, (targets, _) in LAZY.items() for t in targets if (m, t) not in used]
    assert not stale, "LAZY lists imports that are no longer inside a function: remove them\n" + "\n".join(stale)
    pending = {(i.source, i.target) for i in IMPORTS if i.nested}
    done = [f"{m} -> {t}" for m, targets in PENDING.items() for t in targets if (m, t) not in pending]
    assert not done, "PENDING lists imports that are gone from inside functions: remove them\n" + "\n".join(done)


def test_imports_by_name_are_the_listed_ones() -> None:
    dynamic = {i.source for i in IMPORTS if i.dynamic}
    assert dynamic <= set(DYNAMIC), f"importlib.import_module of verify modules in {sorted(dynamic - set(DYNAMIC))}"
    assert set(DYNAMIC) <= dynamic, f"DYNAMIC lists modules that no longer import by name: {set(DYNAMIC) - dynamic}"


def test_imports_go_down_the_layers() -> None:
    upward = {f"{_where(i)} (rank {rank(i.source)} -> {rank(i.target)})": None
              for i in STATIC if rank(i.target) > rank(i.source)}
    package_imports: dict[str, set[str]] = {}
    for imp in STATIC:
        package_imports.setdefault(imp.source, set()).add(imp.target)
    for imp in STATIC:
        for package in _implied(imp):
            for inner in sorted(package_imports.get(package, set()) - {imp.target}):
                if rank(inner) > rank(imp.source):
                    upward[f"{_where(imp)}, which runs {package}/__init__.py, which imports {inner} "
                           f"(rank {rank(imp.source)} -> {rank(inner)})"] = None
    assert not upward, "imports of a higher layer (move the code they need down):\n" + "\n".join(upward)


def test_every_module_has_a_rank() -> None:
    ranks = {module: rank(module) for module in MODULES}  # rank() fails naming a module without one
    assert ranks and all(isinstance(r, int) and r >= 0 for r in ranks.values())


def test_the_certificate_checker_is_independent() -> None:
    outside = [_where(i) for i in IMPORTS if i.source.startswith("verify.certcheck")
               and not any(i.target == m or i.target.startswith(m + ".") for m in CERTCHECK_MAY_IMPORT)]
    assert not outside, "the checker must not rely on the engine it checks:\n" + "\n".join(outside)
