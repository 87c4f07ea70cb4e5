"""Only the `web` app renders HTML: no module of the domain apps or of portal renders a template or builds markup
(Django admin customisations excepted, they are the admin's)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_APPS = ("portal", "audit", "catalog", "actions")
HTML_NAMES = {"render", "render_to_string", "get_template", "select_template", "TemplateResponse", "format_html",
              "format_html_join", "mark_safe"}


def is_admin_module(path):
    return path.name == "admin.py" or path.name.endswith("_admin.py") or "admin" in path.parent.parts[-1:]


def html_imports(root, apps=DOMAIN_APPS):
    """`path:line imports name` for each import of a template or markup helper in the apps' non-admin modules."""
    found = []
    for app in apps:
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" in path.parts or is_admin_module(path):
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("django."):
                    found += [f"{path.relative_to(root)}:{node.lineno} imports {alias.name}"
                              for alias in node.names if alias.name in HTML_NAMES]
    return found


def test_no_module_outside_web_renders_html():
    assert html_imports(ROOT) == []


def test_the_check_sees_each_way_of_rendering(tmp_path):
    (tmp_path / "actions" / "pages").mkdir(parents=True)
    (tmp_path / "actions" / "pages" / "home.py").write_text(
        "from django.shortcuts import render\n"
        "from django.template.loader import render_to_string\n"
        "from django.utils.html import escape, format_html\n"
        "from django.utils.safestring import mark_safe\n")
    (tmp_path / "actions" / "admin.py").write_text("from django.utils.html import format_html\n")
    assert html_imports(tmp_path, apps=("actions",)) == [
        "actions/pages/home.py:1 imports render",
        "actions/pages/home.py:2 imports render_to_string",
        "actions/pages/home.py:3 imports format_html",
        "actions/pages/home.py:4 imports mark_safe",
    ]


def test_templates_and_static_files_live_in_web_only():
    assert sorted(str(path.relative_to(ROOT)) for name in ("templates", "static")
                  for path in [ROOT / name, *(ROOT / app / name for app in DOMAIN_APPS)] if path.exists()) == []
    assert (ROOT / "web" / "templates" / "base.html").exists() and (ROOT / "web" / "static" / "portal").is_dir()
