"""What several test files share; nothing here is collected as a test.

=========================  ===============================================================
``strategies``             Hypothesis strategies for valid operator configurations, and
                           the numeric helpers that compare results (``assert_close``,
                           ``dot``, ...)
``torch_reference``        an independent PyTorch reference for projections at any node
                           of any traceable model (autograd, rule ReLUs, Captum); it uses
                           nothing from minideconv
``torchvision_layouts``    torchvision's AlexNet, VGG-16(-BN), ResNet-18 and a concat
                           network, written out (PyPI's torchvision does not import
                           beside the CPU torch)
``subprocesses``           ``run_without_jit``: code in a fresh Python with
                           ``NUMBA_DISABLE_JIT=1``, the kernels as plain Python
=========================  ===============================================================

``tests/`` is on ``sys.path`` (``tests/conftest.py`` puts it there, and so does pytest's
default "prepend" import mode), so a test file imports ``from support.strategies import
...`` whether the whole suite runs or one file alone.
"""
