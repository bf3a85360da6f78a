"""What the methods share and users rarely read: the registry (``registry``), hooks, the explained
score (``scoring``), optical flow (``optical_flow``), noise and batching (``smoothing``), frame
importance (``maps``), perturbations (``perturbation``, ``windows``) and their fast engines
(``engine``, ``regional``, ``relevance_change``), and the cost of a long method before it runs
(``planning``).  Nothing here imports a method module; nothing is imported here."""
