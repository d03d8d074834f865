"""The package's import structure: no module imports one that imports it back (deferred imports
inside functions count too), and the framework-free modules never import a deep-learning framework."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "squeezebert_paddle"
FRAMEWORK_FREE = ("data", "metrics", "timing", "qqp_benchmark", "tokenizer", "fileio", "assets")
FRAMEWORKS = ("paddle", "paddlenlp", "torch", "transformers")


def module_files() -> dict[str, Path]:
    """{"squeezebert_paddle.training.loop": path, ...}; a package is named by its __init__.py."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported_names(name: str, path: Path, modules=frozenset()) -> set[str]:
    """Every absolute module name an import statement anywhere in the file refers to.
    `from pkg import sub` names `pkg.sub` when that is one of `modules`, else `pkg`."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module)
    return found


def package_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    files = module_files()
    return {name: {n for n in imported_names(name, path, files) if n in files and n != name}
            for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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


def test_the_checker_sees_deferred_imports_and_cycles():
    graph = package_graph()
    # configuration's to_json_file imports fileio inside the method: a deferred import, still seen.
    assert "squeezebert_paddle.fileio" in graph["squeezebert_paddle.configuration"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_in_the_package():
    assert cycles(package_graph()) == []


def test_framework_free_modules_import_no_framework_even_deferred():
    files = module_files()
    for short in FRAMEWORK_FREE:
        name = f"squeezebert_paddle.{short}"
        modules = [n for n in files if n == name or n.startswith(name + ".")]
        assert modules, name
        for module in modules:
            bad = {n for n in imported_names(module, files[module]) if n.split(".")[0] in FRAMEWORKS}
            assert not bad, (module, bad)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            + "; ".join(f"import squeezebert_paddle.{m}" for m in FRAMEWORK_FREE)
            + f"; bad = [m for m in {FRAMEWORKS!r} if m in sys.modules]; assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
