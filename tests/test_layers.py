"""The import rules of the house (.ci/check_layers.py) hold: imports point down, no circles."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_point_down_and_make_no_circle():
    result = subprocess.run([sys.executable, str(ROOT / ".ci" / "check_layers.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no circles" in result.stdout


def test_the_check_catches_an_upward_import_a_circle_and_the_sandbox():
    """The checker is not a rubber stamp: a domain module importing a page is reported."""
    sys.path.insert(0, str(ROOT / ".ci"))
    try:
        import check_layers
    finally:
        sys.path.pop(0)
    upward = {"webapp.domain.x": {"webapp.web.y"}, "webapp.web.y": set()}
    assert check_layers.problems(upward) == [
        "webapp.domain.x (domain) imports webapp.web.y (edge): imports point down"]
    circle = {"webapp.domain.a": {"webapp.domain.b"}, "webapp.domain.b": {"webapp.domain.a"}}
    assert check_layers.problems(circle) == ["import circle: webapp.domain.a -> webapp.domain.b"]
    assert check_layers.problems({"webapp.web.y": {"sandbox"}}) == [
        "webapp.web.y imports sandbox: webapp never imports sandbox"]
    assert check_layers.problems({"webapp.web.y": {"webapp.api.views"}}) == [
        "webapp.web.y imports webapp.api.views: the web never imports the API"]
