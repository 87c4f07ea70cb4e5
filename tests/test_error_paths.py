"""Guard: an error names the place at fault as data (`ValidationFailed("is required", path="properties.x")`), never
as a prefix of its message text (`ValidationFailed(f"properties.{key}: is required")`), so a form can put it on its
field without parsing text. The scan reads every module of the apps for errors built with such a message."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("catalog", "actions", "audit", "portal", "web")
# The errors our code raises (and the classes derived from them, found in the source below), plus the
# run form's own "this text is not a number" error.
ERROR_BASES = {"PortalError", "ValidationFailed", "NotFound", "Conflict", "Forbidden", "Busy", "_Invalid"}
SUBSTITUTION = "\x00"  # a {...} of an f-string, in the text the pattern reads
# A path as messages write it, then ": " — `name`, `properties.{key}`, `{path}.users`, `logs[{i}].message`,
# `{field}[{i}]`; a word and a space ("Blueprint 'x' would break: ") is prose, not a path.
STEP = rf"(?:[A-Za-z_$@][\w$@=\-]*|{SUBSTITUTION})"
PATH_PREFIX = rf"^{STEP}(?:\.{STEP}|\[(?:\d+|{SUBSTITUTION})\])*: "


def _modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def _error_classes(trees):
    """ERROR_BASES and every class in the source derived from one of them (to a fixpoint)."""
    names = set(ERROR_BASES)
    classes = [node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for node in classes:
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", None) for b in node.bases}
            if node.name not in names and bases & names:
                names.add(node.name)
                grew = True
    return names


def _leading_text(node):
    """The text of a str or f-string literal, each {...} as SUBSTITUTION; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else SUBSTITUTION for v in node.values)
    return None


def path_in_text(text):
    return bool(re.match(PATH_PREFIX, text))


def offenders(tree, classes):
    """(line, text) of each error built with a path-looking prefix in its message."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        if name not in classes:
            continue
        text = _leading_text(node.args[0])
        if text is not None and path_in_text(text):
            found.append((node.lineno, text.replace(SUBSTITUTION, "{…}")))
    return found


@pytest.fixture(scope="module")
def scan():
    modules = dict(_modules())
    classes = _error_classes(modules.values())
    return {name: offenders(tree, classes) for name, tree in modules.items()}


@pytest.mark.parametrize("text, is_path", [
    ("\x00: \x00", True),
    ("properties.\x00: is required", True),
    ("\x00.users: user \x00 does not exist", True),
    ("logs[\x00].message: is required, a string", True),
    ("\x00[\x00]: must be a team name", True),
    ("roles[0]: unknown role", True),
    ("body: must be a JSON object", True),
    ("Blueprint \x00 would break: \x00", False),
    ("is required", False),
    ("JSON body is nested deeper than \x00 levels.", False),
    ("You may not run \x00.", False),
])
def test_the_pattern_tells_a_path_prefix_from_prose(text, is_path):
    assert path_in_text(text) is is_path


def test_the_scan_finds_a_path_written_into_a_message():
    tree = ast.parse('def f(key):\n    raise ValidationFailed(f"properties.{key}: is required")\n'
                     'def g(key):\n    raise ValidationFailed("is required", path=f"properties.{key}")\n')
    assert offenders(tree, ERROR_BASES) == [(2, "properties.{…}: is required")]


def test_no_error_writes_its_path_into_its_message(scan):
    found = {name: lines for name, lines in scan.items() if lines}
    assert found == {}, "pass the path as data: ValidationFailed(message, path=...)"
