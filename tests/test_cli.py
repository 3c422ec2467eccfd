"""The `rgbt` entry point itself."""

from __future__ import annotations

import pytest

from rgbt import __version__
from rgbt.cli import COMMANDS, build_parser, main


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_every_command_with_one_line(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, (help_text, _add, _run) in COMMANDS.items():
        assert name in out
        assert help_text and "\n" not in help_text


def test_no_command_prints_help_and_fails(capsys) -> None:
    assert main([]) == 2
    assert "usage: rgbt" in capsys.readouterr().out


def test_parser_builds_without_importing_torch() -> None:
    import subprocess
    import sys

    code = "import sys; from rgbt.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert build_parser().prog == "rgbt"
