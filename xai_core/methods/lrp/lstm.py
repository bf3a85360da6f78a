"""LRP through LSTMs and ConvLSTMs (Arras et al. 2017), written here since no library has it.

A cell step computes gates from the input x_t and the previous hidden state h_{t-1}:
  z_* = W_* x_t + U_* h_{t-1} + b_*,   i, f, o = sigmoid(z_i, z_f, z_o),   g = tanh(z_g)
  c_t = f * c_{t-1} + i * g,           h_t = o * tanh(c_t)
(``nn.LSTM``: W, U are matrices; ``ConvLSTMCell``: one 3x3 convolution over [x_t, h_{t-1}]).

Rules, backwards in time:
* h_t = o * tanh(c_t): a gated product; all of h_t's relevance goes to c_t (the signal), none
  to the gate o; tanh is elementwise and passes relevance on.
* c_t = f * c_{t-1} + i * g: split in proportion to the two contributions,
  R(c_{t-1}) = f c_{t-1} / c_t * R(c_t), R(g) = i g / c_t * R(c_t) (stabiliser 1e-12); within each
  product the gate (f, i) gets nothing.
* g = tanh(z_g), z_g linear in [x_t, h_{t-1}]: the epsilon rule,
  R(x_k) = sum_j x_k W_jk / (z_j + eps sign z_j) * R(g_j), the same for h_{t-1} with U.  The bias
  b_j (both of nn.LSTM's biases) is part of z_j and keeps its share of R(g_j) (absorbed, not
  redistributed: Arras et al.'s bias_factor = 0), as is the epsilon term.
* The gates i, f, o (and their weights) receive no relevance.
h_0 = c_0 = 0 hold no relevance.  Relevance arriving at h_t from above (the readout) is added to
what h_t gets from step t+1 through U.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...models.convlstm import ConvLSTMCell
from .rules import TINY, stabilise


@dataclass
class RecurrentTrace:
    """A forward pass of a (conv) LSTM, kept for LRP.  Shapes [B,T,*] with * = [H] (LSTM) or
    [H,h,w] (ConvLSTM); ``h`` and ``c`` have T+1 steps (index 0: the zero initial state)."""

    x: torch.Tensor  # inputs [B,T,N] or [B,T,C,h,w]
    h: torch.Tensor
    c: torch.Tensor
    i: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    z_g: torch.Tensor  # g's pre-activation, biases included

    @property
    def outputs(self) -> torch.Tensor:
        """h_1..h_T [B,T,*]."""
        return self.h[:, 1:]


def lstm_trace(lstm: nn.LSTM, x: torch.Tensor) -> RecurrentTrace:
    """Run a one-layer, unidirectional, batch-first ``nn.LSTM`` on x [B,T,N] step by step."""
    if lstm.num_layers != 1 or lstm.bidirectional or not lstm.batch_first or lstm.proj_size:
        raise ValueError("LRP covers one-layer, unidirectional, batch-first LSTMs without projection")
    x_part = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0)  # [B,T,4H]
    return _run(x, x_part, lambda h: F.linear(h, lstm.weight_hh_l0, lstm.bias_hh_l0), order="ifgo")


def convlstm_trace(cell: ConvLSTMCell, x: torch.Tensor) -> RecurrentTrace:
    """Run a ``ConvLSTMCell`` over x [B,T,C,h,w] from a zero state (as ``ConvLSTMNet`` does)."""
    b, t, c_in = x.shape[:3]
    w_x, w_h = cell.gates.weight[:, :c_in], cell.gates.weight[:, c_in:]
    pad = cell.gates.padding
    x_part = F.conv2d(x.flatten(0, 1), w_x, cell.gates.bias, padding=pad).unflatten(0, (b, t))
    return _run(x, x_part, lambda h: F.conv2d(h, w_h, padding=pad), order="ifog")


def _run(x: torch.Tensor, x_part: torch.Tensor, h_part: Callable, order: str) -> RecurrentTrace:
    """The recurrence from precomputed input terms x_part [B,T,4H,*]; ``order`` names the gate chunks."""
    b, t = x.shape[:2]
    hidden = x_part.shape[2] // 4
    h = x_part.new_zeros(b, hidden, *x_part.shape[3:])
    c = torch.zeros_like(h)
    hs, cs, gates = [h], [c], {k: [] for k in "ifgoz"}
    for step in range(t):
        z = dict(zip(order, (x_part[:, step] + h_part(h)).chunk(4, dim=1)))
        i, f, o, g = torch.sigmoid(z["i"]), torch.sigmoid(z["f"]), torch.sigmoid(z["o"]), torch.tanh(z["g"])
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
        cs.append(c)
        for key, value in (("i", i), ("f", f), ("g", g), ("o", o), ("z", z["g"])):
            gates[key].append(value)
    st = {k: torch.stack(v, 1) for k, v in gates.items()}
    return RecurrentTrace(x, torch.stack(hs, 1), torch.stack(cs, 1), st["i"], st["f"], st["g"], st["z"])


def recurrent_relevance(
    trace: RecurrentTrace,
    relevance_h: torch.Tensor,
    back: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    epsilon: float,
) -> torch.Tensor:
    """Relevance of the inputs [B,T,...] from the relevance arriving at h_1..h_T [B,T,*].

    ``back(s)`` maps s = R(g) / (z_g + eps sign z_g) [B,*] to (W_g^T s, U_g^T s): the transposed
    linear maps of g's pre-activation for the input and for h_{t-1}."""
    relevance_x = torch.zeros_like(trace.x)
    from_next_c = torch.zeros_like(trace.c[:, 0])
    from_next_h = torch.zeros_like(trace.h[:, 0])
    for t in reversed(range(trace.x.shape[1])):
        r_c = from_next_c + relevance_h[:, t] + from_next_h  # h_t = o * tanh(c_t): all to c_t
        share = r_c / stabilise(trace.c[:, t + 1], TINY)
        from_next_c = trace.f[:, t] * trace.c[:, t] * share
        r_g = trace.i[:, t] * trace.g[:, t] * share
        to_x, to_h = back(r_g / stabilise(trace.z_g[:, t], epsilon))
        relevance_x[:, t] = trace.x[:, t] * to_x
        from_next_h = trace.h[:, t] * to_h
    return relevance_x


