"""The package's shape, read from the source with ``ast``, so that a later change cannot quietly undo it.

Read: every ``.py`` file under ``automl/`` and ``plugins/`` (installed as ``automl.plugins``).
Nothing is imported, so the checks take well under a second.

An import is any ``import`` or ``from ... import`` statement, at module level or inside a
function, and any ``importlib.import_module("...")`` call whose name is a literal; relative
imports are resolved. ``from . import x`` where ``x`` is a module imports that module; any other
name taken from a package imports its ``__init__``, which is a module like the others. Two kinds
are left out, since neither ever runs an import: statements under ``if TYPE_CHECKING:``, and the
parent packages Python runs on the way to a submodule (``import automl.data.schema`` counts as
importing ``automl.data.schema`` only).

Checked:
- every import of ``automl.*`` names a module that exists (a path left behind by a move fails here,
  even one inside a function that no test happens to call);
- no import circle among the modules;
- no module takes a private (underscored) name from a module of another subpackage; the top-level
  modules (``automl._spec``, ``automl._plugins``, ...) are one group of their own, the core;
- imports follow ``MAY_IMPORT``, the table of layers below; ``automl.store`` (what ``load`` needs)
  reaches neither Optuna nor ``automl.search``/``automl.fit``, not even through other modules;
- no module over 450 lines; no function body over 100 lines and ``automl.fit.api.fit_best``'s
  under 60 (a body is counted from its first statement to its last, the docstring aside);
- functions take fewer than 8 parameters (``self``/``cls`` aside, ``*args`` and ``**kwargs`` one
  each), except estimators' ``__init__`` (scikit-learn's convention: one argument per
  hyperparameter) and the public faces in ``WIDE_BY_CONTRACT``;
- docs/architecture.md names every subpackage and only modules that exist.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"automl": ROOT / "automl", "automl.plugins": ROOT / "plugins"}  # package -> its folder

# Layers: a module's layer is that of its subpackage, or its own for a top-level module.
PACKAGE_LAYER = {
    "automl.data": "data",
    "automl.search": "search",
    "automl.fit": "fit",
    "automl.store": "store",
    "automl.deploy": "deploy",
    "automl.review": "review",
    "automl.plugins": "plugins",
}
MODULE_LAYER = {
    "automl._exceptions": "core",
    "automl._spec": "core",
    "automl.hookspecs": "core",
    "automl._metrics": "core",
    "automl._version": "core",
    "automl._signals": "core",
    "automl._plugins": "registry",
    "automl._cli": "cli",
    "automl.__main__": "cli",
    "automl": "face",  # automl/__init__.py: the public names
}
# Kept so that runs pickled by 0.1.0 load: each imports its target and nothing else, and no
# module imports them.
ALIASES = {
    "automl._data": "automl.data.schema",
    "automl._preprocess": "automl.data.preprocess",
    "automl._ensemble": "automl.store.ensemble",
}
ANYTHING = {"core", "registry", "data", "store", "search", "fit", "deploy", "review", "plugins", "cli", "face"}
# layer -> the other layers it may import (its own is always allowed). Data and imports flow one
# way: data -> search -> fit; store holds what load needs; deploy and review read saved runs.
MAY_IMPORT = {
    "core": set(),
    "data": {"core"},
    "registry": {"core", "data"},
    "store": {"core", "data"},
    "search": {"core", "data", "registry", "store"},
    "fit": {"core", "data", "registry", "search", "store"},
    "deploy": {"core", "data", "store"},
    "review": {"core", "data", "registry", "search", "store"},
    "plugins": {"face"},  # built-in plugins use what a third-party plugin may: `import automl`
    "cli": ANYTHING,
    "face": ANYTHING,
}

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 100
MAX_FIT_BEST_LINES = 59  # "under 60"
MAX_PARAMETERS = 7  # "fewer than 8"
# Functions allowed more parameters, each with the reason. Estimators' __init__ are found by
# their classes (a subclass of scikit-learn's BaseEstimator), not listed here.
WIDE_BY_CONTRACT = {
    "automl.fit.api.fit_best": "the public API: its keyword arguments are the promise 0.1.0 made",
    "automl.deploy.serve.create_app": "public face of the HTTP service; its arguments are documented",
    "automl.store.result.Result.__init__": "automl.Result is public; its keyword arguments are 0.1.0's",
}


@dataclasses.dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module = dataclasses.field(repr=False, compare=False)

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]

    @property
    def where(self) -> str:
        return str(self.path.relative_to(ROOT))


@dataclasses.dataclass(frozen=True)
class Import:
    module: Module  # the importer
    line: int
    text: str  # the statement, as written (give or take spacing)
    target: str  # the module imported, resolved
    name: str | None  # the name taken from target, when it is not itself a module

    def __str__(self) -> str:
        return f"{self.module.where}:{self.line}: `{self.text}`"


@cache
def modules() -> dict[str, Module]:
    found = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join((package, *(parts[:-1] if is_package else parts)))
            found[name] = Module(name, path, is_package, ast.parse(path.read_text(), str(path)))
    assert "automl.fit.api" in found and "automl.plugins.ridge" in found, "the sources were not found"
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _executed_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (the ``else:`` branch does run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            stack.append(node.test)
        else:
            stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, level: int, package: str) -> str:
    if not level:
        return name
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _import_module_call(node: ast.Call, module: Module) -> str | None:
    """The module named by ``importlib.import_module("literal"[, package])``, else None."""
    func = node.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )
    if not named or not node.args or not isinstance(node.args[0], ast.Constant) or not isinstance(node.args[0].value, str):
        return None
    name = node.args[0].value
    if not name.startswith("."):
        return name
    anchor = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "package"), None)
    if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
        package = anchor.value
    elif isinstance(anchor, ast.Name) and anchor.id == "__name__":
        package = module.name
    elif isinstance(anchor, ast.Name) and anchor.id == "__package__":
        package = module.package
    else:
        return None
    level = len(name) - len(name.lstrip("."))
    return _resolve(name[level:], level, package)


def _imports_of(module: Module) -> list[Import]:
    known, out = modules(), []

    def add(node, target, name=None):
        out.append(Import(module, node.lineno, ast.unparse(node), target, name))

    for node in _executed_nodes(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, module.package)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    add(node, f"{base}.{alias.name}")
                else:
                    add(node, base, alias.name)
        elif isinstance(node, ast.Call) and (target := _import_module_call(node, module)):
            add(node, target)
    return sorted(out, key=lambda i: i.line)


@cache
def all_imports() -> list[Import]:
    return [i for m in modules().values() for i in _imports_of(m)]


def internal_imports() -> list[Import]:
    return [i for i in all_imports() if i.target in modules() and i.target != i.module.name]


def layer_of(name: str) -> str:
    if name in ALIASES:
        return "alias"
    if name in MODULE_LAYER:
        return MODULE_LAYER[name]
    for package, layer in PACKAGE_LAYER.items():
        if name == package or name.startswith(package + "."):
            return layer
    raise AssertionError(f"{name} has no layer: add it to MODULE_LAYER or PACKAGE_LAYER in {__file__}")


def group_of(name: str) -> str:
    """The subpackage a module belongs to; the top-level modules form the group ``automl``."""
    for package in PACKAGE_LAYER:
        if name == package or name.startswith(package + "."):
            return package
    return "automl"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _report(problems: list[str], what: str) -> str:
    problems = list(dict.fromkeys(problems))  # one line per statement, not per name it imports
    return f"{len(problems)} {what}:\n  " + "\n  ".join(problems)


# --- imports ------------------------------------------------------------------------------


def test_the_reader_counts_what_runs():
    """The checks below see imports in functions and literal import_module calls, not TYPE_CHECKING."""
    source = """
