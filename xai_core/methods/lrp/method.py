"""Layer-wise relevance propagation (Bach et al. 2015) for video: CNN + LSTM, ConvLSTM, 3D CNNs,
and any CNN a user brings (2D per frame or 3D).

The explained score (a class logit, the regression output, or the negative squared error
against a reference value) is the starting relevance on the output unit; rules pass it back
layer by layer, roughly conserving the total, to the input.  Decoupled nets are done in the
two stages of 004 (the temporal part first, then the frame CNN per frame with that relevance as
its starting relevance); the rules per layer are listed in ``nets``, ``lstm`` and ``rules``.
``nets.COVERAGE`` lists the architectures with a pass of their own; every other network of
convolutions (a user's 3D CNN, an image classifier over frames, torchvision's video nets) goes
through the graph pass (``graph``): its forward traced with torch.fx, batch norms merged, and a
rule for each node (residual additions and means shared in proportion, activations and gates
passing the relevance to the signal, reshapes and concatenations by their gradient).  A node with
no rule passes the plain gradient and is named in ``meta["plain_gradient"]``; a forward fx cannot
trace is canonized child by child (``meta["untraced"]``).  Networks with recurrent or attention
layers outside the zoo's are refused with the reason; Transformers are out of scope.

Conservation on real weights: biases (and the batch-norm shifts merged into them) absorb their
share at every layer.  ImageNet MobileNetV2 (``../shared/models``) on four frames of the Chaplin
sample keeps under 1% of the score at the pixels under every composite (its 52 convolutions carry
large shifts), while the frames' shares of the clip's score add up to it exactly; a bias-free
network conserves the score to 0.2% (``tests/test_lrp_graph.py``).

Frame CNN input: each frame's network input holds the frame's RGB and, in the zoo's encoders,
three motion channels computed from the frame and the one before it.  Relevance of a pixel =
the sum over that frame's input channels at the pixel (motion channels included, reported at
frame t's pixels, where the moving object now is); the motion channels' part is also given on
its own (``motion_spatial``, ``relevance_motion``).  Relevance reaching the motion channels is
not passed on through their computation to frame t-1: the object mask and gate are, like
LSTM gates, not signals.  With the flat first-layer rule (``epsilon_plus_flat``,
``epsilon_alpha2_beta1_flat``) the first layer ignores the input's values, so every input
channel gets the same share (the three motion channels exactly half): compare RGB with motion
under ``epsilon`` or ``epsilon_gamma_box``.

``epsilon`` (default 0.25, absolute) is the epsilon rule's stabiliser on the weight layers: the
head, the projections, the LSTM's input and recurrent maps, and every conv with the ``epsilon``
composite.  Montavon et al. (2019) suggest about a quarter of the activations' standard
deviation on hidden layers; after batch norm the zoo's activations have a standard deviation of
about 1 (0.8-1.5 in r3d-sides).  It absorbs relevance (``conservation`` reports how much) and
keeps weak, noisy contributions out; a tiny epsilon on a bias-free net conserves the score
exactly (the tests check this).  On three noisy Moving Shapes clips with two distractors,
r3d-sides with the default settings puts 30-46% of the positive relevance on the moving shape
(2-4% of the pixels) and under 2% on the distractors.
"""

from __future__ import annotations

import torch

from ...explanation import Attribution, Target
from ..machinery.maps import frame_importance
from ..machinery.registry import MethodCard, Param, register
from .choices import COMPOSITES

DEFAULT_EPSILON = 0.25

COMPOSITE = Param(
    "composite",
    "choice",
    "epsilon_plus_flat",
    choices=COMPOSITES,
    help="rules for the conv layers: epsilon everywhere; flat first layer then z+ (epsilon_plus_flat) or "
    "alpha2-beta1; z-box first layer then gamma (epsilon_gamma_box)",
)
EPSILON = Param(
    "epsilon",
    "float",
    DEFAULT_EPSILON,
    minimum=1e-9,
    maximum=100.0,
    help="epsilon of the epsilon rule (linear layers, the LSTM's weights, and every conv with the epsilon composite); "
    "larger keeps only the strongest evidence",
)


