"""Convolutions can run their chunks of images on several threads, each thread's BLAS and
Numba limited to one core (``backends.image_threads``).  The threaded route must give
what the one-after-the-other route gives and what the sparse matrices W and Wᵀ give,
visit every chunk exactly once, pass a worker's error on, leave the caller's thread
settings alone, and survive a fork.
"""

from __future__ import annotations

import multiprocessing

import numba
import numpy as np
import pytest
from hypothesis import given

import minideconv as md
from minideconv import matrices
from minideconv.backends import image_threads

from support.strategies import conv_cases, conv_transpose_cases


@pytest.fixture(scope="module")
def threads_possible():
    """The threaded route needs a thread-safe Numba layer (known once a parallel kernel
    ran) and per-thread BLAS thread counts; CI installs both (tbb, NumPy's OpenBLAS)."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core: Numba's pool has a single thread, so no worker threads")
    md.relu(np.ones(4))   # first: minideconv loads TBB before Numba's pool starts
    numba.set_num_threads(2)  # the row-band cases need two (this starts the pool)
    if not image_threads.threadsafe_numba_layer():
        pytest.skip(f"Numba's threading layer {numba.threading_layer()} is not thread-safe")
    if image_threads.blas_thread_setters() is None:
        pytest.skip("NumPy's BLAS has no per-thread thread count (not OpenBLAS >= 0.3.27?)")


def _forced(threads, op, *args, **kwargs):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(image_threads, "threads_for", lambda n_images, flops: threads)
        return op(*args, **kwargs)


@given(conv_cases(dtypes=(np.float64,), string_padding=False, max_channels=6))
def test_threaded_convolution_equals_sequential_and_the_sparse_matrix(threads_possible, case):
    """Batches of 2 split into images, single images into bands of output rows (some of
    them reading only padding rows)."""
    x, weight, _, _ = case.arrays()
    kwargs = case.kwargs()
    threaded = _forced(2, md.conv2d, x, weight, **kwargs)
    sequential = _forced(1, md.conv2d, x, weight, **kwargs)
    np.testing.assert_allclose(threaded, sequential, rtol=1e-12, atol=1e-12)
    w = matrices.conv2d_matrix(weight, x.shape[1:], stride=case.stride,
                               padding=case.int_padding, dilation=case.dilation,
                               groups=case.groups, padding_mode=case.padding_mode)
    expected = np.stack([w @ x_n.ravel() for x_n in x]).reshape(threaded.shape)
    np.testing.assert_allclose(threaded, expected, rtol=1e-12, atol=1e-12)


@given(conv_transpose_cases(padding_modes=("zeros", "circular"), dtypes=(np.float64,),
                            max_channels=6))
def test_threaded_transpose_equals_sequential_and_the_sparse_matrix(threads_possible, case):
    y, weight, _, _ = case.arrays()
    kwargs = case.kwargs()
    threaded = _forced(2, md.conv_transpose2d, y, weight, **kwargs)
    sequential = _forced(1, md.conv_transpose2d, y, weight, **kwargs)
    np.testing.assert_allclose(threaded, sequential, rtol=1e-12, atol=1e-12)
    c = case.conv
    wt = matrices.conv_transpose2d_matrix(weight, threaded.shape[1:], stride=c.stride,
                                          padding=c.int_padding, dilation=c.dilation,
                                          groups=c.groups, padding_mode=c.padding_mode)
    # That convolution's output is larger by output_padding // stride (bottom/right), and
    # those extra outputs are zero in y.
    ah, aw = (a // s for a, s in zip(case.output_padding, c.stride))
    y_ext = np.pad(y, ((0, 0), (0, 0), (0, ah), (0, aw)))
    expected = np.stack([wt @ y_n.ravel() for y_n in y_ext]).reshape(threaded.shape)
    np.testing.assert_allclose(threaded, expected, rtol=1e-12, atol=1e-12)


@given(conv_cases(dtypes=(np.float64,), string_padding=False, max_channels=6))
def test_threaded_weight_gradient_equals_sequential_and_the_adjoint_identity(
        threads_possible, case):
    """Per-thread sums added at the end: the same as image by image (up to rounding),
    the same on every threaded run, and the transpose of v ↦ conv2d(x, v) (conv2d is
    linear in its weight): ⟨conv2d(x, v), g⟩ = ⟨dw(g), v⟩, by ``dottest``."""
    x, weight, _, g = case.arrays()
    kwargs = case.kwargs()
    threaded = _forced(2, md.conv2d_weight_grad, x, g, weight.shape, **kwargs)
    sequential = _forced(1, md.conv2d_weight_grad, x, g, weight.shape, **kwargs)
    np.testing.assert_allclose(threaded, sequential, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(
        _forced(2, md.conv2d_weight_grad, x, g, weight.shape, **kwargs), threaded)
    md.dottest(lambda v: md.conv2d(x, v, **kwargs),
               lambda g_: _forced(2, md.conv2d_weight_grad, x, g_, weight.shape, **kwargs),
               weight.shape, g.shape)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_every_chunk_runs_once_each_thread_with_its_own_scratch(threads_possible, threads):
    chunks = [slice(i, i + 1) for i in range(17)]
    seen, scratches = [], []

    def make_scratch():
        scratches.append(object())
        return scratches[-1]

    def work(chunk, scratch):
        seen.append((chunk.start, id(scratch)))

    image_threads.run_chunks(chunks, work, make_scratch, threads)
    assert sorted(start for start, _ in seen) == list(range(17))
    assert len(scratches) == threads
    assert {s for _, s in seen} <= {id(s) for s in scratches}


def test_a_workers_error_reaches_the_caller(threads_possible):
    def work(chunk, scratch):
        if chunk.start == 5:
            raise ValueError("chunk 5 failed")

    with pytest.raises(ValueError, match="chunk 5 failed"):
        image_threads.run_chunks([slice(i, i + 1) for i in range(8)], work, lambda: None, 2)


def test_the_callers_thread_settings_stay_as_they_were(threads_possible):
    """The workers set Numba and BLAS to one thread for themselves only."""
    import threadpoolctl
    numba.set_num_threads(2)
    blas_before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                   if lib["user_api"] == "blas"]
    x = np.ones((4, 8, 16, 16))
    _forced(2, md.conv2d, x, np.ones((8, 8, 3, 3)), padding=1)
    assert numba.get_num_threads() == 2
    assert [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas"] == blas_before


def test_threads_only_for_enough_work(threads_possible):
    numba.set_num_threads(2)
    enough = image_threads.MIN_FLOPS_PER_THREAD
    assert image_threads.threads_for(8, enough) == 2
    assert image_threads.threads_for(8, enough / 8) == 1        # all of it: one thread's worth
    assert image_threads.threads_for(1, 100 * enough) == 1      # one image: nothing to share
    numba.set_num_threads(1)
    try:
        assert image_threads.threads_for(8, enough) == 1        # the user asked for one
    finally:
        numba.set_num_threads(2)


def _convolve_in_child(queue):
    x = np.ones((4, 8, 16, 16))
    y = _forced(2, md.conv2d, x, np.ones((8, 8, 3, 3)), padding=1)
    queue.put(float(y[0, 0, 5, 5]))


def test_a_forked_child_can_use_the_threads(threads_possible):
    """The child inherits the parent's pool object but not its threads; without
    ``_forget_pool`` its first threaded convolution would wait forever."""
    _forced(2, md.conv2d, np.ones((4, 8, 16, 16)), np.ones((8, 8, 3, 3)), padding=1)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_convolve_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child's threaded convolution hung")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 8 * 9  # 8 channels x 9 taps of ones


def test_threaded_convolutions_of_a_real_batch(threads_possible):
    """Eight 16-channel 32x32 images, so that the threads really overlap (the drawn cases
    above are small): each thread must unfold into its own scratch."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 16, 32, 32))
    weight = rng.standard_normal((24, 16, 3, 3))
    y = _forced(1, md.conv2d, x, weight, padding=1)
    for _ in range(3):
        np.testing.assert_allclose(_forced(2, md.conv2d, x, weight, padding=1), y,
                                   rtol=1e-12, atol=1e-12)
    one = x[:1, :, :, :29]  # one image: two bands of rows, 16 and 17 of them
    np.testing.assert_allclose(_forced(2, md.conv2d, one, weight, stride=2, padding=3),
                               _forced(1, md.conv2d, one, weight, stride=2, padding=3),
                               rtol=1e-12, atol=1e-12)
    dw = _forced(1, md.conv2d_weight_grad, x, y, weight.shape, padding=1)
    for _ in range(3):
        np.testing.assert_allclose(
            _forced(2, md.conv2d_weight_grad, x, y, weight.shape, padding=1), dw,
            rtol=1e-12, atol=1e-12 * np.abs(dw).max())
    x_back = _forced(1, md.conv_transpose2d, y, weight, stride=2, padding=1)
    for _ in range(3):
        np.testing.assert_allclose(
            _forced(2, md.conv_transpose2d, y, weight, stride=2, padding=1), x_back,
            rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_batch_of_no_images(threads_possible, threads):
    """Zero images: empty outputs and a zero weight gradient, as in PyTorch."""
    x, weight = np.ones((0, 3, 8, 8)), np.ones((4, 3, 3, 3))
    assert _forced(threads, md.conv2d, x, weight).shape == (0, 4, 6, 6)
    assert _forced(threads, md.conv_transpose2d, np.ones((0, 4, 6, 6)), weight).shape == \
        (0, 3, 8, 8)
    dw = _forced(threads, md.conv2d_weight_grad, x, np.ones((0, 4, 6, 6)), weight.shape)
    np.testing.assert_array_equal(dw, np.zeros(weight.shape))
