"""Bridges to other frameworks; nothing here is imported by ``import minideconv``.

======================  =====================================================================
``torch``               ``from_torch`` (any ``nn.Module`` that torch.fx can trace, into these
                        layers), ``to_torch``, and ``crosscheck`` / ``compare``: a report
                        against PyTorch autograd, rule ReLUs and Captum.  Needs PyTorch (and
                        Captum for the Sequential report's deconvnet/guided references).
``torch_report``        the report's classes: ``Error``, ``LayerCheck``, ``CrosscheckReport``,
                        ``TOLERANCE`` (no torch needed)
``torch_layers``        one torch layer ↔ one minideconv layer, weights copied; ``SUPPORTED``
``torch_fx``            the fx side: tracing, the naming rule, in-place ops, Graph →
                        ``torch.fx.GraphModule``
``torch_fx_nodes``      one fx node → one layer: each operation recognised, its arguments bound
``torch_autograd``      torch's side of the cross-check: values at every node, projections by
                        autograd, Captum or rule ReLUs in an fx copy, the F.max_unpool2d variant
``torch_join_modules``  ``Sum`` and ``ChannelConcat``: ``to_torch``'s modules for Add and Concat
``onnx``                ``from_onnx``: the route for Keras, TF and JAX (needs onnx,
                        onnxruntime), and ``crosscheck_onnx`` against onnxruntime
``onnx_reader``         ``GraphReader``: walks an ONNX graph and dispatches each node
``onnx_values``         what a tensor is while read (constant, activation, pending pool)
``onnx_layer_ops``,     the translations, one function per ONNX operation: those that become
``onnx_mean_ops``,      layers, averages over (H, W), and shape arithmetic on constants
``onnx_shape_ops``
======================  =====================================================================
"""
