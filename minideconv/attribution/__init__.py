"""The methods that followed the deconvnet, each a seed and a rule on the same chain of
transposes.

Every map here explains one class logit z_t (``targets``): its seed is e_t at the logits,
passed down ``Network.backward`` — the chain the deconvnet and guided backprop use too.

========================  ===================================================================
``targets``               what every method shares: the images, one class per image, the
                          seed e_t at the logits and the way down from it
``gradient``              ∂z_t/∂x (saliency) and x ⊙ ∂z_t/∂x (input × gradient)
``integrated_gradients``  (x − x̄) ⊙ the average gradient on the straight path from a
                          baseline x̄ to x
``smoothgrad``            the average gradient over noisy copies of x
``path_gradients``        the weighted sum of gradients at many points, taken where the
                          chain stops depending on the point (IG's and SmoothGrad's sums)
``grad_cam``              Grad-CAM (the gradient pooled at one layer, weighing its maps)
                          and guided Grad-CAM (guided backprop × upsampled Grad-CAM)
``methods``               every map of the family under one name and one signature
                          (``METHODS``), for tables, figures and the command line
``localisation``          ground truth from the drawn objects' masks: the pointing game,
                          relevance mass, the deletion curve, the centre and random
                          baselines, and a table of methods
``cascade``               the sanity cascade (Adebayo et al. 2018) of any method: the
                          weights redrawn from the top down (``visualize.sanity``), each
                          map compared with its trained one
``lrp``                   layer-wise relevance propagation: z_t redistributed layer by
                          layer under zennit's composites (``lrp``, ``COMPOSITES``)
``lrp_rules``             the LRP rules (ε, z⁺, αβ, flat, norm, sum), each on a layer's own
                          map and transpose
``canonize``              ``merge_batch_norms``: each BatchNorm2d merged into its Conv2d
========================  ===================================================================

A *method*, for ``localisation`` and ``cascade``, is any callable
``method(net, images, targets) -> maps``: images (N, C, H, W), targets (N,) class indices,
maps (N, C, H, W) in input space or (N, h, w) coarse maps (Grad-CAM's).
"""

from . import canonize, cascade, localisation, lrp_rules, targets
from .cascade import FamilyCascade, family_cascade
from .grad_cam import grad_cam, guided_grad_cam, last_spatial_layer
from .gradient import gradient, input_x_gradient
from .integrated_gradients import integrated_gradients
from .localisation import (LocalisationTable, centre_map, deletion_auc, deletion_curve,
                           heatmap, localisation_table, pointing_game, random_map,
                           relevance_mass)
from .lrp import COMPOSITES, lrp
from .methods import METHODS, compute, describe
from .smoothgrad import smoothgrad

__all__ = ["gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "grad_cam",
           "guided_grad_cam", "last_spatial_layer", "lrp", "COMPOSITES", "METHODS",
           "compute", "describe", "targets", "localisation", "cascade", "lrp_rules",
           "canonize", "heatmap", "pointing_game", "relevance_mass", "deletion_curve",
           "deletion_auc", "centre_map", "random_map", "LocalisationTable",
           "localisation_table", "FamilyCascade", "family_cascade"]
