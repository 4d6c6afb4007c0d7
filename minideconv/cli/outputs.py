"""The command line's output locations, checked before any work: the exact file or
folder ``--out`` names, created with its parents and proved writable, and paths printed
on one line.  Each failure is one line naming the flag (``checks.UsageError``, exit 2,
or ``checks.RunError``, exit 1)."""

from __future__ import annotations

import os
import tempfile

from .checks import RunError, UsageError, regular_file


def output_folder(path, flag="--out"):
    """A folder to write several files into: created with its parents, and proved
    writable."""
    _plausible_path(path, flag, "a folder")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag}: {path!r} is a file; give a folder (created if missing)")
    _no_file_above(path, flag)
    _writable_folder(path, flag)
    return path


def output_file(path, flag, suffixes, default_suffix, ignore_case=False):
    """The exact file a figure or a network will be written to: ``default_suffix`` is
    added when the name has no suffix; a name that is only a suffix ('.png') is refused;
    its folder is created and proved writable."""
    _plausible_path(path, flag, "a file name")
    name = os.path.basename(path)
    if name.startswith(".") and (name.lower() if ignore_case else name) in suffixes:
        raise UsageError(f"{flag}: {path!r} is only a suffix; give a file name, e.g. "
                         f"{os.path.join(os.path.dirname(path), 'out' + name)!r}")
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        kind = "ends with a separator, so it names a folder" if not os.path.isdir(path) \
            else "is a folder"
        raise UsageError(f"{flag}: {path!r} {kind}; give a file name, e.g. "
                         f"{os.path.join(path, 'out' + default_suffix)!r}")
    suffix = os.path.splitext(path)[1]
    if not suffix:
        path += default_suffix
    elif (suffix.lower() if ignore_case else suffix) not in suffixes:
        raise UsageError(f"{flag}: unknown file type {suffix!r} in {path!r}; use one of "
                         f"{', '.join(sorted(suffixes))} (no suffix: {default_suffix})")
    _plausible_path(path, flag, "a file name")      # the suffix added, too
    if os.path.isdir(path):
        raise UsageError(f"{flag}: {path!r} is a folder; give a file name")
    if os.path.exists(path):        # a pipe would block the write, a device swallow it
        regular_file(path, flag, "a file name")
    _no_file_above(path, flag)
    _writable_folder(os.path.dirname(os.path.abspath(path)), flag)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise RunError(f"{flag}: cannot overwrite {path!r}: permission denied")
    return path


def figure_suffixes():
    """The suffixes matplotlib can write a figure to ('.png', '.pdf', …)."""
    from matplotlib.backend_bases import FigureCanvasBase
    return {"." + name for name in FigureCanvasBase.get_supported_filetypes()}


def _plausible_path(path, flag, wanted):
    """Not empty, and no name longer than the file system allows: refused before any work."""
    if not path:
        raise UsageError(f"{flag}: an empty path; give {wanted}")
    try:
        longest = os.pathconf(_existing_above(path), "PC_NAME_MAX")
    except (AttributeError, ValueError, OSError):
        longest = 255
    for part in os.path.abspath(path).split(os.sep):
        if len(os.fsencode(part)) > longest:
            raise UsageError(f"{flag}: the name {part[:24] + '…'!r} is "
                             f"{len(os.fsencode(part))} bytes long; the file system "
                             f"allows {longest}")


def _existing_above(path):
    above = os.path.abspath(path)
    while not os.path.exists(above):
        above = os.path.dirname(above)
    return above


def printable(path):
    """A path in a one-line report: as is, or its repr when it holds a newline or another
    control character."""
    return path if path.isprintable() else repr(path)


def _no_file_above(path, flag):
    """A folder cannot be created below a file: say which file is in the way."""
    above = _existing_above(os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(above):
        raise UsageError(f"{flag}: cannot create {path!r}: {above!r} is a file, not a "
                         f"folder")


def _writable_folder(folder, flag):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise RunError(f"{flag}: cannot create folder {folder!r}: "
                       f"{err.strerror or err}") from None
    try:
        # a real file, not os.access: root, read-only mounts and /proc answer truthfully
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".minideconv-"):
            pass
    except OSError as err:
        raise RunError(f"{flag}: cannot write in {folder!r}: {err.strerror or err}") \
            from None
