"""The ``minideconv`` program: one parser built from the commands, and one-line errors.

    minideconv demo --out figures/          Zeiler & Fergus's figures for the shipped network
    minideconv project --image grace_hopper --layer 5 --channel 3 --out p.png
    minideconv train --out my_model.npz     retrain the shipped network from scratch
    minideconv figure2 --images photos/ --layer 5 --out fig2/   Figure 2 on your own images
    minideconv crosscheck                   minideconv beside PyTorch and Captum

Each command is a module of this package with an ``add_parser`` (its flags) and the
function the parser runs; ``build_parser`` asks each in turn.  ``main`` runs one command
and turns whatever ended it into an exit status and one line on stderr (``explain``,
``EXIT_STATUS``).  (The module is not called ``main``: ``minideconv.cli.main`` is the
function, and a submodule of the same name would hide behind it.)
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
import zipfile
import zlib

from . import checks, crosscheck, demo, figure2, project, train

#: the sub-commands, in the order ``minideconv --help`` lists them
COMMANDS = (demo, project, train, figure2, crosscheck)

__all__ = ["main", "build_parser", "COMMANDS", "EXIT_STATUS", "explain", "MEMORY_HINTS",
           "OneLineParser"]

EXIT_STATUS = """\
exit status:
  0    done (a "note:" line on stdout says when a projection is all zero)
  1    the run failed: a file could not be read or written (permission, full
       disk, a damaged or foreign file), not enough memory, torch or captum
       missing, crosscheck errors above tolerance, or an internal error
       (MINIDECONV_DEBUG=1 shows its traceback)
  2    the command line is wrong: a malformed or out-of-range value, or a path
       that does not exist or is the wrong kind of thing (a folder for a file)
  130  interrupted (Ctrl-C)
Each error is one line on stderr that names the flag and what it accepts."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a malformed command line gets one line on stderr (the flag and what
    it accepts), not the usage block first; ``--help`` still shows the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser():
    from .. import __version__
    common = dict(epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser = OneLineParser(   # its sub-commands' parsers are OneLineParsers too
        prog="minideconv",
        description=checks.paragraph("Zeiler & Fergus's deconvnet from first principles: visualise "
                          "what the units of a small trained CNN respond to."), **common)
    parser.add_argument("--version", action="version", version=f"minideconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in COMMANDS:
        command.add_parser(sub, **common)
    return parser


def _debugging():
    return os.environ.get("MINIDECONV_DEBUG", "") not in ("", "0")


def negative_layers_attached(argv=None):
    """``--layer -1,pool`` as ``--layer=-1,pool``: argparse takes a value that starts with
    '-' for another flag unless it is a plain number, and the help offers negative layer
    indices (which count from the end)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = []
    while argv:
        token = argv.pop(0)
        if token == "--layer" and argv and re.match(r"-\d", argv[0]):
            token = f"--layer={argv.pop(0)}"
        out.append(token)
    return out


def main(argv=None):
    """Run one command; returns its exit status (argparse exits 2 itself on a malformed
    option).  Every error becomes one line on stderr: ``EXIT_STATUS``."""
    streams = [s for s in (sys.stdout, sys.stderr) if hasattr(s, "reconfigure")]
    handlers = [stream.errors for stream in streams]
    # a path the terminal's encoding cannot show is printed with backslash escapes
    # ('\xfc'), rather than failing the report of work that succeeded
    for stream in streams:
        stream.reconfigure(errors="backslashreplace")
    try:
        return _run(build_parser().parse_args(negative_layers_attached(argv)))
    finally:
        for stream, handler in zip(streams, handlers):
            stream.reconfigure(errors=handler)


def _run(args):
    try:            # the first compile says so on stderr (backends.first_compile)
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"minideconv {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if _debugging() and not isinstance(err, checks.UsageError):
            raise
        code, message = explain(err, args)
        message = " ".join(message.splitlines())       # one line, whatever the cause
        print(f"minideconv {args.command}: error: {message}", file=sys.stderr)
        return code


# --------------------------------------------------------------------------- errors

MEMORY_HINTS = {"demo": "give a smaller --images", "train": "give a smaller --n-train",
                "figure2": "give a smaller --batch-size",
                "crosscheck": "give a smaller --images", "project": "free some memory"}


def explain(err, args):
    """``(exit code, one line)`` for an exception that ended a command: 2 for a
    ``UsageError`` (the checks of the command line), 1 for everything else — a library
    ValueError raised during the work, too, is a failed run, not a wrong command line."""
    if isinstance(err, checks.UsageError):
        return 2, str(err)
    if isinstance(err, checks.RunError):
        return 1, str(err)
    if isinstance(err, MemoryError):
        return 1, f"out of memory; {MEMORY_HINTS.get(args.command, 'free some memory')}"
    if isinstance(err, OSError):
        return 1, _describe_os_error(err, args)
    if isinstance(err, (zipfile.BadZipFile, zlib.error, EOFError)):
        return 1, f"a damaged file: {err}"
    return 1, (f"internal error: {type(err).__name__}: {err}; run with MINIDECONV_DEBUG=1 "
               f"for the traceback")


def _describe_os_error(err, args):
    """'--out: '/x/p.png': No space left on device': the flag whose path failed."""
    reason = err.strerror or errno.errorcode.get(err.errno, "") or str(err)
    if err.filename is None:
        return reason
    flag = _flag_of(args, os.fspath(err.filename))
    return f"{flag + ': ' if flag else ''}{err.filename!r}: {reason}"


def _flag_of(args, filename):
    target = os.path.abspath(filename)
    for name in ("out", "model", "image", "images"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            given = os.path.abspath(value)
            if target == given or target.startswith(given + os.sep):
                return f"--{name}"
    return None


if __name__ == "__main__":
    sys.exit(main())