def lstm_relevance(lstm: nn.LSTM, trace: RecurrentTrace, relevance_h: torch.Tensor, epsilon: float) -> torch.Tensor:
    """nn.LSTM: relevance of h_1..h_T [B,T,H] -> relevance of the inputs [B,T,N]."""
    hidden = lstm.hidden_size
    w_g = lstm.weight_ih_l0[2 * hidden : 3 * hidden]  # PyTorch's gate order: i, f, g, o
    u_g = lstm.weight_hh_l0[2 * hidden : 3 * hidden]
    return recurrent_relevance(trace, relevance_h, lambda s: (s @ w_g, s @ u_g), epsilon)


def convlstm_relevance(
    cell: ConvLSTMCell, trace: RecurrentTrace, relevance_h: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """ConvLSTMCell: relevance of h_1..h_T [B,T,H,h,w] -> relevance of the inputs [B,T,C,h,w]."""
    hidden, c_in = cell.hidden, trace.x.shape[2]
    w_g = cell.gates.weight[3 * hidden : 4 * hidden]  # the cell's gate order: i, f, o, g

    def back(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        both = F.conv_transpose2d(s, w_g, padding=cell.gates.padding)  # [B, C+H, h, w]
        return both[:, :c_in], both[:, c_in:]

    return recurrent_relevance(trace, relevance_h, back, epsilon)


def attention_summary_relevance(attention: torch.Tensor, inputs: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Input-cell attention (ICA-LSTM): the summaries M[t,r] = sum_s A[t,r,s] x_s, with the
    attention weights A held constant (gates), are a linear map of the inputs; each summary's
    relevance is shared in proportion to the contributions A[t,r,s] x_s (stabiliser 1e-12).
    attention [B,T,r,S], inputs [B,S,N], relevance of the summaries [B,T,r,N] -> [B,S,N]."""
    summaries = torch.einsum("btrs,bsn->btrn", attention, inputs)
    share = relevance / stabilise(summaries, TINY)
    return inputs * torch.einsum("btrs,btrn->bsn", attention, share)
