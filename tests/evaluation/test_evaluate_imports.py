"""`rgbt evaluate` loads neither torch, nor matplotlib, nor OpenCV unless a plot is asked for: a
property of the import graph (what makes the command start fast), checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "torchvision", "matplotlib", "cv2")


def _kaist_root(root: Path) -> Path:
    folder = root / "annotations" / "set06" / "V000"
    folder.mkdir(parents=True)
    (folder / "I00019.txt").write_text("% bbGt version=3\nperson 100 100 30 70 0 0 0 0 0 0 0\n")
    (folder / "I00039.txt").write_text("% bbGt version=3\n")
    (root / "imageSets").mkdir()
    (root / "imageSets" / "test-all-20.txt").write_text("set06/V000/I00019\nset06/V000/I00039\n")
    (root / "det.txt").write_text("1,101,100,30,70,0.9\n2,400,100,30,70,0.4\n")
    return root


def _loaded_after(argv: list[str]) -> list[str]:
    code = (f"import sys; from rgbt.cli import main; code = main({argv!r}); "
            f"print(code, *sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip().splitlines()[-1].split()


def test_evaluate_imports_no_heavy_library_unless_plotting(tmp_path: Path) -> None:
    root = _kaist_root(tmp_path / "kaist")
    argv = ["evaluate", "--gt", str(root), "--results", str(root / "det.txt")]
    assert _loaded_after(argv) == ["0"]
    assert _loaded_after([*argv, "--plot", str(tmp_path / "mr.png")]) == ["0", "matplotlib"]
    assert (tmp_path / "mr.png").is_file()


def test_a_synthetic_root_reads_its_scale_without_the_generator(tmp_path: Path) -> None:
    root = _kaist_root(tmp_path / "synthetic")
    (root / "synthetic.json").write_text('{"generator": "rgbt.data.synthetic", "scale": 0.5}\n')
    argv = ["evaluate", "--gt", str(root), "--results", str(root / "det.txt")]
    assert _loaded_after(argv) == ["0"]
    (root / "synthetic.json").write_text('{"scale": "half"}\n')
    code = f"from rgbt.cli import main; raise SystemExit(main({argv!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "synthetic.json" in out.stderr and "scale: expected a number" in out.stderr
