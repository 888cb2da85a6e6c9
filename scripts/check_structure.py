"""Structure checks that ruff and import-linter do not make (``make lint`` runs this).

- no import cycle between any two modules of ``oauth`` (import-linter's layers contract
  only sees imports across layers; this sees every module);
- no function-local import of an ``oauth`` module (a local import that dodges a cycle is
  a cycle);
- no module over 400 lines, no function over 60 lines in ``oauth/``.

Prints one line per problem and exits 1 when there is any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "oauth"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def import_cycles() -> list[str]:
    graph = grimp.build_graph(PACKAGE)
    problems = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if module < imported and graph.chain_exists(imported, module):
                back = " -> ".join(graph.find_shortest_chain(imported, module))
                problems.append(f"import cycle: {module} -> {back}")
    return problems


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def source_problems(path: Path) -> list[str]:
    text = path.read_text()
    name = path.relative_to(ROOT)
    problems = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        problems.append(f"{name}: {lines} lines (at most {MAX_MODULE_LINES})")
    for function in _functions(ast.parse(text)):
        length = function.end_lineno - function.lineno + 1
        if length > MAX_FUNCTION_LINES:
            problems.append(
                f"{name}:{function.lineno}: {function.name} is {length} lines "
                f"(at most {MAX_FUNCTION_LINES})"
            )
        for node in ast.walk(function):
            local = (
                isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE
            )
            local = (
                local
                or isinstance(node, ast.Import)
                and any(alias.name.split(".")[0] == PACKAGE for alias in node.names)
            )
            if local:
                problems.append(f"{name}:{node.lineno}: function-local import in {function.name}")
    return problems


def main() -> int:
    sys.path.insert(0, str(ROOT))
    problems = import_cycles()
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        problems += source_problems(path)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
