import numpy as np
import torch

from models.interface import HORIZONS, QUANTILES, STAGES
from models.network import TrendcastEnsemble, TrendcastNet, build_network, pinball_loss


def _inputs(n=64, days=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    # Heavy-tailed levels: SKUs selling from ~0.01 to ~1,000 a day.
    level = torch.exp(torch.rand(n, 1, 1, generator=g) * 11 - 4.6)
    history = torch.poisson(level.expand(n, 5, days).contiguous(), generator=g)
    history[: n // 4, :3] = 0  # no funnel for some SKUs
    age = torch.randint(-1, 400, (n,), generator=g).float()
    weekday = torch.randint(0, 7, (n,), generator=g)
    text = torch.nn.functional.normalize(torch.randn(n, 384, generator=g), dim=1)
    has_text = torch.rand(n, generator=g) > 0.3
    return history, age, weekday, text, has_text


def test_shapes_and_monotone_non_negative_quantiles():
    torch.manual_seed(0)
    net = TrendcastNet()
    q, logits, scale = net(*_inputs())
    assert q.shape == (64, len(HORIZONS), len(QUANTILES)) and logits.shape == (64, len(STAGES))
    assert scale.shape == (64,) and torch.all(scale >= 1)
    assert torch.all(q >= 0) and torch.all(torch.isfinite(q))
    assert torch.all(q[..., 1] >= q[..., 0]) and torch.all(q[..., 2] >= q[..., 1])


def test_outputs_scale_with_the_sku_level():
    # The same history at 1,000x the units gives forecasts ~1,000x as large:
    # the scale, not the raw counts, carries the level.
    torch.manual_seed(0)
    net = TrendcastNet().eval()
    history, age, weekday, text, has_text = _inputs(8)
    history = torch.ones_like(history) * 0.2
    big = history * 1000
    q_small, _, _ = net(history, age, weekday, text, has_text)
    q_big, _, _ = net(big, age, weekday, text, has_text)
    ratio = (q_big[..., 1:] / q_small[..., 1:]).detach().numpy()  # p10 may be 0
    assert np.all(ratio > 100)


def test_unknown_text_rows_ignore_the_text_input():
    torch.manual_seed(0)
    net = TrendcastNet().eval()
    history, age, weekday, text, _ = _inputs(4)
    none = torch.zeros(4, dtype=torch.bool)
    a, _, _ = net(history, age, weekday, text, none)
    b, _, _ = net(history, age, weekday, torch.zeros_like(text), none)
    torch.testing.assert_close(a, b)


def test_pinball_loss_is_lowest_at_the_true_quantiles_and_skips_nan_targets():
    y = torch.tensor([[1.0, 7.0, float("nan")]])
    scale = torch.ones(1)
    exact = torch.tensor([[[1.0, 1.0, 1.0], [7.0, 7.0, 7.0], [0.0, 0.0, 0.0]]])
    assert float(pinball_loss(exact, y, scale)) == 0.0
    assert float(pinball_loss(exact + 1.0, y, scale)) > 0.0


def test_a_network_of_five_channels_ignores_the_order_lines_channel():
    # Histories carry 6 channels (order lines last); a network trained on 5 reads
    # the first 5 only, so an older checkpoint scores 6-channel features unchanged.
    torch.manual_seed(0)
    net = TrendcastNet().eval()
    history, age, weekday, text, has_text = _inputs(8)
    lines = torch.cat([history, torch.zeros_like(history[:, :1])], dim=1)
    other = torch.cat([history, history[:, 3:4] * 7 + 1], dim=1)
    a, la, _ = net(history, age, weekday, text, has_text)
    b, lb, _ = net(lines, age, weekday, text, has_text)
    c, lc, _ = net(other, age, weekday, text, has_text)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    torch.testing.assert_close(la, lc, rtol=0, atol=0)


def test_a_network_of_six_channels_reads_the_order_lines():
    torch.manual_seed(0)
    net = TrendcastNet(channels=6).eval()
    history, age, weekday, text, has_text = _inputs(8)
    one = torch.cat([history, history[:, 3:4].clamp(max=1)], dim=1)  # one order line per selling day
    many = torch.cat([history, history[:, 3:4]], dim=1)  # one per unit
    a, _, _ = net(one, age, weekday, text, has_text)
    b, _, _ = net(many, age, weekday, text, has_text)
    assert not torch.allclose(a, b)


def test_an_ensemble_averages_its_members_quantiles_level_by_level():
    torch.manual_seed(0)
    ens = TrendcastEnsemble(members=3, channels=6).eval()
    history, age, weekday, text, has_text = _inputs(16)
    history = torch.cat([history, history[:, 3:4].clamp(max=2)], dim=1)
    q, logits, scale = ens(history, age, weekday, text, has_text)
    outs = [net(history, age, weekday, text, has_text) for net in ens.nets]
    torch.testing.assert_close(q, sum(o[0] for o in outs) / 3)
    torch.testing.assert_close(logits.exp().sum(dim=1), torch.ones(16))
    assert torch.all(q[..., 1] >= q[..., 0]) and torch.all(q[..., 2] >= q[..., 1])
    torch.testing.assert_close(scale, outs[0][2])
    assert isinstance(build_network({"members": 2, "hidden": 16}), TrendcastEnsemble)
    assert isinstance(build_network({"hidden": 16}), TrendcastNet)


def test_scoring_runs_the_members_stacked_with_the_same_results_and_follows_new_weights():
    """Without gradients the members run as one batched network: same quantiles and stages as one by one."""
    torch.manual_seed(0)
    ens = TrendcastEnsemble(members=3, channels=6, recent_funnel=True).eval()
    history, age, weekday, text, has_text = _inputs(256)
    history = torch.cat([history, history[:, 3:4].clamp(max=2)], dim=1)
    args = (history, age, weekday, text, has_text)

    def one_by_one():
        with torch.enable_grad():
            return [t.detach() for t in ens(*args)]

    with torch.inference_mode():
        stacked = ens(*args)
    slow = one_by_one()
    torch.testing.assert_close(stacked[0], slow[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(stacked[1], slow[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(stacked[2], slow[2])
    other = TrendcastEnsemble(members=3, channels=6, recent_funnel=True)
    ens.load_state_dict(other.state_dict())  # new weights in place: the stack must not keep the old ones
    with torch.inference_mode():
        again = ens(*args)
    assert not torch.allclose(again[0], stacked[0])
    torch.testing.assert_close(again[0], one_by_one()[0], rtol=1e-4, atol=1e-4)
