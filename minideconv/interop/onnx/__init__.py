"""ONNX → minideconv, and the cross-check against onnxruntime: the route for Keras, TF, JAX.

>>> net = from_onnx("model.onnx")                  # doctest: +SKIP
>>> print(crosscheck_onnx("model.onnx", images))   # doctest: +SKIP

``onnx`` (and ``onnxruntime`` for the cross-check) are imported when a function runs:
``pip              install 'minideconv[onnx]'``.  ``convert``'s docstring has the table of what each
ONNX operation becomes.

=================  =========================================================================
``convert``        ``from_onnx`` and ``load_model``: a file or ModelProto → an ``nn.Graph``
``comparison``     ``crosscheck_onnx``: every node against onnxruntime; returns a report
``reader``         ``GraphReader``: walks an ONNX graph and dispatches each node
``values``         what a tensor is while read (constant, activation, a pending chain)
``layer_ops``      the operations that become layers (Conv, Gemm, pools, BatchNormalization…)
``activations``    the activations beside Relu (Clip, LeakyRelu, PRelu, Sigmoid, HardSwish…)
``folding``        constants evaluated (ConstantOfShape, Mul, Sub, Div); Mul / Add into a BN
``structure_ops``  Sum, LRN, Softmax, and the channel shuffle's Reshape → Transpose → Reshape
``product_ops``    Mul, Add of constants, GroupNormalization, InstanceNormalization, GroupNorm
``regions``        Transpose(0,2,3,1) … Transpose(0,3,1,2) around position-wise ops (ConvNeXt)
``resize_ops``     ConvTranspose, Resize, Upsample, Pad: the operations that enlarge (+ Slice)
``mean_ops``       averages over (H, W): ReduceMean, and PyTorch's adaptive-pool chain
``shape_ops``      shape arithmetic on constants (Shape, Gather, Unsqueeze, Concat, Reshape)
``layouts``        tf2onnx's channels-last (NHWC) input and flatten: ``input_layout``
=================  =========================================================================
"""

from .comparison import TOLERANCE, NodeCheck, OnnxCrosscheckReport, crosscheck_onnx, \
    onnxruntime_outputs
from .convert import from_onnx, load_model
from .layouts import input_layout
from .reader import SUPPORTED
from .values import BATCH

__all__ = ["from_onnx", "load_model", "input_layout", "crosscheck_onnx",
           "onnxruntime_outputs", "OnnxCrosscheckReport", "NodeCheck", "SUPPORTED",
           "TOLERANCE", "BATCH"]
