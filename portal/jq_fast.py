"""The jq expressions most calculations are, evaluated in the process instead of the jq sandbox (portal/jq.py).

A calculation property is evaluated on every read of its entity: a GET, a search page, a deployment report's answer.
Most are a few paths joined into a URL or a label (the starter's `"https://logs…?service=" + (.relations.service //
"")`, `if .properties.locked == true then "service locked" else "open" end`), and the sandbox's round trip through
a pipe to another process costs more than the rest of reading the entity. So an expression written in this subset
of jq is parsed once here and evaluated in Python:

    paths          .  .a  .a.b  ."a b"  .["a"]  .[0]  .[-1]
    literals       "text" (JSON escapes, no interpolation)  integers  true  false  null
    operators      +  ==  !=  <  <=  >  >=  and  or  //      (jq's precedence)
    conditionals   if … then … elif … then … else … end     (`else` optional)
    parentheses

Anything else (pipes, commas, functions, variables, constructors, `?`, interpolation, reduce, try…) is not parsed,
and the expression goes to the sandbox as before. Evaluation follows jq's semantics for what it accepts; where jq
would fail (indexing a number, adding a string to a number) or where this module is not sure to give jq's exact
output (numbers outside ±2^53, floats), it gives up for that input (`Unsupported`) and the caller asks the sandbox,
which gives jq's own result or error message. tests/portal/test_jq_fast.py compares the two on generated
expressions and documents. The subset has no loops or recursion but the expression's own nesting (bounded by
MAX_DEPTH), so it needs neither the sandbox's time limit nor its memory limit.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache

MAX_DEPTH = 32  # nesting of the expression (parentheses, conditionals, operators)
SAFE_INTEGER = 2**53  # beyond it jq's doubles and Python's ints part ways
MAX_LENGTH = 2000  # longer expressions go to the sandbox: nothing to gain in parsing them here

_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")
  | (?P<number>[0-9]+(?![0-9.eE]))
  | (?P<op>//|==|!=|<=|>=|[+<>().\[\]-])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)
_KEYWORDS = {"if", "then", "elif", "else", "end", "and", "or", "true", "false", "null"}


class Unsupported(Exception):
    """This input (or expression) is not one this module answers exactly as jq: ask the sandbox."""


class _JqFailure(Exception):
    """jq itself would fail here: its message is the sandbox's to give."""


def _tokens(text):
    position, out = 0, []
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise Unsupported(text[position:position + 10])
        position = match.end()
        if match.lastgroup != "space":
            out.append((match.lastgroup, match.group()))
    return out


def _string(token):
    """A string literal's text; a lone surrogate (jq writes U+FFFD for it) is left to the sandbox."""
    text = json.loads(token)
    if any("\ud800" <= character <= "\udfff" for character in text):
        raise Unsupported("surrogate")
    return text


