"""Reading the YAML text: safe parsing, and typed getters that report the line and column
of the node a problem is at."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, NoReturn

import yaml

from migration_planner.lib.errors import ApplicationError
from runs.engine.snapshot import RULES_FORMAT

FORMAT = "migration-planner/v2"
# v1 files predate explicit `trim.collapse_inner` / `value_map.on_null`: read as they meant.
FORMATS = {"migration-planner/v1": 1, FORMAT: RULES_FORMAT}
MAX_BYTES = 5 * 1024 * 1024


# --------------------------------------------------------------------------- reading nodes

_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TEXT_PARAMS = ("str", "regex", "choice", "lookup", "entity", "column")
_FILTER_OPS = ("eq", "ne", "in", "not_in", "is_null", "not_null", "gt", "ge", "lt", "le", "regex")
Path = tuple[str | int, ...]


def _path_text(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(document)"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for types, name in (
        (bool, "true/false"),
        (str, "text"),
        (int, "an integer"),
        (float, "a number"),
        (list, "a list"),
        (dict, "a mapping"),
        (dt.date, "a date"),
    ):
        if isinstance(value, types):
            return name
    return type(value).__name__


class _Reader:
    """Maps a path in the loaded data back to its YAML node, to report line and column."""

    def __init__(self, root: yaml.Node) -> None:
        self.root = root
        self.rules_format = RULES_FORMAT

    def node(self, path: Path, *, at_key: bool = False) -> yaml.Node:
        node = self.root
        for i, part in enumerate(path):
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                pair = next(
                    (
                        (k, v)
                        for k, v in node.value
                        if isinstance(k, yaml.ScalarNode) and k.value == part
                    ),
                    None,
                )
                if pair is None:
                    return node
                node = pair[0] if at_key and i == len(path) - 1 else pair[1]
            elif (
                isinstance(node, yaml.SequenceNode)
                and isinstance(part, int)
                and part < len(node.value)
            ):
                node = node.value[part]
            else:
                return node
        return node

    def raw(self, path: Path) -> str:
        """A scalar as written (``01`` stays ``01``), for text that YAML would type otherwise."""
        node = self.node(path)
        if not isinstance(node, yaml.ScalarNode):
            self.fail(path, f"must be text, got a {node.id}")
        return node.value

    def fail(self, path: Path, reason: str, *, at_key: bool = False) -> NoReturn:
        mark = self.node(path, at_key=at_key).start_mark
        where = _path_text(path)
        raise ApplicationError(
            f"line {mark.line + 1}, column {mark.column + 1}: {where}: {reason}",
            field=where,
            extra={"line": mark.line + 1, "column": mark.column + 1, "path": where},
        )


def _check_nodes(root: yaml.Node) -> None:
    """Refuse aliases (shared nodes) and duplicate mapping keys, which safe_load would hide."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise yaml.MarkedYAMLError(
                problem="aliases (*name) are not supported", problem_mark=node.start_mark
            )
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        raise yaml.MarkedYAMLError(
                            problem=f"duplicate key '{key.value}'", problem_mark=key.start_mark
                        )
                    keys.add(key.value)
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    message = f"{where}YAML syntax error: {exc.problem or exc}"
    ctx = exc.context_mark
    if exc.context and ctx is not None and ctx is not mark:
        message += f" ({exc.context} at line {ctx.line + 1}, column {ctx.column + 1})"
    return message


