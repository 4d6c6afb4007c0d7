"""Every linear operator of a small CNN as an explicit sparse matrix.

For ONE image flattened in C-order, x = x_img.ravel() with x_img of shape (C, H, W):

* ``conv2d_matrix`` → W, shape (C_out·H_out·W_out, C_in·H·W):  W x = conv2d(x)
* ``conv_transpose2d_matrix`` → Wᵀ, shape (C_in·H·W, C_out·H_out·W_out):
  Wᵀ y = conv_transpose2d(y)
* ``max_pool2d_matrix`` → P(s), one 1 per row, at the switch:  P(s) x = max_pool2d(x),
  P(s)ᵀ y = max_unpool2d(y)
* ``relu_matrix`` → D = diag(x > 0):  D x = relu(x)
* ``avg_pool2d_matrix``, ``adaptive_avg_pool2d_matrix`` → A, 1 / divisor over each
  window:  A x = avg_pool2d(x), Aᵀ r = avg_pool2d_transpose(r) (and the adaptive ones)
* ``upsample_nearest2d_matrix``, ``upsample_bilinear2d_matrix`` → A, the source pixels'
  weights:  A x = upsample_nearest2d(x), Aᵀ r = upsample_nearest2d_transpose(r) (bilinear
  likewise); ``pad_matrix`` → P of padding (zeros, reflect, replicate, circular)

(bias is the affine offset of a convolution, not part of the linear map W.)

With them, a network's forward pass is a product of matrices and every backward pass is
the product of the transposes in reverse order — except at the ReLUs, where the three
visualisation methods put three different diagonal matrices (``rule_backward_map``).
And the seed question — is the transposed convolution an inverse? — becomes linear
algebra on W: ``singular_values``, ``gram_deviation`` (‖WᵀW − I‖) and ``reconstruct``
(Wᵀy against the least-squares solution argmin‖Wx − y‖).

Where each part lives (every name below is importable from ``minideconv.matrices``):

================  =======================================================================
``conv``          W and Wᵀ, and how they are built from per-axis incidences
``pool_relu``     P(s) and D = diag(x > 0), the 0/1 matrices of max-pooling and ReLU
``average_pool``  A of average pooling and of adaptive average pooling
``channel_maps``  the Jacobians of Softmax and LocalResponseNorm, ChannelShuffle's P
``products``      the blocks of a ⊙ b and of s·x + t, and the normalisations' Jacobians
``resampling``    A of nearest and bilinear upsampling, P of padding
``chains``        products of layer matrices: the forward map and the three backward maps
``network``       the same walk over a whole Sequential or Graph (sums where branches join)
``analysis``      singular values, ‖WᵀW − I‖, least squares, circulant spectra, all-pass
``csr``           what they share: the CSR index dtype and the argument checks
================  =======================================================================

The matrices are scipy.sparse CSR arrays, on the CPU.
"""

from .analysis import (GramDeviation, Reconstruction, allpass_kernel,
                       circular_gram_eigenvalues, gram_deviation, least_squares_inverse,
                       reconstruct, singular_values)
from .average_pool import adaptive_avg_pool2d_matrix, avg_pool2d_matrix
from .channel_maps import (channel_shuffle_matrix, local_response_norm_matrix,
                           softmax_matrix)
from .chains import (BackwardMap, backward_chain, forward_chain, relu_rule_factors,
                     rule_backward_map)
from .conv import conv2d_matrix, conv_transpose2d_matrix
from .network import (NetworkBackwardMap, layer_blocks, network_backward_map,
                      network_forward_map)
from .pool_relu import max_pool2d_matrix, relu_matrix
from .products import (channel_affine_matrix, mul_blocks, product_blocks,
                       standardisation_matrix)
from .resampling import pad_matrix, upsample_bilinear2d_matrix, upsample_nearest2d_matrix

__all__ = [
    "conv2d_matrix", "conv_transpose2d_matrix", "max_pool2d_matrix", "relu_matrix",
    "forward_chain", "backward_chain", "relu_rule_factors", "rule_backward_map",
    "BackwardMap", "singular_values", "gram_deviation", "GramDeviation",
    "least_squares_inverse", "reconstruct", "Reconstruction",
    "circular_gram_eigenvalues", "allpass_kernel",
    "avg_pool2d_matrix", "adaptive_avg_pool2d_matrix",
    "softmax_matrix", "local_response_norm_matrix", "channel_shuffle_matrix",
    "mul_blocks", "channel_affine_matrix", "standardisation_matrix", "product_blocks",
    "upsample_nearest2d_matrix", "upsample_bilinear2d_matrix", "pad_matrix",
    "layer_blocks", "network_forward_map", "network_backward_map", "NetworkBackwardMap",
]
