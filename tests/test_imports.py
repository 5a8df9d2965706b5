"""The package's imports run one way: no import cycle, and no module imports from a later stage.

Every module under sheetnet/ is parsed with ``ast`` (imports inside functions included: a lazy
import is still a dependency, only a hidden one), so the test needs neither torch nor an engine.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sheetnet"

# The import order: a module may import its own stage and earlier ones, never a later one.
# It is the pipeline's order (checkpoint -> loaders -> capture -> ir -> layout -> emit -> xlsx)
# with two turns.  ir/ and ops/ come before capture: the IR is the language capture writes in
# (capture builds ir.Graph nodes, as a compiler's front end imports its IR's classes), and the IR
# knows nothing of the models it is captured from.  models/ come before loaders: they are the
# reference PyTorch definitions (and their config checks, models/fit.py) that loaders fill and
# capture lowers; they read no file and know no format but checkpoint.py's, a shared module.
# spec.py (the workbook as data) sits with layout, before emit that builds it and the writer
# that writes it.  The modules "beside" the pipeline (engines, the manifest, verify, run, import,
# inspect, export, the CLI, the Python API and the package that exposes it) use any stage and
# come last.
STAGES = [
    ("shared", ["errors", "options", "a1", "files", "checkpoint"]),
    ("models", ["models"]),
    ("loaders", ["loaders"]),
    ("ir", ["ir", "ops"]),
    ("capture", ["capture"]),
    ("layout", ["layout", "spec"]),
    ("emit", ["emit"]),
    ("writer", ["writer", "xlsx", "xlsx_numbers", "xlsx_parts", "xlsx_print", "xlsx_theme"]),
    ("beside", ["engines", "manifest", "manifest_checks", "record", "xlsx_read", "verifier", "runner",
                "importer", "inspect", "pipeline", "cli", "__main__", "api", "__init__"]),
]

# Imports against that order, each with why it is there; keep this short (none today).
# A key is (importing module or package, imported module or package).
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}
# Import cycles allowed, each with why (none today).
KNOWN_CYCLES: list[list[str]] = []


def _modules() -> dict[str, Path]:
    # dotted name -> file; a package is its __init__.py
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["sheetnet", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__" and len(parts) > 2:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imported(module: str, path: Path, node: ast.AST) -> list[str]:
    # the sheetnet modules an import statement names: "from .x import y" is module x.y when
    # y is a module, else x
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    if node.level:
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target
            for a in node.names]


def _graph() -> dict[str, set[str]]:
    # module -> the sheetnet modules it imports, anywhere in the file
    deps: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(m for m in _imported(module, path, node)
                             if m.split(".")[0] == "sheetnet" and m != module)
        deps[module] = {m for m in found if m in MODULES}
    return deps


def _stage(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for rank, (_, names) in enumerate(STAGES):
        if top in names:
            return rank
    raise AssertionError(f"{module} is in no stage: add its top-level name to STAGES")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _cycles(deps: dict[str, set[str]]) -> list[list[str]]:
    # Tarjan's strongly connected components; a component of more than one module is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(deps[v]):
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
                found.append(sorted(component))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_stage():
    for module in MODULES:
        _stage(module)


def test_no_import_cycle():
    assert [c for c in _cycles(_graph()) if c not in KNOWN_CYCLES] == []


def _late_imports() -> list[tuple[str, str]]:
    # (module, what it imports from a later stage), exceptions included
    return [(module, dep) for module, imported in sorted(_graph().items())
            for dep in sorted(imported) if _stage(dep) > _stage(module)]


def _excused(module: str, dep: str) -> tuple[str, str] | None:
    return next(((a, b) for a, b in KNOWN_EXCEPTIONS if _within(module, a) and _within(dep, b)),
                None)


def test_no_module_imports_from_a_later_stage():
    late = [f"{module} ({STAGES[_stage(module)][0]}) imports {dep} ({STAGES[_stage(dep)][0]})"
            for module, dep in _late_imports() if not _excused(module, dep)]
    assert late == []


def test_every_known_exception_is_still_needed():
    # a fixed import leaves its entry behind: remove it, so the list stays today's, and short
    used = {_excused(module, dep) for module, dep in _late_imports()}
    assert sorted(set(KNOWN_EXCEPTIONS) - used) == []
    assert [c for c in KNOWN_CYCLES if c not in _cycles(_graph())] == []


def test_the_cycle_finder_finds_a_cycle():
    # the test above passes on an empty answer: make sure the finder can answer something else
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
