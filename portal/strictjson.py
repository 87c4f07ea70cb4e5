"""JSON from clients, held to what PostgreSQL can store: Python's json module accepts NaN, Infinity and
-Infinity (not JSON) and turns 1e999 into infinity; jsonb refuses all of them, and neither jsonb nor text
can hold a NUL character (U+0000) or a lone UTF-16 surrogate (`"\ud800"` parses, but is no character and
cannot be written as UTF-8). Refusing them where the JSON is read names the field at fault instead
of failing later in the database."""
import json
import math
import re

from portal.errors import FieldError

NUL = "\x00"
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


class NotJSON(ValueError):
    pass


def _refuse_constant(name):
    raise NotJSON(f"{name} is not a JSON value (numbers must be finite)")


def loads(text):
    """json.loads that refuses NaN, Infinity and -Infinity (NotJSON, a ValueError). A number too large for a
    float still becomes infinity: `problem` names it with its path."""
    return json.loads(text, parse_constant=_refuse_constant)


def problem(value, path="", *, max_depth=None):
    """What PostgreSQL could not store in a parsed JSON value, as a FieldError whose path is written like
    validation errors' (`properties.tags[1]`; `path` is the value's own, `body` when empty), or None: a string
    or key holding a NUL, a number that overflowed to infinity, nesting deeper than `max_depth` levels.
    One iterative pass, so a hostile document cannot exhaust the stack; paths are built only for a problem."""
    found = _first_problem(value, max_depth)
    if found is None:
        return None
    entry, message = found
    if message is None:
        return FieldError("", f"JSON body is nested deeper than {max_depth} levels.")
    return FieldError(_path(entry, path), message)


def problem_at(value, path="", *, max_depth=None):
    """`problem` with a value nested too deep named by its own path (a definition's, not a request body's)."""
    found = _first_problem(value, max_depth)
    if found is None:
        return None
    entry, message = found
    return FieldError(_path(entry, path), message or f"is nested deeper than {max_depth} levels")


def _first_problem(value, max_depth):
    """(entry, message) of the first unstorable value, message None for nesting deeper than `max_depth`."""
    stack = [(value, 1, None, None)]  # (node, depth, parent entry, key or index in the parent)
    while stack:
        entry = stack.pop()
        node, depth, _parent, _step = entry
        if max_depth is not None and depth > max_depth:
            return entry, None
        if isinstance(node, str):
            if _UNSTORABLE_RE.search(node):
                return entry, _unstorable(node)
        elif isinstance(node, float):
            if not math.isfinite(node):
                return entry, "is too large for a number"
        elif isinstance(node, dict):
            for key in node:
                if _UNSTORABLE_RE.search(key):
                    return entry, f"the key {key!r} {_unstorable(key)}"
            stack.extend((child, depth + 1, entry, key) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((node[index], depth + 1, entry, index) for index in reversed(range(len(node))))
    return None


def _unstorable(text):
    if NUL in text:
        return "must not contain NUL characters"
    return "must be valid Unicode (it holds a lone surrogate such as \\ud800)"


def storable(value):
    """A JSON value from outside the API (a receiver's answer, a CI system's, jq's output) made storable rather
    than refused: NUL and lone surrogates become U+FFFD, non-finite numbers null."""
    if isinstance(value, str):
        return _UNSTORABLE_RE.sub("\ufffd", value) if _UNSTORABLE_RE.search(value) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def _path(entry, root):
    steps = []
    while entry[2] is not None:
        steps.append(entry[3])
        entry = entry[2]
    text = root
    for step in reversed(steps):
        if isinstance(step, int):
            text = f"{text or 'body'}[{step}]"
        else:
            text = f"{text}.{step}" if text else step
    return text or "body"
