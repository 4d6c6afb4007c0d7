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
``grad_cam``              Grad-CAM (the gradient pooled at one layer, weighing its maps)
                          and guided Grad-CAM (guided backprop × upsampled Grad-CAM)
``lrp``                   layer-wise relevance propagation: z_t redistributed layer by
                          layer under zennit's composites (``lrp``, ``COMPOSITES``)
``lrp_rules``             the LRP rules (ε, z⁺, αβ, flat, norm, sum), each on a layer's own
                          map and transpose
``canonize``              ``merge_batch_norms``: each BatchNorm2d merged into its Conv2d
========================  ===================================================================
"""

from . import canonize, lrp_rules, targets
from .lrp import COMPOSITES, lrp

__all__ = ["targets", "lrp", "COMPOSITES", "lrp_rules", "canonize"]
