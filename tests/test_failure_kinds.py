"""Issue 24, failure kinds: every error class evalrun itself names for a failed job (what results.parquet's
`error_class` and the store hold) is a FailureKind; the only other words stored are the provider's own (the
class name of the exception a call raised, which `providers.classify` passes on).

Read from the source, so a new way of failing that writes a free string ("BatchIncomplete", say) fails here
before any run stores it: every call that makes a failure row is checked for where its error class comes from.
"""

from __future__ import annotations

import ast
from pathlib import Path

import evalrun
from evalrun.errors import FailureKind

SOURCE = Path(evalrun.__file__).parent
# the calls that make a failure, and the position of their error class
MAKERS = {"failed_response": 1, "unsent": 1, "_fail": 1, "CallError": 0}


def _module_dicts(tree: ast.Module) -> dict[str, ast.Dict]:
    return {t.id: node.value for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name) and isinstance(node.value, ast.Dict)}


def _is_kind(node: ast.expr, dicts: dict[str, ast.Dict], names: dict[str, list[ast.expr]]) -> bool:
    """Whether an expression can only be a FailureKind member."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "FailureKind":
        return node.attr in FailureKind.__members__
    if isinstance(node, ast.IfExp):
        return _is_kind(node.body, dicts, names) and _is_kind(node.orelse, dicts, names)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name) and node.func.value.id in dicts and len(node.args) == 2):
        table = dicts[node.func.value.id]
        return all(v is not None and _is_kind(v, dicts, names) for v in table.values) and \
            _is_kind(node.args[1], dicts, names)
    if isinstance(node, ast.Name) and node.id in names:
        return all(_is_kind(value, dicts, {}) for value in names[node.id])
    return False


def _allowed(arg: ast.expr, function: ast.FunctionDef | ast.AsyncFunctionDef | None,
             dicts: dict[str, ast.Dict]) -> bool:
    if isinstance(arg, ast.Attribute) and arg.attr == "error_class":
        return True  # a failure classified already (a CallError's class), passed on
    if isinstance(arg, ast.Starred):
        return True  # a CallError rebuilt from the fields a sender process classified
    if function is None:
        return _is_kind(arg, dicts, {})
    if function.name == "classify" and ast.unparse(arg) == "type(exc).__name__":
        return True  # the provider's word: the one place it enters
    parameters = {a.arg for a in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]}
    if isinstance(arg, ast.Name) and arg.id in parameters:
        return True  # passed on from the caller, whose own call is checked here too
    assigned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    return _is_kind(arg, dicts, assigned)


def _calls(node: ast.AST, function: ast.FunctionDef | ast.AsyncFunctionDef | None, file: str,
           dicts: dict[str, ast.Dict]) -> list[tuple[str, int, ast.expr, bool]]:
    found: list[tuple[str, int, ast.expr, bool]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Call):
            name = child.func.attr if isinstance(child.func, ast.Attribute) else getattr(child.func, "id", "")
            position = MAKERS.get(name)
            if position is not None and child.args:
                # `CallError(*fields)`: the starred fields stand for every position
                arg = child.args[0] if isinstance(child.args[0], ast.Starred) else child.args[position]
                found.append((file, child.lineno, arg, _allowed(arg, function, dicts)))
        inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
        found += _calls(child, inner, file, dicts)
    return found


def _failure_makers() -> list[tuple[str, int, ast.expr, bool]]:
    """(file, line, error class argument, whether it comes from FailureKind or the provider) of every call."""
    found: list[tuple[str, int, ast.expr, bool]] = []
    for path in sorted(SOURCE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += _calls(tree, None, str(path.relative_to(SOURCE)), _module_dicts(tree))
    return found


def test_every_error_class_evalrun_names_is_a_failure_kind() -> None:
    makers = _failure_makers()
    # the check sees the calls it is meant to: the runner's, the batches', the senders' and classify's
    assert {file for file, *_ in makers} >= {"runner.py", "sendpath.py", "workers.py", "providers.py",
                                              "batches/stage.py"}
    free = [f"{file}:{line}: {ast.unparse(arg)}" for file, line, arg, allowed in makers if not allowed]
    assert free == []


def test_the_failure_kinds_are_distinct_and_stored_as_their_values() -> None:
    values = [kind.value for kind in FailureKind]
    assert len(set(values)) == len(values)
    assert all(str(kind) == kind.value and kind.value.isidentifier() for kind in FailureKind)
