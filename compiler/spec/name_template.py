"""The `sweep.name` template language: Jinja2 expressions, sandboxed and bounded in time and size.

A run name is a short string, so the template may only read `matrix[...]` and `name`, branch
(`{% if %}`), and apply a few string and number filters. No loops, macros, calls or globals, so
rendering takes time in proportion to the template; every operation that can grow a value
(`*`, `**`, `%`, `replace`, `format`) is checked before it runs, so no value passes
MAX_VALUE_CHARS. A template that breaks these rules, or fails while rendering, raises
`NameTemplateError` with a one-line reason: lint reports it (MS502, MS504) instead of crashing.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable
from typing import Any

MAX_VALUE_CHARS = 4096  # any string or list a name template builds (a name is at most 63 characters)
MAX_INT_BITS = 4096
RENDER_BUDGET_S = 2.0  # all the names of one sweep; far above what MAX_RUNS small templates take
# Names of the Jinja2 AST nodes a name template may use: output, `if`, and expressions without calls.
ALLOWED_NODES = frozenset({
    "Template", "Output", "TemplateData", "If", "Name", "Const", "Getitem", "Getattr", "Slice", "Filter", "Test",
    "CondExpr", "Compare", "Operand", "And", "Or", "Not", "Neg", "Pos", "Add", "Sub", "Mul", "Div", "FloorDiv",
    "Mod", "Pow", "Concat", "List", "Tuple", "Keyword",
})
SAFE_FILTERS = ("lower", "upper", "title", "capitalize", "trim", "string", "length", "count", "first", "last",
                "abs", "int", "float", "default", "d", "round", "truncate", "join", "reverse", "list")
# A printf width or precision (`%(key)0999d`, `%.999f`, `%*d` whose width is an argument), or a digit run in `{...}`.
_FORMAT_NUMBER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?|\{[^{}]*?(\d+)[^{}]*\}")
MAX_TEMPLATE_CHARS = 4096  # a template for a name of at most 63 characters; parsing is not free


class NameTemplateError(Exception):
    """A `sweep.name` template that cannot give names: the message says why, in one line."""


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


def _check_size(value: Any) -> Any:
    if _size(value) > MAX_VALUE_CHARS:
        raise NameTemplateError(f"it builds a value of {_size(value):,} characters; a name has at most 63")
    return value


def _check_format(text: str) -> None:
    """`%0999999d` or `{:999999}` would allocate what its width says."""
    for match in _FORMAT_NUMBER.finditer(text):
        if any(g and (g == "*" or len(g) > 2 or int(g) > 64) for g in match.groups()):
            raise NameTemplateError(f"the format `{match.group(0)[:20]}` is wider than a name can be "
                                    "(or takes its width from an argument)")


def _binop(operator: str, left: Any, right: Any) -> Any:
    """`*`, `**` and `%`, refused before they build a value larger than the bounds."""
    if operator == "**":
        numbers = all(isinstance(v, (int, float)) for v in (left, right))
        if numbers and abs(left) > 1 and right > 1 and math.log2(abs(left)) * right > MAX_INT_BITS:
            raise NameTemplateError("it raises a number to a power too large for a name")
        return left**right
    if operator == "*":
        counts = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
        sizes = [_size(v) for v in (left, right)]
        if counts and max(sizes) * max(counts) > MAX_VALUE_CHARS:
            raise NameTemplateError("it repeats a value into more characters than a name can have")
        if len(counts) == 2 and sum(abs(c).bit_length() for c in counts) > MAX_INT_BITS:
            raise NameTemplateError("it multiplies numbers too large for a name")
        return _check_size(left * right)
    if operator == "%":
        if isinstance(left, str):
            _check_format(left)
        return _check_size(left % right)
    raise NameTemplateError(f"the operator `{operator}` is not supported")


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    hits = (len(text) + 1 if old == "" else text.count(old)) if count is None else min(count, len(text) + 1)
    if len(text) + hits * max(0, len(new) - len(old)) > MAX_VALUE_CHARS:
        raise NameTemplateError("`replace` would build more characters than a name can have")
    return text.replace(old, new) if count is None else text.replace(old, new, count)


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    text = str(value)
    _check_format(text)
    return _check_size(text % (kwargs or args))


@functools.cache
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class NameEnvironment(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            return _binop(operator, left, right)

        def call(self, *args: Any, **kwargs: Any) -> Any:  # the AST check refuses calls; this backs it
            raise NameTemplateError("it calls a function; use filters like `| lower` instead")

    env = NameEnvironment(undefined=StrictUndefined, autoescape=False)
    filters: dict[str, Callable[..., Any]] = {name: _sized(env.filters[name]) for name in SAFE_FILTERS}
    env.filters = {**filters, "replace": _replace, "format": _format}
    env.globals = {}
    return env


def _sized(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        return _check_size(fn(*args, **kwargs))
    return bounded


def checked_ast(source: str) -> Any:
    """The parsed template, or NameTemplateError (syntax, an unknown filter, a loop, a call)."""
    from jinja2 import TemplateError, nodes

    if len(source) > MAX_TEMPLATE_CHARS:
        raise NameTemplateError(f"it is {len(source):,} characters long; a name template has at most "
                                f"{MAX_TEMPLATE_CHARS:,}")
    env = _environment()
    try:
        ast = env.parse(source)
    except TemplateError as e:
        raise NameTemplateError(f"it is not a valid template: {e.message or e}") from None
    for node in ast.find_all(nodes.Node):
        kind = type(node).__name__
        if kind not in ALLOWED_NODES:
            what = {"For": "a `for` loop", "Call": "a function call", "Macro": "a macro"}.get(kind, f"`{kind}`")
            raise NameTemplateError(f"it uses {what}; a name template only reads `matrix[...]` and `name`, "
                                    "with `if` and filters")
        if isinstance(node, nodes.Filter) and node.name not in env.filters:
            raise NameTemplateError(f"it uses the filter `{node.name}`, which name templates do not have "
                                    f"(they have {', '.join(sorted(env.filters))})")
    return ast


def compile_name_template(source: str) -> Any:
    """The compiled template, or NameTemplateError."""
    from jinja2 import TemplateError

    try:
        return _environment().from_string(checked_ast(source))
    except TemplateError as e:
        raise NameTemplateError(f"it is not a valid template: {e.message or e}") from None


def render_names(source: str, contexts: list[dict[str, Any]]) -> list[str]:
    """Render the template once per context (stripped); NameTemplateError on any failure."""
    from jinja2 import TemplateError

    compiled = compile_name_template(source)
    deadline = time.monotonic() + RENDER_BUDGET_S
    names = []
    for context in contexts:
        try:
            names.append(_check_size(compiled.render(**context)).strip())
        except NameTemplateError:
            raise
        except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as e:
            raise NameTemplateError(f"rendering it fails: {str(e).splitlines()[0] if str(e) else type(e).__name__}") \
                from None
        if time.monotonic() > deadline:
            raise NameTemplateError(f"rendering the names takes more than {RENDER_BUDGET_S:g} s")
    return names
