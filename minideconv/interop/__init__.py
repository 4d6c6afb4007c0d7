"""Bridges to other frameworks; nothing here is imported by ``import minideconv``.

================  ===========================================================================
``torch``         ``from_torch`` (any ``nn.Module`` that torch.fx can trace, into these
                  layers), ``to_torch``, and ``crosscheck`` / ``compare``: a report against
                  PyTorch autograd, rule ReLUs and Captum.  Needs PyTorch (and Captum for
                  the Sequential report's deconvnet/guided references).
``torch_fx``      the fx side of it: one layer per fx node, the naming rule, the supported
                  operations (``SUPPORTED``), Graph → ``torch.fx.GraphModule``, and torch's
                  values and rule projections at every fx node
``onnx``          ``from_onnx``: the route for Keras, TF and JAX (needs onnx, onnxruntime)
================  ===========================================================================
"""
