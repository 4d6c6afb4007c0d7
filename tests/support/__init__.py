"""What several test files share; nothing here is collected as a test.

=========================  ===============================================================
``strategies``             Hypothesis strategies for valid operator configurations, and
                           the numeric helpers that compare results (``assert_close``,
                           ``dot``, ...)
``adjoints``               ``dottest_at_rounding_scale`` (the dot test's tolerance at
                           <|A| |x|, |y|>, which cannot cancel) and ``brute_unpool``
                           (P(s)ᵀ by np.add.at)
``gpu``                    ``on_reference_backend``: NumPy arrays through the GPU's
                           whole-array code; ``cupy_or_skip``: CuPy and a CUDA device
``subprocesses``           ``run_without_jit``: code in a fresh Python with
                           ``NUMBA_DISABLE_JIT=1``, the kernels as plain Python
``cli``                    ``main_status``: the command's exit status, argparse's included
``networks``               ``small_net``: the conv → ReLU → pool → conv → ReLU → linear
                           network on 3×9×9 inputs that the nn, train and visualize
                           tests build
``torch_reference``        an independent PyTorch reference for projections at any node
                           of any traceable model (autograd, rule ReLUs, Captum); it uses
                           nothing from minideconv
``rectifier_table``        the rule table in torch for ReLU6, LeakyReLU, PReLU modules
                           (an autograd override), and the activation test networks
``torchvision_layouts``    torchvision's AlexNet, VGG-16(-BN), ResNet-18 and a concat
                           network, written out (PyPI's torchvision does not import
                           beside the CPU torch)
``onnx_exports``           ``export``: a torch model through ``torch.onnx.export`` and
                           ``from_onnx``; ``in_float64``: both sides in float64
``modern_layouts``         ConvNeXt's CNBlock, Permute and LayerNorm2d and torchvision's
                           SqueezeExcitation, and two small networks built from them
``modern_networks``        torchvision's MobileNetV2, EfficientNet-B0, DenseNet-121,
                           GoogLeNet, ConvNeXt-T and three U-Nets, written out the same way
``zennit_reference``       zennit imported without torchvision (a stand-in while it
                           loads), its LRP with a one-hot seed, and the residual model
                           with zennit's ``Sum`` at each add
=========================  ===============================================================

``tests/`` is on ``sys.path`` (``tests/conftest.py`` puts it there, and so does pytest's
default "prepend" import mode), so a test file imports ``from support.strategies import
...`` whether the whole suite runs or one file alone.
"""
