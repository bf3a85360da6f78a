"""Layer-wise relevance propagation: the registered method (``method``), which architectures it
covers and how relevance passes through each (``nets``, one table), the recurrent rules
(``lstm``) and zennit's rules, composites and canonizers for the conv and linear layers
(``rules``).  Nothing is imported here."""
