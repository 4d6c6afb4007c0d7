"""Bridges to other frameworks; nothing here is imported by ``import minideconv``.

=========  ==========================================================================
``torch``  ``from_torch`` / ``to_torch``, and ``crosscheck``: a report against PyTorch
           autograd, rule rectifiers and Captum (needs PyTorch, and Captum for the report)
``onnx``   ``from_onnx``: the route for Keras, TF and JAX, and ``crosscheck_onnx``
           against onnxruntime (needs onnx, onnxruntime)
=========  ==========================================================================

Each is a package whose ``__init__`` lists its modules.
"""
