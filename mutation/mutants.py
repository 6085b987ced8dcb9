"""Mutants of a Python module: small, meaningful changes to its source, one at a time.

Each mutant replaces one expression's source text (by the AST's positions, so comments and the
rest of the file stay as written) with a changed one:

- a comparison flipped at its boundary or negated (``<`` ↔ ``<=``, ``==`` ↔ ``!=``, ``in`` ↔
  ``not in``, ``is`` ↔ ``is not``): an off-by-one, a wrong test;
- a number changed by one (``n`` → ``n + 1``): a changed default, limit or index;
- ``True`` ↔ ``False``: a changed default or flag;
- ``and`` ↔ ``or``, ``not x`` → ``x``: a wrong condition;
- ``+`` ↔ ``-``, ``*`` → ``/``: wrong arithmetic;
- the test of an ``if`` whose body raises or returns replaced by ``False``: a dropped check.

Left alone, because a change there is not a behaviour anyone relies on: docstrings and other
strings, what is inside f-strings, the arguments of logging calls, decorators,
``if TYPE_CHECKING`` and ``if __name__ == "__main__"`` blocks, and type annotations.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
}
LOG_NAMES = frozenset({"log", "logger", "logging", "_log", "warn", "debug"})


@dataclass(frozen=True)
class Mutant:
    """One change: the 1-based line, the source span replaced and its replacement."""

    path: str
    line: int
    start: int  # offset in the source text
    end: int
    original: str
    replacement: str
    operator: str
    context: str = ""  # the line's text, stripped: tells apart equal changes in one file

    @property
    def describe(self) -> str:
        change = f"{self.original!r} -> {self.replacement!r}"
        return f"{self.path}:{self.line} [{self.operator}] {change}"

    @property
    def key(self) -> str:
        """A name that survives unrelated edits elsewhere in the file (for accepted survivors)."""
        return f"{self.path}|{self.operator}|{self.original}|{self.replacement}|{self.context}"

    def apply(self, source: str) -> str:
        return source[: self.start] + self.replacement + source[self.end :]


def _offsets(source: str) -> list[int]:
    """The offset of each line's start (index 0 = line 1), counted in characters."""
    starts, total = [], 0
    for line in source.splitlines(keepends=True):
        starts.append(total)
        total += len(line)
    starts.append(total)
    return starts


def _is_log_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in LOG_NAMES
    if isinstance(func, ast.Attribute):
        base = func.value
        return isinstance(base, ast.Name) and base.id in LOG_NAMES
    return False


def _skipped_if(node: ast.If) -> bool:
    test = node.test
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def _leaves(body: list[ast.stmt]) -> bool:
    """Whether a block ends by raising or returning (an ``if`` guarding it is a check)."""
    return any(isinstance(stmt, ast.Raise | ast.Return) for stmt in body)


class _Finder(ast.NodeVisitor):
    """Collects (node, replacement node or text, operator name) in source order."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.AST, str, str]] = []

    # -- what is never mutated -------------------------------------------------------------
    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # positions inside f-strings are not reliable on 3.11

    def visit_Call(self, node: ast.Call) -> None:
        if _is_log_call(node):
            return
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)

    def visit_arg(self, node: ast.arg) -> None:
        return  # annotations

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for stmt in node.body:  # not the decorators (``frozen=True`` is no behaviour to test)
            self.visit(stmt)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for stmt in node.body:
            self.visit(stmt)

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def visit_If(self, node: ast.If) -> None:
        if _skipped_if(node):
            return
        if _leaves(node.body):
            self.found.append((node.test, "False", "drop-check"))
        self.generic_visit(node)

    # -- what is mutated ---------------------------------------------------------------------
    def visit_Compare(self, node: ast.Compare) -> None:
        for index, op in enumerate(node.ops):
            swap = COMPARE_SWAPS.get(type(op))
            if swap is not None:
                ops = list(node.ops)
                ops[index] = swap()
                changed = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
                self.found.append((node, f"({ast.unparse(changed)})", "compare"))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self.found.append(
            (node, f"({ast.unparse(ast.BoolOp(op=other, values=node.values))})", "boolop")
        )
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.found.append((node, f"({ast.unparse(node.operand)})", "not"))
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = BINOP_SWAPS.get(type(node.op))
        is_text = any(
            isinstance(side, ast.Constant) and isinstance(side.value, str | bytes)
            for side in (node.left, node.right)
        )
        if swap is not None and not is_text:
            changed = ast.BinOp(left=node.left, op=swap(), right=node.right)
            self.found.append((node, f"({ast.unparse(changed)})", "arith"))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self.found.append((node, repr(not value), "bool"))
        elif isinstance(value, int | float) and not isinstance(value, complex):
            self.found.append((node, repr(value + 1), "number"))


def mutants_of(path: str, source: str) -> Iterator[Mutant]:
    """Every mutant of ``source`` (the text of ``path``) that still compiles."""
    tree = ast.parse(source)
    finder = _Finder()
    finder.visit(tree)
    starts = _offsets(source)
    seen: set[tuple[int, int, str]] = set()
    for node, replacement, operator in finder.found:
        start = starts[node.lineno - 1] + _char_col(source, starts, node.lineno, node.col_offset)
        end = starts[node.end_lineno - 1] + _char_col(
            source, starts, node.end_lineno, node.end_col_offset
        )
        if (start, end, replacement) in seen:
            continue
        seen.add((start, end, replacement))
        mutant = Mutant(
            path=path,
            line=node.lineno,
            start=start,
            end=end,
            original=source[start:end],
            replacement=replacement,
            operator=operator,
            context=source[starts[node.lineno - 1] : starts[node.lineno]].strip(),
        )
        try:
            compile(mutant.apply(source), path, "exec")
        except SyntaxError:
            continue
        yield mutant


def _char_col(source: str, starts: list[int], lineno: int, byte_col: int) -> int:
    """The AST's column is in UTF-8 bytes; the source text is indexed in characters."""
    line = source[starts[lineno - 1] : starts[lineno]]
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))
