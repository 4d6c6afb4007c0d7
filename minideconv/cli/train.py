"""``minideconv train``: train the shipped network from scratch (``minideconv.train``).

The output file and the memory a run needs are checked before the first epoch.
"""

from __future__ import annotations

from . import checks, outputs
from .demo import dataset_image_shape


PREDICT_BATCH = 500     # train.accuracy's batch: the largest trace of a training run
MAX_EPOCHS = 1000       # so that a typo in --epochs cannot start a run that never ends


def cmd_train(args):
    from ..data import SPLITS
    from ..models import build_model
    from ..train import train_default
    out = outputs.output_file(args.out, "--out", {".npz"}, ".npz")
    test_images = SPLITS["test"][1]         # train_default reports the test accuracy
    shapes = build_model(args.seed).layer_shapes()
    needed = (checks.dataset_bytes(args.n_train + test_images, dataset_image_shape())
              + checks.traced_bytes(shapes, dataset_image_shape(), PREDICT_BATCH))
    checks.check_memory(needed, "--n-train", args.n_train)
    train_default(out=out, epochs=args.epochs, seed=args.seed, n_train=args.n_train,
                        progress=not args.no_progress)


def add_parser(sub, **common):
    """The ``train`` sub-command's flags; its parser runs ``cmd_train``."""
    from ..data import SPLITS
    from ..train import DEFAULTS
    train_size = SPLITS["train"][1]
    description = checks.paragraph(
        "Softmax cross-entropy, SGD with momentum, on load_dataset('train'); "
        "prints the test accuracy.")
    p = sub.add_parser("train", help="train the shipped network from scratch",
                       description=description, **common)
    p.add_argument("--out", default="model.npz",
                   help="the weights file, created with its folder and checked before "
                        "training: '.npz' is added when the name has no suffix, a name "
                        "that is only a suffix ('.npz') is refused (default %(default)s)")
    p.add_argument("--epochs", type=checks.integer(1, MAX_EPOCHS,
                                                   "a bound against typos: each epoch "
                                                   "passes over every training image"),
                   default=DEFAULTS["epochs"], metavar="E",
                   help=f"passes over the training images, in [1, {MAX_EPOCHS}]: each one "
                        f"takes as long as the first, so a typo cannot start a run that "
                        f"never ends (default %(default)s)")
    p.add_argument("--seed", type=checks.integer(0), default=DEFAULTS["seed"],
                   help="initial weights and batch order, >= 0 (default %(default)s)")
    batch = DEFAULTS["batch_size"]
    p.add_argument("--n-train", type=checks.integer(batch, train_size,
                                                    f"one batch of {batch} up to the "
                                                    f"train split's {train_size}"),
                   default=DEFAULTS["n_train"], metavar="N",
                   help=f"training images, in [{batch}, {train_size}] "
                        f"(default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    return p
