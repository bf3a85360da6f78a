"""Architecture priors: spatial masks that a zoo model computes by a formula instead of learning.

A per-frame model of the zoo may multiply its input or its last feature map by the moving
object's mask (``motion.py``: the object or block gate, the object readout).  The mask says where
the evidence is without any learned parameter, so every explanation method finds it whatever the
weights are, and the randomisation sanity check fails.  Such models are didactic only: their
names end in ``GATED_SUFFIX`` and their cards say what the prior is.  Plain signed frame
differences (``motion_gate="difference"``) are not a prior: any video model may see them.
"""

from __future__ import annotations

GATED_SUFFIX = "-gated"
FRAME_ENCODER_ARCHS = ("cnn_transformer", "cnn_lstm", "cnn_lstm_attn", "ica_lstm", "convlstm")
MOTION_GATE_ARCHS = (*FRAME_ENCODER_ARCHS, "r3d")  # those with a motion_gate option


def architecture_priors(arch: str, config: dict) -> list[str]:
    """The parameter-free spatial masks an architecture's ``config`` switches on (empty: none).
    Options left out take the architectures' defaults, which have none."""
    if arch not in MOTION_GATE_ARCHS:
        return []
    priors = []
    gate = config.get("motion_gate", "difference")
    if config.get("motion_input", True) is False:
        gate = "difference"
    if gate is True or gate == "block":
        priors.append("motion channels kept only near pixels that changed (a block gate computed by formula)")
    elif gate == "object":
        priors.append("motion channels kept only on the moving object (an object mask computed by formula)")
    if arch in FRAME_ENCODER_ARCHS and config.get("object_readout", False):
        priors.append("the last feature map multiplied by the moving object's mask before pooling (object readout)")
    return priors


def resolved_config(arch: str, config: dict, card_version: int) -> dict:
    """A card's configuration with the defaults it was written under: before card version 2 the
    per-frame CNN's defaults were the object gate and the object readout, so a version-1 card
    that leaves them out meant them."""
    config = dict(config or {})
    if card_version < 2 and arch in FRAME_ENCODER_ARCHS and config.get("backbone", "small") == "small":
        config.setdefault("motion_gate", "object")
        config.setdefault("object_readout", True)
    return config


def check_priors(name: str, arch: str, config: dict) -> None:
    """Raise ValueError when a model that is not named ``...-gated`` has an architecture prior."""
    priors = architecture_priors(arch, config)
    if priors and not name.endswith(GATED_SUFFIX):
        raise ValueError(
            f"{name} computes where to look by formula ({priors[0]}); only didactic models whose names end in "
            f"{GATED_SUFFIX!r} may, so that their explanations are not mistaken for learned ones"
        )
