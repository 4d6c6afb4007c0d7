"""The first run compiles the kernels, says so once, and compiles only what it uses; later
runs load them from Numba's cache without a word.  Run in subprocesses with a cache
folder of their own, so that "first" really is first."""

import json
import os
import subprocess
import sys

CHILD = """
import json, sys
import numba
import numpy as np
from minideconv.backends import loops, window_check
from minideconv.compile import notify_on_compile
from minideconv.data import load_model
from minideconv.compile import warm_up
from minideconv.visualize import project

from numba.core import event

class Compiled(event.Listener):   # the kernels this process compiles itself
    names = []
    def on_start(self, ev):
        self.names.append(ev.data["dispatcher"].py_func.__name__)
    def on_end(self, ev):
        pass

event.register("numba:compile", Compiled())
notices = []
net = load_model()
with notify_on_compile(lambda: notices.append("compiling")):
    warm_up(net, rules=[sys.argv[1]])
after_warm_up = len(notices)
with notify_on_compile(lambda: notices.append("again")):
    image = np.random.default_rng(0).random(net.input_shape, np.float32)
    project(net, image, 7, 3, rule=sys.argv[1])
dtypes = set()
for kernel in [*vars(loops).values(), *vars(window_check).values()]:
    if isinstance(kernel, numba.core.registry.CPUDispatcher):
        for signature in kernel.signatures:
            dtypes |= {str(a.dtype) for a in signature if hasattr(a, "dtype")}
print(json.dumps({"after_warm_up": after_warm_up, "notices": notices,
                  "compiled_here": sorted(set(Compiled.names)),
                  "dtypes": sorted(dtypes - {"int64"})}))
"""


def run_child(cache_dir, rule):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    proc = subprocess.run([sys.executable, "-c", CHILD, rule], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_first_run_says_it_compiles_once_and_later_runs_load_from_the_cache(tmp_path):
    first = run_child(tmp_path, "guided")
    assert first["notices"] == ["compiling"]       # said once, during the warm-up
    assert first["after_warm_up"] == 1              # and nothing left to compile after it
    assert first["dtypes"] == ["float32"]           # only the shipped network's dtype
    # the forward kernels and the ReLU rules compiled here, col2im and unpooling in the
    # helper process beside it
    assert {"im2col", "max_pool_planes", "relu_into", "relu_backward_into"} <= \
        set(first["compiled_here"])
    assert not {"col2im", "max_unpool_planes", "first_switch_outside_window_planes"} & \
        set(first["compiled_here"]), first["compiled_here"]
    assert os.listdir(tmp_path)                     # Numba wrote its cache there
    second = run_child(tmp_path, "guided")
    assert second["notices"] == []                  # loaded from the cache: no word


def test_the_command_line_says_once_that_it_compiles_and_only_the_first_time(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "minideconv", "project", "--image", "test:3",
               "--layer", "5", "--channel", "2", "--out", str(tmp_path / "p.png")]
    said = []
    for _ in range(2):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        said.append([line for line in proc.stderr.splitlines() if "compiling" in line])
    assert len(said[0]) == 1 and "first run only" in said[0][0]
    assert said[1] == []


def test_the_python_api_says_once_that_it_compiles_and_only_the_first_time(tmp_path):
    """A projection from Python compiles for many seconds on a cold cache: one line on
    stderr says so (as the command line's), none on a warm cache, none when asked quiet."""
    code = ("import numpy as np, minideconv as md\n"
            "md.relu(np.ones((1, 1, 2, 2), np.float32))\n"
            "md.relu(np.ones((1, 1, 2, 2), np.float64))\n")     # two compiles, one line
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("MINIDECONV_QUIET", None)
    said = []
    for extra in ({}, {}, {"MINIDECONV_QUIET": "1"}):
        if extra:
            env["NUMBA_CACHE_DIR"] = str(tmp_path / "cold again")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=600, env=dict(env, **extra))
        assert proc.returncode == 0, proc.stderr[-3000:]
        said.append(proc.stderr.splitlines())
    assert len(said[0]) == 1 and "compiling the CPU kernels" in said[0][0], said[0]
    assert said[1] == [] and said[2] == []
