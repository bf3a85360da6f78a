"""Video networks and what wraps them: the ``VideoModel`` adapter (``base``), the zoo's
architectures, their registry, weight files and checkpoints, user models, training.  Nothing here
knows of the explanation methods; nothing is imported here, so that importing one module loads
only what it needs."""
