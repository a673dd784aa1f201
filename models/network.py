"""The forecasting network: nn.Modules only (no numpy, no device choice, no files).

Input is the worker's feature arrays as tensors; scaling happens inside
the module, so training and scoring cannot disagree on it.

Scaling (works for 0.1 and for 1,000 units a day): each channel ``c`` of a
SKU's history gets its own scale ``s_c = 1 + mean daily value over the last
28 days``, and the network reads ``log1p(x / s_c)``: about ``x`` for a SKU
selling 0.1 a day (``s ≈ 1.1``), about ``log 2`` at a typical day of one
selling 1,000 (``s ≈ 1,001``), heavy days compressed by the log. The level
itself enters as ``log(s_c)``. Forecasts come out as multiples of the
units scale: ``q_h = s · h · r``, where ``r`` is a daily rate relative to
the recent mean, so a flat seller of any size is ``r ≈ 1`` and the loss
(:func:`pinball_loss`, on ``y / (s h)``) is scale-free.

Quantiles are non-crossing by construction: ``r10 = relu(a)``,
``r50 = r10 + softplus(b)``, ``r90 = r50 + softplus(c)``. p10 can be
exactly 0 (a softplus never is): most SKU-days sell nothing, and an
interval whose lower end is above 0 never covers them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from models.interface import HORIZONS, QUANTILES, STAGES, TEXT_DIM
from models.layout import ORDER_LINES, UNITS

CHANNELS = 5  # history channels a network reads by default (models.layout order): the first five, without order lines
SCALE_DAYS = 28  # days of the recent mean that sets a SKU's scale
WEEK = 7
RECENT_DAYS = 14  # days the network also sees one by one (weekday pattern, last sales)


class TrendcastNet(nn.Module):
    """History + age + weekday + text -> quantiles of units over 1/7/14 days and stage logits.

    Temporal encoder: a causal strided convolution, one output per week of
    history (kernel 7, stride 7), plus the last ``RECENT_DAYS`` days of
    units one by one (with ``recent_funnel`` also of clicks, cart adds and
    removes: they lead orders by days, so a turn shows there first; with
    6 ``channels`` also of order lines). Text: the 384-d embedding projected to ``text_dim``,
    a learned "unknown" vector for SKUs without a catalog record. About
    40k multiply-adds per SKU with the defaults.
    """

    def __init__(self, history_days: int = 56, hidden: int = 128, conv_channels: int = 16, text_dim: int = 16,
                 recent_funnel: bool = False, channels: int = CHANNELS):
        super().__init__()
        if history_days % WEEK or history_days < max(SCALE_DAYS, RECENT_DAYS):
            raise ValueError(f"history_days must be a multiple of 7 and at least {SCALE_DAYS}, got {history_days}")
        self.history_days = history_days
        # the first ``channels`` of a history are read: a network of 5 ignores the
        # order lines (channel 5) that later feature layouts append
        self.channels = channels
        self.recent = [0, 1, 2, UNITS] if recent_funnel else [UNITS]
        if channels > ORDER_LINES:
            # how many orders a SKU was on, day by day: one order of 500 units and 50 orders of
            # 10 are the same units but not the same outlook
            self.recent.append(ORDER_LINES)
        self.conv = nn.Conv1d(channels, conv_channels, kernel_size=WEEK, stride=WEEK)
        self.text_proj = nn.Linear(TEXT_DIM, text_dim)
        self.unknown_text = nn.Parameter(torch.zeros(text_dim))
        # weeks x conv, recent days, 5 levels, funnel flag, 4 sale stats, 7 weekdays, text
        n_in = (conv_channels * (history_days // WEEK) + RECENT_DAYS * len(self.recent) + channels + 1 + 4 + WEEK
                + text_dim)
        self.trunk = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.quantile_head = nn.Linear(hidden, len(HORIZONS) * len(QUANTILES))
        self.stage_head = nn.Linear(hidden, len(STAGES))
        self.register_buffer("horizons", torch.tensor(HORIZONS, dtype=torch.float32), persistent=False)

    def forward(self, history: torch.Tensor, age: torch.Tensor, weekday: torch.Tensor, text: torch.Tensor,
                has_text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(quantiles, stage_logits, scale)``.

        ``history`` ``(n, c, history_days)`` daily clicks, cart adds, cart
        removes, units, revenue, order lines (``c >= channels``; the first
        ``channels`` are read); ``age`` ``(n,)`` days since first sale (-1
        never); ``weekday`` ``(n,)`` int64 of the last day; ``text`` ``(n,
        384)``; ``has_text`` ``(n,)`` bool. Returns quantiles ``(n, 3, 3)``
        units over each horizon (p10 <= p50 <= p90), stage logits ``(n,
        4)`` and the units scale ``s`` ``(n,)``.
        """
        n = history.shape[0]
        x, scale, shared = self.prepare(history, age, weekday)
        weeks = F.relu(self.conv(x)).flatten(1)
        text_vec = torch.where(has_text[:, None], self.text_proj(text), self.unknown_text.expand(n, -1))
        h = self.trunk(torch.cat([weeks, shared, text_vec], dim=1))
        raw = self.quantile_head(h).view(n, len(HORIZONS), len(QUANTILES))
        return quantiles_from(raw, scale, self.horizons), self.stage_head(h), scale[:, UNITS]

    def prepare(self, history: torch.Tensor, age: torch.Tensor, weekday: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The parameter-free part of the input, the same for every network of one configuration.

        ``(x, scale, shared)``: the scaled history ``(n, channels, days)``
        the convolution reads, the per-channel scales ``(n, channels)`` and
        the inputs between the weekly features and the text, ``(n, k)``:
        the recent days, levels, funnel flag, sale stats and weekday.
        """
        history = history[:, : self.channels]
        scale = 1.0 + history[:, :, -SCALE_DAYS:].mean(dim=2)  # (n, channels)
        x = torch.log1p(history.clamp(min=0) / scale[:, :, None])
        units = history[:, UNITS]
        sold = (units > 0).float()
        funnel = (history[:, :UNITS].sum(dim=(1, 2)) > 0).float()
        # days since the last sale in the window (history_days when none)
        last = torch.where(sold.any(dim=1), self.history_days - 1 - _last_index(sold), torch.full_like(age, float(self.history_days)))
        stats = torch.stack([
            sold[:, -SCALE_DAYS:].mean(dim=1),
            torch.log1p(last) / 4.0,
            (age >= 0).float(),
            torch.log1p(age.clamp(min=0)) / 5.0,
        ], dim=1)
        shared = torch.cat([x[:, self.recent, -RECENT_DAYS:].flatten(1), torch.log(scale) / 4.0, funnel[:, None], stats,
                            F.one_hot(weekday.long(), WEEK).float()], dim=1)
        return x, scale, shared


def quantiles_from(raw: torch.Tensor, scale: torch.Tensor, horizons: torch.Tensor) -> torch.Tensor:
    """Non-crossing quantiles ``(..., 3, 3)`` in units from the head's raw outputs ``(..., 3 horizons, 3 levels)``.

    ``scale`` ``(n, channels)``: the units channel sets the level.
    """
    rate = torch.cumsum(torch.cat([F.relu(raw[..., :1]), F.softplus(raw[..., 1:])], dim=-1), dim=-1)
    return rate * (scale[:, UNITS, None, None] * horizons[None, :, None])


class TrendcastEnsemble(nn.Module):
    """``members`` :class:`TrendcastNet` of one configuration, trained from different seeds; outputs averaged.

    Quantiles are averaged level by level (p10 with p10, ...), which keeps
    them non-crossing; stage probabilities are averaged and returned as
    their log (logits of the averaged softmax). Averaging a few networks
    takes the seed's noise out of the median, which is most of WAPE.
    """

    def __init__(self, members: int = 3, **config):
        super().__init__()
        if members < 1:
            raise ValueError(f"an ensemble needs at least 1 member, got {members}")
        self.nets = nn.ModuleList(TrendcastNet(**config) for _ in range(members))
        self.history_days = self.nets[0].history_days

    def forward(self, history: torch.Tensor, age: torch.Tensor, weekday: torch.Tensor, text: torch.Tensor,
                has_text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As :meth:`TrendcastNet.forward`: ``(quantiles (n, 3, 3) units, stage logits (n, 4), units scale (n,))``.

        Without gradients (scoring) the members run together
        (:class:`_Stacked`): the input is prepared once and each layer is
        one batched matrix product over the members, about 1.3x faster on
        one CPU thread than member by member; the results agree to float
        rounding.
        """
        if torch.is_grad_enabled() or len(self.nets) == 1:
            outs = [net(history, age, weekday, text, has_text) for net in self.nets]
            quantiles = torch.stack([o[0] for o in outs])
            probs = torch.stack([torch.softmax(o[1], dim=1) for o in outs])
            scale = outs[0][2]
        else:
            quantiles, logits, scale = self._stacked()(history, age, weekday, text, has_text)
            probs = torch.softmax(logits, dim=2)
        return quantiles.mean(dim=0), torch.log(probs.mean(dim=0).clamp(min=1e-12)), scale

    def _stacked(self) -> "_Stacked":
        # Rebuilt when any parameter changed: in place (load_state_dict, an optimiser step) or moved (.to(device)).
        key = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if getattr(self, "_stack_key", None) != key:
            self._stack, self._stack_key = _Stacked(self.nets), key
        return self._stack


class _Stacked:
    """The members of an ensemble as stacked weights: one convolution, one text projection, batched layers.

    Built from the members' parameters (copies, not views: the members stay
    what training updates). The first layer's weights are split by input
    block so the block every member reads alike (``prepare``'s shared
    inputs) is multiplied once for all members.
    """

    def __init__(self, nets: nn.ModuleList) -> None:
        with torch.no_grad():
            first = nets[0]
            self.first, self.m = first, len(nets)
            self.conv_w = torch.cat([n.conv.weight for n in nets])  # (m*C, channels, 7)
            self.conv_b = torch.cat([n.conv.bias for n in nets])
            self.text_w = torch.cat([n.text_proj.weight for n in nets])  # (m*T, 384)
            self.text_b = torch.cat([n.text_proj.bias for n in nets])
            self.unknown = torch.stack([n.unknown_text for n in nets])[:, None, :]  # (m, 1, T)
            w1 = torch.stack([n.trunk[0].weight.T for n in nets])  # (m, inputs, hidden)
            self.n_weeks = first.conv.out_channels * (first.history_days // WEEK)
            t = first.text_proj.out_features
            self.w1_weeks, self.w1_text = w1[:, : self.n_weeks].contiguous(), w1[:, -t:].contiguous()
            shared = w1[:, self.n_weeks: -t]  # (m, k, hidden)
            self.w1_shared = shared.permute(1, 0, 2).reshape(shared.shape[1], -1).contiguous()  # (k, m*hidden)
            self.b1 = torch.stack([n.trunk[0].bias for n in nets])[:, None, :]
            self.w2 = torch.stack([n.trunk[2].weight.T for n in nets]).contiguous()
            self.b2 = torch.stack([n.trunk[2].bias for n in nets])[:, None, :]
            self.w_head = torch.stack([torch.cat([n.quantile_head.weight, n.stage_head.weight]).T for n in nets]).contiguous()
            self.b_head = torch.stack([torch.cat([n.quantile_head.bias, n.stage_head.bias]) for n in nets])[:, None, :]

    def __call__(self, history: torch.Tensor, age: torch.Tensor, weekday: torch.Tensor, text: torch.Tensor,
                 has_text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per member ``(quantiles (m, n, 3, 3), stage logits (m, n, 4))`` and the units scale ``(n,)``."""
        n, m = history.shape[0], self.m
        x, scale, shared = self.first.prepare(history, age, weekday)
        weeks = F.relu(F.conv1d(x, self.conv_w, self.conv_b, stride=WEEK))  # (n, m*C, weeks)
        weeks = weeks.view(n, m, self.n_weeks).transpose(0, 1)  # member m's (C, weeks), flattened as flatten(1)
        text_vec = F.linear(text, self.text_w, self.text_b).view(n, m, -1).transpose(0, 1)
        text_vec = torch.where(has_text[None, :, None], text_vec, self.unknown)
        h = (shared @ self.w1_shared).view(n, m, -1).transpose(0, 1) + self.b1
        h = torch.baddbmm(h, weeks, self.w1_weeks)
        h = torch.relu(torch.baddbmm(h, text_vec, self.w1_text))
        h = torch.relu(torch.baddbmm(self.b2, h, self.w2))
        out = torch.baddbmm(self.b_head, h, self.w_head)  # (m, n, 9 + 4)
        k = len(HORIZONS) * len(QUANTILES)
        raw = out[..., :k].reshape(m, n, len(HORIZONS), len(QUANTILES))
        return quantiles_from(raw, scale, self.first.horizons), out[..., k:], scale[:, UNITS]


def build_network(config: dict) -> nn.Module:
    """The network of a checkpoint's ``config``: an ensemble when it names ``members``, else one net."""
    return TrendcastEnsemble(**config) if "members" in config else TrendcastNet(**config)


def _last_index(mask: torch.Tensor) -> torch.Tensor:
    """Per row, the float index of the last True of ``(n, days)`` ``mask`` (0 when none)."""
    idx = torch.arange(mask.shape[1], device=mask.device, dtype=mask.dtype)
    return (mask * idx).amax(dim=1)


def pinball_loss(quantiles: torch.Tensor, target: torch.Tensor, scale: torch.Tensor,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean pinball loss of ``quantiles`` ``(n, 3, 3)`` against ``target`` ``(n, 3)`` units, in units of ``s · h``.

    NaN targets (past the data) count nothing; ``weight`` ``(n,)`` weights SKUs.
    """
    levels = torch.tensor(QUANTILES, dtype=quantiles.dtype, device=quantiles.device)
    horizons = torch.tensor(HORIZONS, dtype=quantiles.dtype, device=quantiles.device)
    norm = scale[:, None] * horizons[None, :]
    valid = torch.isfinite(target)
    y = torch.where(valid, target, torch.zeros_like(target)) / norm
    diff = y[:, :, None] - quantiles / norm[:, :, None]
    loss = torch.maximum(levels * diff, (levels - 1) * diff).sum(dim=2) * valid
    if weight is not None:
        loss = loss * weight[:, None]
    return loss.sum() / valid.sum().clamp(min=1)
