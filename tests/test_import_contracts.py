"""The layers between the apps (README "Layout"), as import-linter contracts in pyproject.toml: web above actions
above catalog above audit above portal, nothing below web importing web, the catalog never importing actions."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd, *arguments):
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *arguments], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_the_apps_keep_their_layers():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_a_domain_module_importing_web_breaks_the_contracts(tmp_path):
    for package in ("web", "actions", "catalog", "audit", "portal"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "catalog" / "pages.py").write_text("from web import views\n")
    (tmp_path / "web" / "views.py").write_text("")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["name"] == "Nothing below web imports web")
    (tmp_path / "pyproject.toml").write_text(
        f"[tool.importlinter]\nroot_packages = {json.dumps(config['root_packages'])}\n\n"
        f"[[tool.importlinter.contracts]]\nname = {json.dumps(contract['name'])}\ntype = \"forbidden\"\n"
        f"source_modules = {json.dumps(contract['source_modules'])}\n"
        f"forbidden_modules = {json.dumps(contract['forbidden_modules'])}\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Nothing below web imports web BROKEN" in result.stdout
    assert "catalog.pages -> web.views" in result.stdout
