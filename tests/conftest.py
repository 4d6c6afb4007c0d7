"""pytest configuration: hypothesis profiles, and tests/ on sys.path for ``support``.

Profiles
--------
ci   200 examples per property, no deadline (Numba compiles on first call), derandomized
     (the same examples on every run), the too_slow health check suppressed.
dev  25 examples per property, no deadline: quick local runs.

The "ci" profile is loaded when the environment variable CI is set (to anything but
"", "0" or "false") or HYPOTHESIS_PROFILE=ci; otherwise HYPOTHESIS_PROFILE, or "dev".

PyTorch threads
---------------
Once a test module has imported torch, the tests run it single-threaded: its intra-op
thread pool makes the tiny ops of the cross-checks 100-1000x slower on a busy 2-core
machine (a 2x4x12x12 float64 conv: 23 ms with 2 threads, 0.03 ms with 1), and the
results do not depend on it.  MINIDECONV_TEST_TORCH_THREADS overrides the count.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # `import support`

settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=25, deadline=None)


def _selected_profile() -> str:
    ci = os.environ.get("CI", "").strip().lower()
    if (ci and ci not in ("0", "false", "no")) or os.environ.get("HYPOTHESIS_PROFILE") == "ci":
        return "ci"
    return os.environ.get("HYPOTHESIS_PROFILE") or "dev"


HYPOTHESIS_PROFILE = _selected_profile()
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header(config):
    s = settings()
    return (f"minideconv tests: hypothesis profile {HYPOTHESIS_PROFILE!r} "
            f"(max_examples={s.max_examples}, derandomize={s.derandomize}, "
            f"deadline={s.deadline})")


_TORCH_THREADS = int(os.environ.get("MINIDECONV_TEST_TORCH_THREADS", "1"))
_torch_configured = False


@pytest.fixture(autouse=True)
def _torch_single_threaded():
    """Set torch's thread count once torch has been imported (by any test module)."""
    global _torch_configured
    if not _torch_configured and "torch" in sys.modules and sys.modules["torch"] is not None:
        sys.modules["torch"].set_num_threads(_TORCH_THREADS)
        _torch_configured = True
    yield
