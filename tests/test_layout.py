"""The tests' layout: test data comes from tests/factories.py, shared helpers from tests/support/, shared fixtures
from conftest.py files; no test module imports another test module or a conftest (pytest loads those itself,
and a test module imported elsewhere runs its fixtures and constants in two places)."""
import ast
from pathlib import Path

TESTS = Path(__file__).parent


def imports_of_tests_modules(path):
    """(line, imported module) of every `tests.*` module the file at `path` imports, `from tests.x import y`
    giving both tests.x and tests.x.y (y may be a module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "tests"]


def forbidden_imports(root):
    """`path:line imports module` for each import, under `root`, of a test module (test_*) or a conftest."""
    return [f"{path.relative_to(root.parent)}:{line} imports {name}"
            for path in sorted(root.rglob("*.py"))
            for line, name in imports_of_tests_modules(path)
            if name.rsplit(".", 1)[-1].startswith("test_") or name.rsplit(".", 1)[-1] == "conftest"]


def test_no_test_module_imports_another_test_module_or_a_conftest():
    assert forbidden_imports(TESTS) == []


def test_the_check_sees_each_kind_of_forbidden_import(tmp_path):
    root = tmp_path / "tests"
    (root / "actions").mkdir(parents=True)
    (root / "actions" / "test_one.py").write_text(
        "from tests.conftest import make_user\n"
        "from tests.actions.test_two import helper\n"
        "from tests.actions import test_two as two\n"
        "import tests.actions.test_two\n"
        "from tests.support.runs import grant\n"
        "from tests.factories import UserFactory\n")
    assert forbidden_imports(root) == [
        "tests/actions/test_one.py:1 imports tests.conftest",
        "tests/actions/test_one.py:2 imports tests.actions.test_two",
        "tests/actions/test_one.py:3 imports tests.actions.test_two",
        "tests/actions/test_one.py:4 imports tests.actions.test_two",
    ]
