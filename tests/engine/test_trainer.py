"""The shared training loop: learning, exact resume, non-finite losses, best checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from rgbt.config import OptimConfig
from rgbt.engine.checkpoint import load_checkpoint
from rgbt.engine.optim import lr_factor
from rgbt.engine.run import seed_everything
from rgbt.engine.trainer import EpochSampler, Trainer


class Points(Dataset):
    """y = 3x - 1 with noise-free targets; each item knows its frame id."""

    def __init__(self, n: int = 24) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 1, generator=generator)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], {"frame_id": f"f{index:03d}", "y": 3 * self.x[index] - 1}


def collate(items):
    return torch.stack([x for x, _ in items]), [t for _, t in items]


def mse(model, batch, device):
    x, targets = batch
    y = torch.stack([t["y"] for t in targets]).to(device)
    return {"loss": torch.nn.functional.mse_loss(model(x.to(device)), y)}


def make_trainer(run_dir, loss=mse, **overrides) -> Trainer:
    seed_everything(0)
    options = {"epochs": 4, "batch_size": 5, "lr": 0.05, "warmup_steps": 2, "log_every": 1, "eval_every": 1}
    options.update(overrides)
    optim = OptimConfig(**options)
    return Trainer(torch.nn.Linear(1, 1), Points(), collate, loss, optim, run_dir, optim, torch.device("cpu"))


def test_loss_goes_down_and_logs_are_written(tmp_path) -> None:
    trainer = make_trainer(tmp_path)
    trainer.fit()
    with (tmp_path / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == trainer.total_steps == 4 * 5
    assert float(rows[-1]["loss"]) < 0.5 * float(rows[0]["loss"])
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "loss.png").is_file()


def test_interrupted_run_resumes_to_identical_weights(tmp_path) -> None:
    reference = make_trainer(tmp_path / "ref")
    reference.fit()
    calls = {"n": 0}

    def interrupt_at_seven(model, batch, device):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return mse(model, batch, device)

    first = make_trainer(tmp_path / "run", loss=interrupt_at_seven)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 7  # mid-epoch, nothing lost
    resumed = make_trainer(tmp_path / "run")
    resumed.fit(resume=True)
    for a, b in zip(reference.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_non_finite_loss_names_the_batch(tmp_path) -> None:
    def nan_loss(model, batch, device):
        return {"loss": mse(model, batch, device)["loss"] * float("nan")}

    with pytest.raises(FloatingPointError, match=r"epoch 0, step 0 .*f\d{3}"):
        make_trainer(tmp_path, loss=nan_loss).fit()


def test_best_checkpoint_follows_the_metric(tmp_path) -> None:
    trainer = make_trainer(tmp_path)
    trainer.evaluate = lambda model: {"error": abs(float(model.weight.detach()) - 3.0)}
    trainer.metric = "error"
    trainer.fit()
    errors = [row["error"] for row in trainer.state.history]
    assert trainer.state.best == min(errors)
    assert load_checkpoint(tmp_path / "best.pt")["best"] == min(errors)


def test_sampler_order_depends_on_seed_and_epoch_only() -> None:
    sampler = EpochSampler(10, seed=3)
    sampler.set_epoch(2)
    order = list(sampler)
    sampler.set_epoch(2, start=4)
    assert list(sampler) == order[4:]
    sampler.set_epoch(3)
    assert list(sampler) != order and sorted(order) == list(range(10))


def test_schedule_warms_up_then_decays() -> None:
    assert lr_factor(0, 100, 10) == pytest.approx(0.01)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(99, 100, 10) < 0.05
    assert lr_factor(50, 100, 0, "constant") == 1.0
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor(0, 10, 0, "linear")


def test_a_failing_evaluation_loses_no_training_and_runs_first_on_resume(tmp_path: Path) -> None:
    calls = {"n": 0}

    def broken_then_fine(model):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("frame f007: corrupt validation image")
        return {"mse": 1.0}

    trainer = make_trainer(tmp_path, epochs=2)
    trainer.evaluate, trainer.metric = broken_then_fine, "mse"
    with pytest.raises(ValueError, match="corrupt validation image"):
        trainer.fit()
    saved = load_checkpoint(tmp_path / "last.pt")
    assert saved["step"] == trainer.steps_per_epoch and saved["pending_eval"] is True
    resumed = make_trainer(tmp_path, epochs=2)
    resumed.evaluate, resumed.metric = broken_then_fine, "mse"
    state = resumed.fit(resume=True)
    assert [row["step"] for row in state.history] == [trainer.steps_per_epoch, 2 * trainer.steps_per_epoch]


def test_periodic_saves(tmp_path: Path) -> None:
    seen = []
    trainer = make_trainer(tmp_path, epochs=1, save_every=2, eval_every=0)
    original = trainer.save

    def recording(name: str = "last.pt"):  # type: ignore[no-untyped-def]
        seen.append((name, trainer.state.step))
        return original(name)

    trainer.save = recording  # type: ignore[method-assign]
    trainer.fit()
    assert [step for name, step in seen if name == "last.pt"] == [2, 4, 5]
