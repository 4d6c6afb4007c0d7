"""The ``minideconv`` command line: ``minideconv.cli:main`` (also ``python -m minideconv``).

The library never imports this package; this package turns the library's errors into one
line on stderr and an exit status.

===================  ======================================================================
``program``          the parser, built from each command's ``add_parser``; ``main``; one-line
                     errors and exit statuses (``explain``, ``EXIT_STATUS``)
``demo``             ``minideconv demo``: Zeiler & Fergus-style figures for the shipped network
``project``          ``minideconv project``: one activation back to pixel space, as a figure
``attribute``        ``minideconv project --method``: a class logit explained by a method
                     of the attribution family, as a figure
``train``            ``minideconv train``: train the shipped network from scratch
``figure2``          ``minideconv figure2``: Figure 2 on a folder of your own images, its
                     batches chosen from a memory budget
``figure2_ranking``  ``figure2``'s ranking file, written after every batch, for
                     ``--resume``
``figure2_dask``     ``figure2 --workers N`` / ``--scheduler ADDRESS``: the ranking pass
                     on a Dask cluster
``crosscheck``       ``minideconv crosscheck``: beside PyTorch + Captum, or onnxruntime
``checks``           the flags' checks: integers, positions, networks, images, memory;
                     ``UsageError`` (exit 2) and ``RunError`` (exit 1)
``inputs``           what ``figure2`` and ``project`` feed the network: ``--model`` (.npz or
                     .onnx), ``--size``, ``--resize``, ``--normalize``, defined and checked once
``outputs``          where ``--out`` writes: the exact file or folder, created, proved writable
===================  ======================================================================
"""

from .program import main

__all__ = ["main"]
