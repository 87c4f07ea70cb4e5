"""The layers between the apps (README "Layout"), as import-linter contracts in pyproject.toml: web above actions
above catalog above audit above portal, nothing below web importing web, the catalog never importing actions, web
importing no model (it reads through the domain apps' selectors)."""
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
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def _project_with(tmp_path, contract_name, files):
    """A project of empty app packages holding `files` ({path: text}), checked by pyproject.toml's contract alone."""
    for package in ("web", "actions", "catalog", "audit", "portal"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["name"] == contract_name)
    contract = {key: value for key, value in contract.items() if key != "ignore_imports"}
    lines = [f"{key} = {json.dumps(value)}" for key, value in contract.items()]
    (tmp_path / "pyproject.toml").write_text(
        f"[tool.importlinter]\nroot_packages = {json.dumps(config['root_packages'])}\n\n"
        "[[tool.importlinter.contracts]]\n" + "\n".join(lines) + "\n")
    return lint_imports(tmp_path)


def test_a_domain_module_importing_web_breaks_the_contracts(tmp_path):
    result = _project_with(tmp_path, "Nothing below web imports web",
                           {"catalog/pages.py": "from web import views\n", "web/views.py": ""})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Nothing below web imports web BROKEN" in result.stdout
    assert "catalog.pages -> web.views" in result.stdout


def test_a_web_module_importing_a_model_breaks_the_contracts(tmp_path):
    result = _project_with(tmp_path, "web reads through selectors: no models", {
        **{f"{app}/models.py": "" for app in ("actions", "catalog", "audit", "portal")},
        "catalog/selectors/__init__.py": "",
        "catalog/selectors/entities.py": "from catalog.models import Entity\n",
        "web/pages/__init__.py": "", "web/pages/through_a_selector.py": "from catalog.selectors import entities\n",
        "web/pages/entity.py": "from catalog.models import Entity\n",
    })
    assert result.returncode == 1, result.stdout + result.stderr
    assert "web reads through selectors: no models BROKEN" in result.stdout
    assert "web.pages.entity -> catalog.models" in result.stdout
    assert "through_a_selector" not in result.stdout  # reading through a selector is what the contract asks for
