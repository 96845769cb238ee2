"""Import boundaries: the compiler never imports torch/modal at module level; the runtime never imports
the compiler; `megaspec lint` loads neither torch nor modal."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "modal"}


def module_level_imports(path: Path) -> list[tuple[int, str]]:
    """Imports outside any function body (module level, class bodies, `if`/`try` blocks)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((child.lineno, child.module))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


def test_compiler_never_imports_torch_or_modal_at_module_level():
    offenders = [f"{p.relative_to(ROOT)}:{line} imports {name}"
                 for p in sorted((ROOT / "compiler").rglob("*.py"))
                 for line, name in module_level_imports(p) if name.split(".")[0] in HEAVY]
    assert not offenders, offenders


def test_runtime_never_imports_the_compiler():
    offenders = []
    for p in sorted((ROOT / "runtime").rglob("*.py")):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [("." * node.level) + (node.module or "")] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{p.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                          if n.startswith(("megaspec.compiler", "compiler", "..compiler"))]
    assert not offenders, offenders


def test_lint_entry_points_load_neither_torch_nor_modal():
    code = "import megaspec.compiler.cli, megaspec.compiler.lint.check"
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                            check=True, timeout=120)
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert modules, result.stderr[-500:]
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, heavy


# The compiler's folders in pipeline order: a folder imports only from itself and the folders before it.
FOLDER_ORDER = ["data", "spec", "lint", "codegen", "runs", "commands"]


def _imported_compiler_modules(path: Path) -> list[tuple[int, str]]:
    """Every `megaspec.compiler...` module a file imports, function-level imports included, as dotted paths."""
    here = list(path.relative_to(ROOT / "compiler").with_suffix("").parts)
    package = here if here[-1] == "__init__" else here[:-1]
    package = [p for p in package if p != "__init__"]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            found += [(node.lineno, ".".join(target + [a.name])) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("megaspec.compiler."):
            found.append((node.lineno, node.module.removeprefix("megaspec.compiler.")))
    return found


def test_compiler_folders_import_only_earlier_pipeline_stages():
    offenders = []
    for p in sorted((ROOT / "compiler").rglob("*.py")):
        folder = p.relative_to(ROOT / "compiler").parts[0]
        if folder not in FOLDER_ORDER:
            continue
        for line, target in _imported_compiler_modules(p):
            to = target.split(".")[0]
            if to in FOLDER_ORDER and FOLDER_ORDER.index(to) > FOLDER_ORDER.index(folder):
                offenders.append(f"{p.relative_to(ROOT)}:{line} ({folder}/) imports {target} ({to}/)")
    assert not offenders, offenders


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(["megaspec", *(parts[:-1] if parts[-1] == "__init__" else parts)])


def _imports_of(path: Path, modules: set[str]) -> set[str]:
    """The megaspec modules a file imports, function-level imports included; `from pkg import mod` names mod."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            found.update(f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names)
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted((ROOT / "compiler").rglob("*.py")) + sorted((ROOT / "runtime").rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports_of(p, modules) for p in paths}


def test_the_import_graph_of_compiler_and_runtime_has_no_cycle():
    graph = import_graph()
    assert "megaspec.runtime.train.loop" in graph["megaspec.runtime.launch.rank_main"]  # the graph sees function-level imports too
    assert not _cycles(graph), _cycles(graph)


# The runtime's folders in the order a run goes through them: a folder imports only from itself and
# the folders before it (`contract/` from nothing).
RUNTIME_ORDER = ["contract", "rank", "state", "train", "evidence", "launch"]
# What the compiler may import from the runtime: the contract, and the two entry points it launches.
COMPILER_MAY_IMPORT = ("megaspec.runtime.contract", "megaspec.runtime.launch", "megaspec.runtime.launch.entry",
                       "megaspec.runtime.launch.fork_server", "megaspec.runtime.train.seed_make")


def _runtime_folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["megaspec", "runtime"] else None


def test_runtime_folders_import_only_earlier_stages():
    offenders = []
    for module, deps in import_graph().items():
        folder = _runtime_folder(module)
        if folder is None:
            continue
        assert folder in RUNTIME_ORDER, f"{module}: a runtime folder missing from RUNTIME_ORDER"
        for dep in sorted(deps):
            to = _runtime_folder(dep)
            if to in RUNTIME_ORDER and RUNTIME_ORDER.index(to) > RUNTIME_ORDER.index(folder):
                offenders.append(f"{module} ({folder}/) imports {dep} ({to}/)")
    assert not offenders, offenders


def test_runtime_top_level_holds_only_the_package_and_its_folders():
    loose = sorted(p.name for p in (ROOT / "runtime").glob("*.py") if p.name != "__init__.py")
    assert not loose, loose
    folders = sorted(p.name for p in (ROOT / "runtime").iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(RUNTIME_ORDER)


def test_the_compiler_imports_only_the_contract_and_the_entry_points():
    offenders = sorted(f"{module} imports {dep}" for module, deps in import_graph().items()
                       if module.startswith("megaspec.compiler") for dep in deps
                       if dep.startswith("megaspec.runtime") and dep != "megaspec.runtime"
                       and not (dep.startswith("megaspec.runtime.contract") or dep in COMPILER_MAY_IMPORT))
    assert not offenders, offenders


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
