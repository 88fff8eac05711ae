import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_only_the_namestudio_package(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT),
                        "-w", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wheel = next(tmp_path.glob("namestudio-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"namestudio", next(t for t in tops if t.endswith(".dist-info"))}  # no bare engine/data/tui
    for pkg in ("tui", "engine", "data"):
        assert f"namestudio/{pkg}/__init__.py" in names
    tcss = {p.name for p in (ROOT / "tui").rglob("*.tcss")}
    assert tcss <= {Path(n).name for n in names}
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "namestudio = namestudio.tui.entry:main" in entry


def test_dependencies_point_one_way():
    """tui -> engine -> data: engine and data never import textual; data never imports torch or engine."""
    def imports(folder):
        found = set()
        for f in (ROOT / folder).rglob("*.py"):
            for m in re.finditer(r"^\s*(?:from|import)\s+([\w.]+)", f.read_text(), re.M):
                found.add(m.group(1))
        return found

    engine, data = imports("engine"), imports("data")
    assert not any(m.startswith(("textual", "namestudio.tui")) for m in engine | data)
    assert not any(m.startswith(("torch", "namestudio.engine")) for m in data)
