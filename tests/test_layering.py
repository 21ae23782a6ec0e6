"""The packages import each other in one direction (README, "Layout"): ``robot`` (the contract) imports none of
the others; ``sim`` and ``real`` import only the contract, never each other; ``mock`` sits above both;
``calibration`` and ``policies`` above those, and nothing below imports ``policies``. Read from the source with
``ast``, lazy imports (inside functions) and type-checking imports included."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("robot", "sim", "real", "mock", "calibration", "policies")

#: What each package may import of the others.
ALLOWED = {
    "robot": set(),
    "sim": {"robot"},
    "real": {"robot"},
    "mock": {"robot", "sim", "real"},
    "calibration": {"robot", "sim", "real"},
    "policies": {"robot", "sim", "real", "mock", "calibration"},
}

#: Former homes kept so that users' documented imports keep working: they only re-export the new home.
COMPAT_SHIMS = {"real.hardware_config", "real.deploy"}
#: The imports against the layering those shims make, and no other: ``real.deploy.deploy`` is run by policies.
SHIM_EXCEPTIONS = {("real.deploy", "policies.deploy")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_modules() -> set[str]:
    return {_module_name(path) for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _imports(path: Path, module: str, modules: set[str] | None = None) -> set[str]:
    """Project modules that ``path`` imports (absolute names; ``from a import b`` counts as ``a.b`` when that is a
    module of ``modules``, else as ``a``)."""
    modules = _all_modules() if modules is None else modules
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
            names = [f"{names[0]}.{a.name}" if f"{names[0]}.{a.name}" in modules else names[0] for a in node.names]
        else:
            continue
        out |= {n for n in names if n.split(".")[0] in PACKAGES}
    return out


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    modules = _all_modules()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            graph[module] |= _imports(path, module, modules) - {module}
    return graph


def test_packages_import_only_the_layers_below_them():
    found = set()
    for module, targets in import_graph().items():
        for target in targets:
            src, dst = module.split(".")[0], target.split(".")[0]
            if src != dst and dst not in ALLOWED[src]:
                found.add((module, target))
    assert found == SHIM_EXCEPTIONS, "imports against the layering"


def test_a_submodule_imported_from_its_package_counts_as_itself():
    names = _imports(ROOT / "calibration" / "sysid.py", "calibration.sysid")
    assert {"calibration.robot_sysid", "calibration.servo_sysid"} <= names  # `from calibration import robot_sysid`


def test_former_homes_only_re_export():
    """A compatibility module holds imports and its docstring, nothing else: no code hides there."""
    for module in COMPAT_SHIMS:
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
        body = tree.body[1:] if isinstance(tree.body[0], ast.Expr) else tree.body
        assert body and all(isinstance(node, ast.ImportFrom) for node in body), module


def test_the_contract_package_imports_nothing_of_the_others():
    graph = import_graph()
    bad = {(m, t) for m, ts in graph.items() if m.split(".")[0] == "robot" for t in ts if t.split(".")[0] != "robot"}
    assert bad == set()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over module-to-module edges (an import of a
    package counts as an import of its ``__init__``)."""
    nodes = set(graph)
    edges = {m: {t for t in ts if t in nodes} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_itself_through_others():
    assert _cycles(import_graph()) == []


def test_a_cycle_is_found_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_what_runs_on_the_robot_reaches_nothing_that_trains():
    """Loading a bundle, acting and deploying pull in no training code (SB3 runs, DAgger, OSI training)."""
    graph = import_graph()
    runtime = ["policies.loader", "policies.adaptive", "policies.deploy"]
    training = {"policies.train", "policies.distill", "policies.osi", "policies.evaluate", "policies.rollout"}
    training |= {"policies.sb3_actor", "policies.train_callbacks", "policies.distill_data", "policies.episodes"}
    seen, todo = set(), list(runtime)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += [t for t in graph.get(module, ()) if t in graph]
    assert seen & training == set()


def test_every_package_is_installed():
    """Each folder of the packages that is a Python package is listed in pyproject.toml's packages: a wheel (not
    only the editable install the Makefile makes) holds all of them."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(init) for package in PACKAGES for init in (ROOT / package).rglob("__init__.py")}
    assert found == listed


def test_library_files_and_functions_stay_small():
    """No library file over 500 lines, no function over 100: a module says one thing, a function does one."""
    long_files, long_functions = [], []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            if len(text.splitlines()) > 500:
                long_files.append(str(path.relative_to(ROOT)))
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 100:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert long_files == [] and long_functions == []


def test_only_the_mock_layer_imports_mujoco():
    """MuJoCo is the stand-in for reality: training, the simulator, the driver and deploy code never import it."""
    importers = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                if any(n.split(".")[0] == "mujoco" for n in names):
                    importers.add(_module_name(path))
    assert importers and all(m.startswith("mock.") for m in importers), importers


def test_the_engine_names_are_the_mock_realities():
    """`--engine` (deploy, mock-bus) offers exactly the engines mock realities are registered for."""
    import typing

    from mock.hardware import REALITIES
    from real.deploy_config import EngineName

    assert set(typing.get_args(EngineName)) == set(REALITIES)