def applies(model) -> str | None:
    """Why LRP cannot explain ``model`` (``nets.uncovered``: no pass of its own and no graph pass), or None."""
    from .nets import uncovered  # zennit and torchvision: imported when LRP is asked for, not on listing

    why = uncovered(model.net)
    return None if why is None else f"lrp needs a model with lrp rules; {model.name} has none: {why}"


@register(
    "lrp",
    card=MethodCard(
        computes=(
            "Layer-wise relevance propagation: the target score redistributed backwards layer by layer "
            "with zennit's rules (the composite chosen), through the frame CNN and the LSTM or ConvLSTM "
            "gates (signal takes all, gates pass nothing), or through any CNN: its forward traced, batch "
            "norms merged, residual additions split in proportion to their branches."
        ),
        needs=(
            "A network of convolutions (the zoo's CNN-LSTM, input-cell-attention LSTM, ConvLSTM and 3D "
            "ResNets; a user's 2D or 3D CNN; an image classifier over frames); networks with recurrent or "
            "attention layers of their own, and TorchScript, are refused with the reason."
        ),
        cannot_show=(
            "Transformers and user networks with recurrent layers; the relevance of gates themselves; "
            "operations without a rule pass the plain gradient (named in the meta)."
        ),
        failures=(
            ("The composite changes the map: epsilon alone is noisy, epsilon-plus-flat is smoother and coarser."),
            (
                "Relevance is only conserved where the rules conserve it (biases and normalisations "
                "absorb some): the meta reports the total against the score."
            ),
        ),
        cost="One forward and one backward pass.",
    ),
    family="spatial",
    applies=applies,
    params=(COMPOSITE, EPSILON),
    description="Layer-wise relevance propagation through the CNN, the LSTM / ConvLSTM, the 3D CNN or any CNN "
    "(zennit rules)",
    references=("Bach et al. 2015", "Arras et al. 2017 (LSTM)", "004: LRP through VGG16+LSTM and a ConvLSTM"),
    imports=("xai_core.methods.lrp.nets",),
)
def lrp(
    model, x: torch.Tensor, target: Target, composite: str = "epsilon_plus_flat", epsilon: float = DEFAULT_EPSILON
) -> Attribution:
    """x [1,T,C,H,W] -> spatial [T,H,W] signed pixel relevance; temporal [T] mean positive relevance per frame.

    extras: ``relevance_max`` [T] (the maximum per frame, 004's second curve); ``relevance_features``
    [T] (decoupled nets: relevance of each frame's CNN features after the temporal pass);
    ``motion_spatial`` [T,H,W] and ``relevance_motion`` [T] (nets with motion channels: their part
    of ``spatial``); ``score``, ``relevance_total`` (sum over the input) and ``conservation``
    (relevance_total / score), scalars."""
    from .nets import input_relevance

    result = input_relevance(model, x, target, composite, epsilon)
    channels = result.channels.float()  # [T,C_in,H,W]
    spatial = channels.sum(1)
    total = float(channels.sum())
    extras = {
        "relevance_max": spatial.amax((1, 2)),
        "score": torch.tensor(result.score),
        "relevance_total": torch.tensor(total),
        "conservation": torch.tensor(total / result.score if result.score else float("nan")),
    }
    if result.features is not None:
        extras["relevance_features"] = result.features
    if result.motion is not None:
        motion = channels[:, result.motion].sum(1)
        extras["motion_spatial"] = motion
        extras["relevance_motion"] = motion.sum((1, 2))
    meta = {"conservation": total / result.score if result.score else float("nan")}
    if result.graph is not None:
        meta["pass"] = "graph pass: the network's forward traced, a rule for every node (lrp.graph)"
        meta["plain_gradient"] = list(result.graph.plain_gradient)
        meta["untraced"] = list(result.graph.untraced)
    return Attribution(
        spatial=spatial.cpu().numpy(),
        temporal=frame_importance(spatial).cpu().numpy(),
        extras={name: value.detach().float().cpu().numpy() for name, value in extras.items()},
        meta=meta,
    )
