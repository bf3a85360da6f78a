"""The names of the composites LRP offers (``rules.composite`` builds each), apart from ``rules``
so that the method is registered and listed without importing zennit and torchvision."""

COMPOSITES = ("epsilon", "epsilon_plus_flat", "epsilon_alpha2_beta1_flat", "epsilon_gamma_box")