class _Parser:
    """Recursive descent over jq's precedence, lowest first: `//`, `or`, `and`, comparisons, `+`."""

    def __init__(self, tokens):
        self.tokens, self.at, self.depth = tokens, 0, 0

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else (None, None)

    def take(self, value=None):
        kind, text = self.peek()
        if kind is None or (value is not None and text != value):
            raise Unsupported(f"expected {value!r}")
        self.at += 1
        return kind, text

    def nested(self, parse):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Unsupported("nested too deep")
        try:
            return parse()
        finally:
            self.depth -= 1

    def expression(self):
        return self.nested(self.alternative)

    def _binary(self, operators, operand, build):
        left = operand()
        while self.peek()[1] in operators:
            operator = self.take()[1]
            left = build(operator, left, operand())
        return left

    def alternative(self):
        # `a // b // c` is a // (b // c) in jq; both groupings give the same outputs for single values
        return self._binary({"//"}, self.disjunction, lambda _, a, b: ("alt", a, b))

    def disjunction(self):
        return self._binary({"or"}, self.conjunction, lambda _, a, b: ("or", a, b))

    def conjunction(self):
        return self._binary({"and"}, self.comparison, lambda _, a, b: ("and", a, b))

    def comparison(self):
        left = self.additive()
        if self.peek()[1] in {"==", "!=", "<", "<=", ">", ">="}:
            operator = self.take()[1]
            left = ("compare", operator, left, self.additive())
            if self.peek()[1] in {"==", "!=", "<", "<=", ">", ">="}:
                raise Unsupported("chained comparison")  # jq refuses it
        return left

    def additive(self):
        return self._binary({"+"}, self.postfix, lambda _, a, b: ("add", a, b))

    def postfix(self):
        kind, text = self.peek()
        if text == "(":
            self.take("(")
            inner = self.expression()
            self.take(")")
            return self.path_steps(inner) if self.peek()[1] == "." or self.peek()[1] == "[" else inner
        if text == ".":
            return self.path_steps(("identity",))
        if kind == "string":
            self.take()
            return ("literal", _string(text))
        if kind == "number":
            self.take()
            value = int(text)
            if value >= SAFE_INTEGER:
                raise Unsupported("large literal")
            return ("literal", value)
        if text in ("true", "false", "null"):
            self.take()
            return ("literal", {"true": True, "false": False, "null": None}[text])
        if text == "if":
            return self.nested(self.conditional)
        raise Unsupported(f"unexpected {text!r}")

    def path_steps(self, base):
        """`.a`, `."a"`, `.["a"]`, `.[n]`, `.[-n]` after `base` (`.` alone when nothing follows)."""
        steps, first = [], base == ("identity",)
        while True:
            text = self.peek()[1]
            if text == "." and (first or self._next_is_name()):
                self.take(".")
                first = False
                kind, name = self.peek()
                if kind == "word" and name not in _KEYWORDS:
                    self.take()
                    steps.append(name)
                elif kind == "string":
                    self.take()
                    steps.append(_string(name))
                elif self.peek()[1] == "[":
                    steps.append(self.bracket())
                # else: `.` alone
            elif text == "[" and steps:
                steps.append(self.bracket())
            else:
                break
        return ("path", base, tuple(steps)) if steps else base

    def _next_is_name(self):
        following = self.tokens[self.at + 1] if self.at + 1 < len(self.tokens) else (None, None)
        return (following[0] == "word" and following[1] not in _KEYWORDS) or following[0] == "string" \
            or following[1] == "["

    def bracket(self):
        self.take("[")
        kind, text = self.peek()
        negative = text == "-"
        if negative:
            self.take("-")
            kind, text = self.peek()
        if kind == "string" and not negative:
            self.take()
            step = _string(text)
        elif kind == "number":
            self.take()
            step = -int(text) if negative else int(text)
        else:
            raise Unsupported("index")
        self.take("]")
        return step

    def conditional(self):
        self.take("if")
        branches = []
        condition = self.expression()
        self.take("then")
        branches.append((condition, self.expression()))
        otherwise = ("identity",)
        while True:
            text = self.take()[1]
            if text == "elif":
                condition = self.expression()
                self.take("then")
                branches.append((condition, self.expression()))
            elif text == "else":
                otherwise = self.expression()
                self.take("end")
                break
            elif text == "end":
                break
            else:
                raise Unsupported(f"unexpected {text!r}")
        return ("if", tuple(branches), otherwise)


@lru_cache(maxsize=4096)
def compiled(expression: str):
    """The expression's tree when it is in the subset, else None (then only the sandbox evaluates it)."""
    if not isinstance(expression, str) or len(expression) > MAX_LENGTH:
        return None
    try:
        parser = _Parser(_tokens(expression))
        tree = parser.expression()
        if parser.peek()[0] is not None:
            return None
        return tree
    except (Unsupported, ValueError, RecursionError):
        return None


def evaluate(tree, document):
    """jq's first output of `tree` on `document`; Unsupported when the sandbox must answer (jq would fail, or the
    result holds numbers this module does not reproduce exactly)."""
    try:
        result = _value(tree, document)
    except _JqFailure:
        raise Unsupported("jq fails here") from None
    return _output(result, 0)


def _truthy(value):
    return value is not None and value is not False


