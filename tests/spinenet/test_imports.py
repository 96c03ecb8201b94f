"""spinenet is the bottom layer: it imports nothing from analysis or app, and its modules import one another
without a cycle; nor does the package as a whole. Every import statement counts, also one inside a function (a lazy import is still a dependency).
The sources are read with ast; nothing is imported.

An edge goes to the module an import names (`from package import module` names the module). Importing a module
also runs its packages' `__init__`, but that is Python's order of execution, not a dependency of the importer, so
it makes no edge."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "spinescope.spinenet"
UPPER_LAYERS = ("spinescope.analysis", "spinescope.app")


def module_names(folder: Path, package: str) -> dict[str, Path]:
    """Returns {dotted module name: file} for every .py file under `folder`, the package `package`."""
    modules = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def _absolute(name: str) -> str:
    """In a checkout `spinenet.x` and `spinescope.spinenet.x` are one module."""
    for top in ("spinenet", "analysis", "app"):
        if name == top or name.startswith(top + "."):
            return f"spinescope.{name}"
    return name


def imported_modules(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """Returns the absolute names of every module that the file of `module` imports, anywhere in it; a name
    imported from a module that is not itself a module of `modules` stands for that module."""
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(_absolute(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[:len(module.split(".")) + is_package - node.level]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = _absolute(node.module)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                names.add(submodule if submodule in modules else source)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Returns {module: the names it imports} for `modules` ({dotted name: file})."""
    return {module: imported_modules(path, module, modules) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Returns the import cycles of `graph`: its strongly connected components of more than one module, and
    modules importing themselves, each sorted (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(module):
        index[module] = lowest[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                lowest[module] = min(lowest[module], lowest[target])
            elif target in stack:
                lowest[module] = min(lowest[module], index[target])
        if lowest[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1 or module in graph[module]:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return sorted(found)


def spinenet_graph() -> dict[str, set[str]]:
    return import_graph(module_names(ROOT / "spinenet", PACKAGE))


def test_spinenet_imports_nothing_from_analysis_or_app():
    upward = sorted(f"{module} imports {name}" for module, names in spinenet_graph().items() for name in names
                    if any(name == layer or name.startswith(layer + ".") for layer in UPPER_LAYERS))
    assert upward == []


def test_spinenet_has_no_import_cycle():
    assert cycles({module: {name for name in names if name.startswith(PACKAGE)}
                   for module, names in spinenet_graph().items()}) == []


def test_the_whole_package_has_no_import_cycle():
    """Across spinenet, analysis, app and spinescope's own modules (e.g. analysis.limits and
    analysis.latency.memory_guard once imported each other)."""
    graph = {}
    for folder, package in (("spinenet", PACKAGE), ("analysis", "spinescope.analysis"), ("app", "spinescope.app"),
                            ("spinescope", "spinescope")):
        graph.update(import_graph(module_names(ROOT / folder, package)))
    assert cycles({module: {name for name in names if name in graph} for module, names in graph.items()}) == []


def test_cycles_of_a_hand_made_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "outside"}, "d": {"a"}, "e": {"e"}, "f": {"g"}, "g": set()}
    assert cycles(graph) == [["a", "b", "c"], ["e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_lazy_relative_and_from_package_imports_are_edges(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.sub import leaf\n")
    (package / "sub" / "__init__.py").write_text("from .leaf import VALUE\n")
    (package / "sub" / "leaf.py").write_text("def late():\n    from .. import top\n    import spinenet.spec\n"
                                             "    from analysis.counting import fast\n")
    (package / "top.py").write_text("VALUE = 1\n")
    graph = import_graph(module_names(package, "pkg"))
    assert graph == {"pkg": {"pkg.sub.leaf"}, "pkg.sub": {"pkg.sub.leaf"},
                     "pkg.sub.leaf": {"pkg.top", "spinescope.spinenet.spec", "spinescope.analysis.counting"},
                     "pkg.top": set()}
