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


def fixtures_of(path):
    """Names of the fixtures the module at `path` defines (`@pytest.fixture`, `@pytest.fixture(...)`, `@fixture`)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
                if name == "fixture":
                    names.append(node.name)
    return names


def fixtures_defined_twice(root):
    """`name: path, path` for each fixture name that two modules under `root` (test modules or conftests) define:
    one shadows the other, or both hold the same set-up that belongs in a conftest."""
    where = {}
    for path in sorted(root.rglob("*.py")):
        for name in fixtures_of(path):
            where.setdefault(name, []).append(str(path.relative_to(root.parent)))
    return [f"{name}: {', '.join(paths)}" for name, paths in sorted(where.items()) if len(paths) > 1]


def test_no_fixture_name_is_defined_in_two_modules():
    assert fixtures_defined_twice(TESTS) == []


def test_the_fixture_check_sees_a_fixture_defined_twice(tmp_path):
    root = tmp_path / "tests"
    (root / "catalog").mkdir(parents=True)
    (root / "conftest.py").write_text("import pytest\n\n@pytest.fixture\ndef catalog(db):\n    pass\n")
    (root / "catalog" / "test_one.py").write_text(
        "import pytest\nfrom pytest import fixture\n\n"
        "@pytest.fixture(autouse=True)\ndef catalog(db):\n    pass\n\n"
        "@fixture\ndef world():\n    pass\n\n"
        "def helper():\n    pass\n")
    (root / "catalog" / "test_two.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef world():\n    pass\n\n@pytest.fixture\ndef own():\n    pass\n")
    assert fixtures_defined_twice(root) == [
        "catalog: tests/catalog/test_one.py, tests/conftest.py",
        "world: tests/catalog/test_one.py, tests/catalog/test_two.py",
    ]