from typing import TYPE_CHECKING
import importlib
from . import api
from .._spec import ModelContext
if TYPE_CHECKING:
    from ..report import oof
def later():
    from ..store.persist import load
    importlib.import_module("automl.data.schema")
    importlib.import_module(".preprocess", "automl.data")
    importlib.import_module(name_in_a_variable)
"""
    sample = Module("automl.fit.sample", ROOT / "automl" / "fit" / "sample.py", False, ast.parse(source))
    found = {(i.target, i.name) for i in _imports_of(sample)}
    assert found == {
        ("typing", "TYPE_CHECKING"), ("importlib", None), ("automl.fit.api", None), ("automl._spec", "ModelContext"),
        ("automl.store.persist", "load"), ("automl.data.schema", None), ("automl.data.preprocess", None),
    }
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}) == [["a", "b", "c"]]


def test_every_automl_import_names_an_existing_module():
    missing = [
        f"{i}: no module {i.target}"
        for i in all_imports()
        if (i.target == "automl" or i.target.startswith("automl.")) and i.target not in modules()
    ]
    assert not missing, _report(missing, "imports of modules that do not exist")


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    graph = {name: set() for name in modules()}
    for i in internal_imports():
        graph[i.module.name].add(i.target)
    problems = []
    for circle in _circles(graph):
        members = set(circle)
        ties = [f"    {i}" for i in internal_imports() if i.module.name in members and i.target in members]
        problems.append(" <-> ".join(circle) + ", through:\n" + "\n".join(ties))
    assert not problems, _report(problems, "import circles")


def test_no_private_name_from_another_subpackage():
    problems = []
    for i in internal_imports():
        taken = i.name if i.name is not None else i.target.rpartition(".")[2]
        if i.name is None and group_of(i.target) == "automl":
            continue  # a top-level module (automl._spec, ...) is the core: importing it is the point
        if _is_private(taken) and group_of(i.module.name) != group_of(i.target):
            problems.append(f"{i}: {taken} is private to {i.target}")
    assert not problems, _report(problems, "imports of private names across subpackages")


def test_imports_follow_the_layers():
    problems = []
    for name in modules():
        layer_of(name)  # every module has a layer
    for i in internal_imports():
        source, target = layer_of(i.module.name), layer_of(i.target)
        if source == "alias":
            if i.target != ALIASES[i.module.name]:
                problems.append(f"{i}: the alias {i.module.name} imports only {ALIASES[i.module.name]}")
        elif target == "alias":
            problems.append(f"{i}: {i.target} is kept only for unpickling 0.1.0 runs; import {ALIASES[i.target]}")
        elif target != source and target not in MAY_IMPORT[source]:
            allowed = ", ".join(sorted(MAY_IMPORT[source])) or "nothing else of automl"
            problems.append(f"{i}: {source} may import {allowed}, not {target} ({i.target})")
    assert not problems, _report(problems, "imports against the layers")


def test_store_reaches_neither_optuna_nor_the_search():
    """What ``load`` needs must not pull in Optuna or the search, even through another module."""
    by_module: dict[str, list[Import]] = {}
    for i in all_imports():
        by_module.setdefault(i.module.name, []).append(i)
    start = [name for name in modules() if layer_of(name) == "store"]
    route = {name: [] for name in start}  # module -> the imports that lead to it
    todo = list(start)
    while todo:
        name = todo.pop()
        for i in by_module.get(name, []):
            if i.target in modules() and i.target not in route:
                route[i.target] = route[name] + [i]
                todo.append(i.target)
    problems = []
    for name, path in sorted(route.items()):
        how = "".join(f"\n    {step}" for step in path)
        if layer_of(name) in {"search", "fit"}:
            problems.append(f"{name} is reached from store:{how}")
        for i in by_module.get(name, []):
            if i.target == "optuna" or i.target.startswith("optuna."):
                problems.append(f"{i} imports Optuna, reached from store:{how or ' (a store module)'}")
    assert not problems, _report(problems, "ways from automl.store to Optuna or the search")


# --- sizes --------------------------------------------------------------------------------


def _functions():
    """(qualified name, def node, whether it is a method) for every function, nested ones too."""

    def walk(node, prefix, in_class):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{prefix}.{child.name}", child, in_class
                yield from walk(child, f"{prefix}.{child.name}", False)
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}.{child.name}", True)
            else:
                yield from walk(child, prefix, in_class)

    for module in modules().values():
        for name, node, is_method in walk(module.tree, module.name, False):
            yield module, name, node, is_method


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return body[-1].end_lineno - body[0].lineno + 1


def test_no_module_over_450_lines():
    problems = []
    for module in modules().values():
        lines = len(module.path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{module.where}: {lines} lines")
    assert not problems, _report(problems, f"modules over {MAX_MODULE_LINES} lines")


def test_no_function_body_over_100_lines():
    problems = [
        f"{module.where}:{node.lineno}: {name} has a body of {_body_lines(node)} lines"
        for module, name, node, _ in _functions()
        if _body_lines(node) > MAX_FUNCTION_LINES
    ]
    assert not problems, _report(problems, f"functions over {MAX_FUNCTION_LINES} lines (docstring aside)")


def test_fit_best_is_a_thin_face():
    ((module, _, node, _),) = [f for f in _functions() if f[1] == "automl.fit.api.fit_best"]
    lines = _body_lines(node)
    assert lines <= MAX_FIT_BEST_LINES, f"{module.where}:{node.lineno}: fit_best's body is {lines} lines (docstring aside)"


def _estimator_classes() -> set[str]:
    """Names of classes that are scikit-learn estimators: BaseEstimator among their ancestors."""
    bases = {}
    for module in modules().values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                names = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases if isinstance(b, (ast.Name, ast.Attribute))}
                bases[f"{module.name}.{node.name}"] = names
    short = {}
    for qualified in bases:
        short.setdefault(qualified.rpartition(".")[2], set()).add(qualified)
    estimators, grew = set(), True
    while grew:
        grew = False
        for qualified, names in bases.items():
            inherited = any(n == "BaseEstimator" or short.get(n, set()) & estimators for n in names)
            if qualified not in estimators and inherited:
                estimators.add(qualified)
                grew = True
    return estimators


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef, is_method: bool) -> list[str]:
    a = node.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)
    if is_method and not static and names and names[0] in {"self", "cls"}:
        names = names[1:]
    return names


def test_wide_exemptions_name_real_functions():
    names = {name for _, name, _, _ in _functions()}
    assert set(WIDE_BY_CONTRACT) <= names, f"exempt but gone: {sorted(set(WIDE_BY_CONTRACT) - names)}"


def test_internal_functions_take_fewer_than_8_parameters():
    estimators = _estimator_classes()
    problems = []
    for module, name, node, is_method in _functions():
        params = _parameters(node, is_method)
        if len(params) <= MAX_PARAMETERS or name in WIDE_BY_CONTRACT:
            continue
        if node.name == "__init__" and is_method and name.rpartition(".")[0] in estimators:
            continue
        problems.append(f"{module.where}:{node.lineno}: {name} takes {len(params)}: {', '.join(params)}")
    assert not problems, _report(problems, f"functions over {MAX_PARAMETERS} parameters")


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_alias_modules_import_their_target(name):
    """An alias is there only for 0.1.0's pickles: it must keep importing where the classes moved."""
    assert ALIASES[name] in {i.target for i in _imports_of(modules()[name])}


def test_architecture_page_matches_the_tree():
    """docs/architecture.md names every subpackage, and each module it names exists."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    for package in PACKAGE_LAYER:
        assert f"{package.removeprefix('automl.')}/" in page, f"docs/architecture.md does not name {package}"
    named = set(re.findall(r"`((?:data|search|fit|store|deploy|report)/\w+)`", page))
    assert named, "the page's module names were not found"
    gone = sorted(name for name in named if "automl." + name.replace("/", ".") not in modules())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text(), "README links docs/architecture.md"


def test_no_subpackage_hides_a_public_name():
    """Importing ``automl.x.y`` binds ``automl.x`` to the subpackage: a subpackage named like a
    public function (``automl.report``, ``automl.evaluate``) would replace it."""
    tree = ast.parse((ROOT / "automl" / "__init__.py").read_text())
    (public,) = [
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
    ]
    subpackages = {p.parent.name for p in (ROOT / "automl").glob("*/__init__.py")}
    assert subpackages and not subpackages & set(public), f"subpackages named like public names: {subpackages & set(public)}"
