"""Bridges to other frameworks.  ``minideconv.interop.torch`` needs PyTorch (and Captum for
the deconvnet/guided cross-checks); nothing here is imported by ``import minideconv``."""
