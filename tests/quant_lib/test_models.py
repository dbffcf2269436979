"""Deep models: shapes (seed 004 §10 steps 11-15), checkpoints, the causal mask, losses, Trainer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from quant_lib.models import (
    MODEL_NAMES,
    AttentionLSTM,
    BaseModel,
    CheckpointMismatchError,
    CombinedLoss,
    DecoderTransformer,
    DifferentiableSharpeRatio,
    DirectionalLoss,
    ITransformer,
    MomentumTransformer,
    TimeSeriesDataset,
    Trainer,
    build_model,
    make_loader,
)

torch.set_num_threads(1)
SHAPE = dict(n_features=50, seq_len=60, forecast_horizon=5)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shapes(name: str) -> None:
    model = build_model(name, **SHAPE).eval()
    out = model(torch.randn(3, 60, 50))
    if name == "momentum":
        assert out.shape == (3, 1)
        assert out.abs().max() <= 1.0
    else:
        assert out.shape == (3, 5)
    assert torch.isfinite(out).all()
    assert model.count_parameters() > 0


def test_wrong_input_shape_is_named() -> None:
    model = DecoderTransformer(**SHAPE)
    with pytest.raises(ValueError, match=r"\[batch, seq_len, 50\]"):
        model(torch.randn(2, 60, 49))
    with pytest.raises(ValueError, match="unknown model"):
        build_model("gru", **SHAPE)


def test_itransformer_tokens_are_variates() -> None:
    """Permuting the time steps changes the output; the embedding maps a whole series (T) per variate."""
    model = ITransformer(n_features=4, seq_len=12, forecast_horizon=2, dropout=0.0).eval()
    assert model.embed.in_features == 12
    assert torch.equal(model(torch.randn(2, 12, 4)), torch.zeros(2, 2))  # untrained = the naive forecast
    torch.nn.init.normal_(model.head.weight)
    x = torch.randn(2, 12, 4)
    assert not torch.allclose(model(x), model(x.flip(1)))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_load_identical_weights(name: str) -> None:
    model = build_model(name, n_features=6, seq_len=10, forecast_horizon=3 if name != "momentum" else 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    names = [f"f{i}" for i in range(6)]
    data = model.save(feature_names=names, epoch=4, extra={"target_scale": 0.01})
    loaded, ckpt = BaseModel.load(data, feature_names=names)
    assert type(loaded) is type(model) and ckpt["epoch"] == 4 and ckpt["extra"]["target_scale"] == 0.01
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.randn(2, 10, 6)
    assert torch.equal(model.eval()(x), loaded(x))
    saved = []
    model.save(saved.append)
    assert isinstance(saved[0], bytes)


def test_load_refuses_other_architecture_and_feature_set() -> None:
    data = AttentionLSTM(n_features=3, seq_len=5, forecast_horizon=2).save(feature_names=["a", "b", "c"])
    with pytest.raises(CheckpointMismatchError, match="'lstm' model, not a 'transformer'"):
        DecoderTransformer.load(data)
    with pytest.raises(CheckpointMismatchError, match=r"missing \['c'\], unexpected \['d'\]"):
        AttentionLSTM.load(data, feature_names=["a", "b", "d"])
    with pytest.raises(CheckpointMismatchError, match="different order"):
        AttentionLSTM.load(data, feature_names=["c", "b", "a"])
    with pytest.raises(CheckpointMismatchError, match="cannot be read"):
        BaseModel.load(b"not a checkpoint")


def test_causal_mask_no_hidden_state_sees_the_future() -> None:
    model = DecoderTransformer(n_features=4, seq_len=16, forecast_horizon=2, dropout=0.0).eval()
    x = torch.randn(1, 16, 4)
    t = 9
    perturbed = x.clone()
    perturbed[0, t] += 5.0
    with torch.no_grad():
        before, after = model.hidden_states(x), model.hidden_states(perturbed)
    for layer, (a, b) in enumerate(zip(before, after)):
        assert torch.allclose(a[:, :t], b[:, :t], atol=1e-6), f"layer {layer} leaks the future"
        assert not torch.allclose(a[:, t:], b[:, t:]), f"layer {layer} ignores step t"


def test_momentum_positions_are_causal() -> None:
    """Cutting the window after step t gives the same position as before any later bar arrived."""
    model = MomentumTransformer(n_features=3, seq_len=8, dropout=0.0).eval()
    x = torch.randn(1, 8, 3)
    changed = x.clone()
    changed[0, -1] += 3.0
    assert not torch.allclose(model(x), model(changed))
    assert torch.allclose(model(x[:, :6]), model(changed[:, :6]))


def test_sharpe_loss_gradient_matches_finite_differences() -> None:
    torch.manual_seed(1)
    positions = torch.randn(32, 1, dtype=torch.float64, requires_grad=True)
    returns = torch.randn(32, 1, dtype=torch.float64) * 0.01 + 0.001
    loss_fn = DifferentiableSharpeRatio()
    loss_fn(positions, returns).backward()
    numeric = torch.zeros_like(positions)
    h = 1e-6
    with torch.no_grad():
        for i in range(positions.shape[0]):
            up, down = positions.clone(), positions.clone()
            up[i, 0] += h
            down[i, 0] -= h
            numeric[i, 0] = (loss_fn(up, returns) - loss_fn(down, returns)) / (2 * h)
    assert torch.allclose(positions.grad, numeric, rtol=1e-5, atol=1e-7)
    assert positions.grad.abs().sum() > 0


def test_sharpe_loss_value_and_directional_loss() -> None:
    r = torch.tensor([[0.01], [-0.02], [0.03], [-0.01]])
    perfect = torch.sign(r)
    s = DifferentiableSharpeRatio(annualization=1.0)(perfect, r)
    assert math.isclose(float(s), -float(r.abs().mean() / r.abs().std(unbiased=False)), rel_tol=1e-5)
    assert float(DirectionalLoss()(r * 2, r)) == 0.0
    assert float(DirectionalLoss()(-r, r)) == pytest.approx(1.0)
    combined = CombinedLoss(sharpe_weight=0.5)(torch.zeros(4, 1), r)
    assert torch.isfinite(combined)


def _ar_data(n: int = 320, phi: float = 0.6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = np.zeros(n)
    for t in range(1, n):
        r[t] = phi * r[t - 1] + rng.normal(0, 0.01)
    features = (r / 0.01).reshape(-1, 1).astype(np.float32)
    targets = np.r_[r[1:], np.nan] / 0.01
    return features, targets


def _trainer(seed: int = 0, **kwargs) -> Trainer:
    torch.manual_seed(seed)
    model = AttentionLSTM(n_features=1, seq_len=8, forecast_horizon=1, hidden_size=8, n_layers=1, n_heads=2, dropout=0.0)
    return Trainer(model, lr=5e-3, seed=seed, **kwargs)


def test_trainer_learns_ar_structure_and_is_deterministic() -> None:
    features, targets = _ar_data()
    data = TimeSeriesDataset(features, targets, seq_len=8, forecast_horizon=1)
    train = make_loader(data, 64, shuffle=True, seed=0, indices=range(240))
    val = make_loader(data, 128, indices=range(245, len(data)))
    results = [_trainer().fit(train, val, epochs=4) for _ in range(2)]
    assert results[0]["val_loss"] == results[1]["val_loss"]
    naive = float(data.targets()[245:].pow(2).mean())
    assert results[0]["best_val_loss"] < 0.85 * naive


def test_nan_val_loss_is_never_an_improvement_and_nan_steps_are_skipped() -> None:
    features, targets = _ar_data(120)
    data = TimeSeriesDataset(features, targets, seq_len=8, forecast_horizon=1)
    loader = make_loader(data, 32, indices=range(100))
    trainer = _trainer(patience=2)
    trainer.loss_fn = lambda p, y: torch.full((), float("nan")) + 0 * p.sum()
    result = trainer.fit(loader, loader, epochs=5)
    assert result["best_val_loss"] is None and result["best_epoch"] is None
    assert result["stopped_early"] and result["epochs_run"] == 2
    assert result["nan_steps"] == 2 * 4
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_oom_falls_back_to_cpu_with_new_optimizer() -> None:
    features, targets = _ar_data(120)
    data = TimeSeriesDataset(features, targets, seq_len=8, forecast_horizon=1)
    loader = make_loader(data, 32)
    trainer = _trainer()
    step, calls = trainer._train_step, []

    def flaky(x, y):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return step(x, y)

    trainer._train_step = flaky
    trainer.device = torch.device("cuda")  # pretend: the fallback must move everything to CPU
    old_optimizer = trainer.optimizer
    result = trainer.fit(loader, epochs=1)
    assert result["oom_fallbacks"] == 1 and result["device"] == "cpu"
    assert trainer.optimizer is not old_optimizer
    assert trainer.scheduler.optimizer is trainer.optimizer


def test_continue_training_never_worse_and_state_round_trip() -> None:
    features, targets = _ar_data(300)
    data = TimeSeriesDataset(features, targets, seq_len=8, forecast_horizon=1)
    train = make_loader(data, 32, shuffle=True, indices=range(200))
    val = make_loader(data, 64, indices=range(205, len(data)))
    trainer = _trainer()
    trainer.fit(train, val, epochs=2)
    state = trainer.get_state()
    result = trainer.continue_training(train, epochs=2, lr_factor=0.1, val_loader=val)
    assert result["best_val_loss"] is None or result["best_val_loss"] <= result["val_loss_before"]
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    other = _trainer(seed=3)
    other.load_state(state)
    assert other.epoch == 2
    for a, b in zip(state["model_state"].values(), other.model.state_dict().values()):
        assert torch.equal(a, b)
    loaded, ckpt = BaseModel.load(trainer.save_checkpoint(feature_names=["r"]), feature_names=["r"])
    assert ckpt["optimizer_state"] is not None and ckpt["epoch"] == trainer.epoch


def test_dataset_windows_and_groups() -> None:
    features = np.arange(20, dtype=np.float32).reshape(10, 2)
    targets = np.arange(10, dtype=np.float32) * 0.1
    data = TimeSeriesDataset(features, targets, seq_len=3, forecast_horizon=2)
    x, y = data[0]
    assert x.shape == (3, 2) and torch.equal(x[:, 0], torch.tensor([0.0, 2.0, 4.0]))
    assert torch.allclose(y, torch.tensor([0.2, 0.3]))
    assert len(data) == 10 - 3 - 2 + 2
    grouped = TimeSeriesDataset(features, targets, seq_len=3, forecast_horizon=1, groups=np.repeat([0, 1], 5))
    assert grouped.ends.tolist() == [2, 3, 4, 7, 8, 9]
    with pytest.raises(ValueError, match="too few rows"):
        TimeSeriesDataset(features[:3], targets[:3], seq_len=5)
    bad = features.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="row 4, column 1"):
        TimeSeriesDataset(bad, targets, seq_len=3)
