"""Telling the user when Numba compiles.

The first call of a kernel with a new dtype compiles it (a few seconds each); Numba then
writes it to its on-disk cache (``cache=True``), and later processes load it in
milliseconds.  ``notify_on_compile`` lets a program say so at the moment compiling really
starts: Numba's ``numba:compile`` event fires on a compile, never on a cache load.
"""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def notify_on_compile(notify):
    """Within the block, call ``notify()`` once, when Numba starts compiling one of
    minideconv's kernels (not when it loads one from its cache)."""
    from numba.core import event

    class FirstCompile(event.Listener):
        told = False

        def on_start(self, ev):
            dispatcher = ev.data.get("dispatcher")
            module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
            if not self.told and module.startswith("minideconv."):
                self.told = True
                notify()

        def on_end(self, ev):
            pass

    listener = FirstCompile()
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)
