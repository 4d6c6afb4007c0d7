"""Telling the user, once, that Numba is compiling minideconv's kernels.

The first call of a kernel with a new dtype compiles it (a few seconds each, some 10–20 s
for a whole projection); Numba then writes it to its on-disk cache (``cache=True``) and
later processes load it in milliseconds.  A Python user, like the command line, should
hear of that wait: ``announce_on_stderr`` (called when the CPU backend loads) prints one
line on stderr at the first compile of the process — never on a cache load, never twice,
and not at all with ``MINIDECONV_QUIET=1``.

``FirstCompile`` is the Numba event listener behind it: ``numba:compile`` fires on a
compile, never on a cache load; it calls ``notify()`` the first time a minideconv kernel
starts compiling (``minideconv.compile.notify_on_compile`` uses it for the warm-up).
"""

from __future__ import annotations

import os
import sys

from numba.core import event

MESSAGE = ("minideconv: compiling the CPU kernels (first run only; later runs load them "
           "from Numba's cache) ...")


class FirstCompile(event.Listener):
    """Calls ``notify()`` once, when Numba starts compiling a minideconv kernel."""

    def __init__(self, notify):
        super().__init__()
        self.callback, self.told = notify, False   # (Listener.notify is Numba's dispatch)

    def on_start(self, ev):
        dispatcher = ev.data.get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if not self.told and module.startswith("minideconv."):
            self.told = True
            self.callback()

    def on_end(self, ev):
        pass


def _say():
    print(MESSAGE, file=sys.stderr, flush=True)


_ANNOUNCER = []     # the one listener of this process, once registered


def announce_on_stderr():
    """Register, once per process, the listener that prints ``MESSAGE`` at the first
    compile (unless ``MINIDECONV_QUIET`` is set to something other than '' or '0')."""
    if _ANNOUNCER or os.environ.get("MINIDECONV_QUIET", "") not in ("", "0"):
        return
    _ANNOUNCER.append(FirstCompile(_say))
    event.register("numba:compile", _ANNOUNCER[0])