def _parse(text: str) -> tuple[Any, yaml.Node]:
    """Loaded data and its node tree; YAML syntax errors become ApplicationError with position."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ApplicationError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is None:
            raise ApplicationError("line 1, column 1: the document is empty.")
        _check_nodes(root)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        raise ApplicationError(_syntax_message(exc)) from None
    except yaml.YAMLError as exc:
        raise ApplicationError(f"YAML error: {exc}") from None
    except RecursionError:
        raise ApplicationError("The YAML document is nested too deeply.") from None
    return data, root


# --------------------------------------------------------------------------- typed getters


def _mapping(
    r: _Reader, value: Any, path: Path, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict:
    if not isinstance(value, dict):
        r.fail(path, f"must be a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            r.fail(path, f"keys must be text, got {_kind(key)} (quote it)")
        if key not in allowed:
            r.fail(
                (*path, str(key)),
                f"unknown key '{key}' (expected one of: {', '.join(allowed)})",
                at_key=True,
            )
    for key in required:
        if key not in value:
            r.fail(path, f"missing required key '{key}'")
    return value


def _list(r: _Reader, d: dict, path: Path, key: str) -> list:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        r.fail((*path, key), f"must be a list, got {_kind(value)}")
    return value


def _text(
    r: _Reader,
    d: dict,
    path: Path,
    key: str,
    *,
    max_len: int | None = None,
    blank: bool = True,
    nullable: bool = False,
    choices: tuple = (),
    slug: bool = False,
    default: str | None = "",
) -> str | None:
    where = (*path, key)
    value = d.get(key, default)
    if value is None and (nullable or default is None):
        return None
    if value is None:
        value = ""
    if not isinstance(value, str):
        r.fail(where, f"must be text, got {_kind(value)}")
    if "\x00" in value:
        r.fail(where, "must not contain NUL characters")
    if max_len is not None and len(value) > max_len:
        r.fail(where, f"is longer than {max_len} characters")
    if not blank and not value.strip():
        r.fail(where, "must not be empty")
    if choices and value not in choices:
        r.fail(where, f"must be one of {', '.join(choices)}, got '{value}'")
    if slug and not _SLUG.fullmatch(value):
        r.fail(where, "must be a slug (letters, digits, '-' and '_')")
    return value


def _int(r: _Reader, d: dict, path: Path, key: str, *, default: int, lo: int, hi: int) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        r.fail((*path, key), f"must be an integer, got {_kind(value)}")
    if not lo <= value <= hi:
        r.fail((*path, key), f"must be between {lo} and {hi}, got {value}")
    return value


def _bool(r: _Reader, d: dict, path: Path, key: str, *, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        r.fail((*path, key), f"must be true or false, got {_kind(value)}")
    return value


def _texts(r: _Reader, d: dict, path: Path, key: str, *, nonempty: bool = False) -> list[str]:
    values = _list(r, d, path, key)
    if nonempty and not values:
        r.fail((*path, key), "must name at least one column")
    return [
        _text(r, {i: v}, (*path, key), i, max_len=128, blank=False)  # type: ignore[arg-type]
        for i, v in enumerate(values)
    ]


def _json(r: _Reader, value: Any, path: Path) -> Any:
    """Plain JSON values only (no dates, no NaN), as they are stored in JSON columns."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                r.fail(path, f"keys must be text, got {_kind(k)}")
            _json(r, v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _json(r, v, (*path, i))
    elif isinstance(value, float) and not math.isfinite(value):
        r.fail(path, "must be a finite number")
    elif isinstance(value, str) and "\x00" in value:
        r.fail(path, "must not contain NUL characters")
    elif value is not None and not isinstance(value, str | int | float | bool):
        r.fail(path, f"must be text, a number, true/false or null, got {_kind(value)} (quote it)")
    return value


def _params(r: _Reader, value: Any, path: Path) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        r.fail(path, f"must be a mapping, got {_kind(value)}")
    return _json(r, value, path)


def _date(r: _Reader, d: dict, path: Path, key: str) -> dt.date:
    value = d.get(key)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        r.fail((*path, key), f"must be a date YYYY-MM-DD, got {_kind(value)}")


def _unique(r: _Reader, seen: dict, value: str, path: Path, what: str) -> None:
    if value in seen:
        r.fail(path, f"duplicate {what} '{value}' (also at {_path_text(seen[value])})")
    seen[value] = path
