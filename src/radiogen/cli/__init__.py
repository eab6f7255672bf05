"""The ``radiogen`` command: argument parsing only; the work is done by :mod:`radiogen.api` and
the subpackages. Each command group registers itself from its own module."""

from __future__ import annotations

import argparse
import importlib
import sys

from radiogen import __version__

#: Modules under radiogen.cli, each with ``register(subparsers)``; one per command group.
COMMAND_MODULES = ("train", "sample", "map", "models", "data", "evaluate", "classifier")


class CommandError(Exception):
    """A run that cannot start: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from radiogen.cli.checks import Parser
    parser = Parser(
        prog="radiogen",
        description="Simulate realistic radio-galaxy images with diffusion models "
                    "(Vičánek Martínez et al.): build datasets from surveys, train, sample, evaluate.")
    parser.add_argument("--version", action="version", version=f"radiogen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"radiogen.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"radiogen.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CommandError, FileNotFoundError, ValueError) as err:
        print(f"radiogen {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:           # a disk that fills up, a folder that goes away mid-run
        print(f"radiogen {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"radiogen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
