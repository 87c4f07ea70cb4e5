"""JSON from clients, held to what PostgreSQL can store: Python's json module accepts NaN, Infinity and
-Infinity (not JSON) and turns 1e999 into infinity; jsonb refuses all of them, and neither jsonb nor text
can hold a NUL character (U+0000). Refusing them where the JSON is read names the field at fault instead
of failing later in the database."""
import json
import math

NUL = "\x00"
NUL_ESCAPE = "\\u0000"  # the only way a NUL can appear in a JSON text: a raw control character is a syntax error


class NotJSON(ValueError):
    pass


def _refuse_constant(name):
    raise NotJSON(f"{name} is not a JSON value (numbers must be finite)")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise NotJSON(f"{text} is out of range for a number")
    return value


def loads(text):
    """json.loads that refuses NaN, Infinity, -Infinity and numbers too large for a float (ValueError)."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def nul_problem(value, path=""):
    """'<path>: must not contain NUL characters' for the first string or key of a parsed JSON value that
    holds a NUL, its path written like validation errors (`properties.tags[1]`, `body` for the value
    itself, whose own path is `path`); None when there is none."""
    stack = [(value, path)]
    while stack:
        node, at = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                return f"{at or 'body'}: must not contain NUL characters"
        elif isinstance(node, dict):
            for key in node:
                if NUL in key:
                    return f"{at or 'body'}: the key {key!r} must not contain NUL characters"
            stack.extend((child, f"{at}.{key}" if at else key) for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((node[index], f"{at or 'body'}[{index}]") for index in reversed(range(len(node))))
    return None
