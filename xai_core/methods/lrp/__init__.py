"""Layer-wise relevance propagation: the registered method (``method``), which architectures it
covers and how relevance passes through each (``nets``, one table), the recurrent rules
(``lstm``) and zennit's rules, composites and canonizers for the conv and linear layers
(``rules``), and the composites' names (``choices``).  Nothing is imported here; ``method``
imports the rest when LRP runs, so that listing the methods does not import zennit."""
