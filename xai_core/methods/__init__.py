"""The explanation methods.

One module per family at the top (``attention``, ``cam``, ``flow``, ``gradients``, ``masking``,
``trajectories``, ``tsr``) and LRP in ``lrp/``: each method is one registered function
``fn(model, x, target, **params) -> Attribution``.  What they share lies below them in
``machinery/`` (the registry, hooks, the explained score, perturbations and their engines,
planning); the method modules do not import one another.  ``machinery.registry`` finds the
methods by importing every module of this package outside ``machinery/``, so nothing is imported
here.
"""