def _value(node, document):
    kind = node[0]
    if kind == "literal":
        return node[1]
    if kind == "identity":
        return document
    if kind == "path":
        value = _value(node[1], document)
        for step in node[2]:
            value = _index(value, step)
        return value
    if kind == "alt":  # jq's `//` does not catch its left side's errors: neither does this
        left = _value(node[1], document)
        return left if _truthy(left) else _value(node[2], document)
    if kind == "or":
        return _truthy(_value(node[1], document)) or _truthy(_value(node[2], document))
    if kind == "and":
        return _truthy(_value(node[1], document)) and _truthy(_value(node[2], document))
    if kind == "compare":
        return _compare(node[1], _value(node[2], document), _value(node[3], document))
    if kind == "add":
        return _add(_value(node[1], document), _value(node[2], document))
    if kind == "if":
        for condition, then in node[1]:
            if _truthy(_value(condition, document)):
                return _value(then, document)
        return _value(node[2], document)
    raise Unsupported(kind)


def _index(value, step):
    if value is None:
        return None
    if isinstance(step, str):
        if isinstance(value, dict):
            return value.get(step)
        raise _JqFailure("cannot index")
    if isinstance(value, list):
        if step < 0:
            step += len(value)
        return value[step] if 0 <= step < len(value) else None
    raise _JqFailure("cannot index")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _add(left, right):
    if left is None:
        return right
    if right is None:
        return left
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if _number(left) and _number(right):
        if isinstance(left, float) or isinstance(right, float):
            raise Unsupported("float arithmetic")
        return left + right  # the result's size is checked with the output
    if isinstance(left, list) and isinstance(right, list):
        return left + right
    if isinstance(left, dict) and isinstance(right, dict):
        return {**left, **right}
    raise _JqFailure("cannot add")


# jq orders values by kind first: null < false < true < numbers < strings < arrays < objects
def _rank(value):
    if value is None:
        return 0
    if value is False:
        return 1
    if value is True:
        return 2
    if _number(value):
        return 3
    if isinstance(value, str):
        return 4
    if isinstance(value, list):
        return 5
    return 6


def _equal(left, right, depth=0):
    if depth > MAX_DEPTH:
        raise Unsupported("deep comparison")
    rank = _rank(left)
    if rank != _rank(right):
        return False
    if rank == 3:
        if isinstance(left, float) or isinstance(right, float) or max(abs(left), abs(right)) >= SAFE_INTEGER:
            raise Unsupported("number comparison")
        return left == right
    if rank == 5:
        return len(left) == len(right) and all(_equal(a, b, depth + 1) for a, b in zip(left, right))
    if rank == 6:
        return left.keys() == right.keys() and all(_equal(left[key], right[key], depth + 1) for key in left)
    return left == right


def _compare(operator, left, right):
    if operator == "==":
        return _equal(left, right)
    if operator == "!=":
        return not _equal(left, right)
    rank_left, rank_right = _rank(left), _rank(right)
    if rank_left != rank_right:
        ordered = (rank_left > rank_right) - (rank_left < rank_right)
    elif rank_left == 3:
        if isinstance(left, float) or isinstance(right, float) or max(abs(left), abs(right)) >= SAFE_INTEGER:
            raise Unsupported("number comparison")
        ordered = (left > right) - (left < right)
    elif rank_left == 4:
        ordered = (left > right) - (left < right)  # by code point, as jq's comparison of UTF-8 bytes
    elif rank_left < 3:
        ordered = 0
    else:
        raise Unsupported("array or object ordering")
    return {"<": ordered < 0, "<=": ordered <= 0, ">": ordered > 0, ">=": ordered >= 0}[operator]


def _output(value, depth):
    """The result as jq writes it, a copy sharing nothing with the document (a calculation of `.` or `.relations` is
    set inside that same document); given only when jq would write exactly the same JSON: no floats, integers within
    ±2^53."""
    if depth > MAX_DEPTH:
        raise Unsupported("deep output")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if abs(value) >= SAFE_INTEGER:
            raise Unsupported("large number")
        return value
    if isinstance(value, list):
        return [_output(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {key: _output(item, depth + 1) for key, item in value.items()}
    raise Unsupported("float")
