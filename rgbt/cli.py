"""The ``rgbt`` command line: one entry point, thin subcommands over library functions.

Every subcommand is a pair of functions: ``_add_<name>(parser)`` declares its arguments and
``_run_<name>(args) -> int`` calls into the library. Library imports happen inside the run
functions so ``rgbt --help`` stays fast. :func:`main` takes ``argv`` so tests call it in-process.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from rgbt import __version__

log = logging.getLogger("rgbt")


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# registry and entry point
# --------------------------------------------------------------------------------------------

#: name -> (one-line help, argument declaration, runner)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
}


def build_parser() -> argparse.ArgumentParser:
    """The ``rgbt`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="rgbt",
        description="Multispectral (RGB + thermal) pedestrian detection: data, fusion detectors, "
        "exact KAIST miss rate, misalignment robustness and flow-based thermal-to-RGB translation.",
    )
    parser.add_argument("--version", action="version", version=f"rgbt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (help_text, add, _run) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rgbt``; returns the process exit code (0 success, 1 bad input, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.command:
        parser.print_help()
        return 2
    _help, _add, run = COMMANDS[args.command]
    try:
        return int(run(args) or 0)
    except (ValueError, FileNotFoundError, OSError) as err:
        # Bad input (malformed files, unknown config keys, missing paths) is reported, not traced.
        print(f"rgbt {args.command}: error: {err}", file=sys.stderr)
        if args.verbose:
            raise
        return 1
    except KeyboardInterrupt:
        print(f"rgbt {args.command}: interrupted; finished work is kept, re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
