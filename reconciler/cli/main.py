"""The ``reconcile`` command line: parses arguments and dispatches to one command module.

Each command lives in its own module exposing ``register(subparsers)``, which adds its parser and sets
``func`` to a function ``(argparse.Namespace) -> int`` returning the exit code. ``reconcile [PATH...]``
without a command name means ``reconcile apply [PATH...]`` (the documented short form). Expected
failures are printed as diagnostics by the commands; anything unexpected is caught here and reported
in one line (``--debug`` shows the traceback), never as a bare traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from reconciler.cli import commands
from reconciler.cli.apply import split_prune_value

EXIT_OK = 0
EXIT_ERROR = 1


def build_parser() -> tuple[argparse.ArgumentParser, set[str]]:
    parser = argparse.ArgumentParser(
        prog="reconcile",
        description="Converge OTA and SMS campaign backends on the state declared in YAML. "
                    "`reconcile [PATH...]` applies; `reconcile --dry-run [PATH...]` only shows the plan.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in commands.REGISTERED:
        register(subparsers)
    return parser, set(subparsers.choices)


def with_default_command(argv: list[str], names: set[str]) -> list[str]:
    """Insert ``apply`` unless the first positional argument names a command (or help is asked for)."""
    if argv and set(argv) <= {"-h", "--help"}:
        return argv
    head = argv[:1] if argv[:1] == ["--debug"] else []
    rest = argv[len(head):]
    first = next((token for token in rest if not token.startswith("-")), None)
    return argv if first in names else [*head, "apply", *rest]


def main(argv: Sequence[str] | None = None) -> int:
    parser, names = build_parser()
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(split_prune_value(with_default_command(raw, names)))
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_OK
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `reconcile status | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 141
    except Exception as exc:  # the last line of defence: one readable line, never a traceback
        if args.debug:
            raise
        print(f"reconcile: internal error: {exc.__class__.__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
