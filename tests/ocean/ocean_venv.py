"""The venv in which the Ocean tests run a real integration: Ocean (PyPI `port-ocean`) needs Python >= 3.12
while the portal runs on 3.11, so it gets a venv of its own under .portal/ocean-venv, built once and reused
(`make ocean-venv` builds it ahead; the tests build it when it is missing or its pin changed).

Python >= 3.12 is taken from pyenv ($(pyenv root)/versions/3.12*/bin/python and later) or from PATH."""
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

OCEAN_REQUIREMENT = "port-ocean>=0.56,<0.57"
ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("PORTAL_HOME", ROOT / ".portal")).resolve() / "ocean-venv"
MARKER = VENV / ".installed"


def _version(python):
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def find_python():
    """A Python >= 3.12 interpreter, or None."""
    candidates = []
    pyenv = shutil.which("pyenv")
    roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv")]
    if pyenv:
        try:
            roots.insert(0, subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    for root in filter(None, roots):
        candidates += sorted(glob.glob(f"{root}/versions/3.1[2-9]*/bin/python"))
    candidates += filter(None, (shutil.which(f"python3.{minor}") for minor in (12, 13, 14)))
    for python in candidates:
        version = _version(python)
        if version and version >= (3, 12):
            return python
    return None


def python():
    return VENV / "bin" / "python"


def ensure_venv():
    """Build the venv unless it holds OCEAN_REQUIREMENT already; returns its python, or None when no Python
    >= 3.12 exists here. A failing pip install raises (CalledProcessError): that is a failure, not a skip."""
    if MARKER.exists() and MARKER.read_text() == OCEAN_REQUIREMENT and python().exists():
        return python()
    base = find_python()
    if base is None:
        return None
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    OCEAN_REQUIREMENT], check=True)
    MARKER.write_text(OCEAN_REQUIREMENT)
    return python()


if __name__ == "__main__":
    built = ensure_venv()
    if built is None:
        sys.exit("No Python >= 3.12 here (pyenv's or on PATH): the Ocean tests will be skipped.")
    print(built)
