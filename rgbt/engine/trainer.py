"""The one training loop every rgbt model uses (translator and detector).

What it takes care of, so model code does not repeat it:

* a deterministic shuffled order per ``(seed, epoch)``, sharded across ``torchrun`` ranks;
* mixed precision on CUDA (bf16 where supported, else fp16 with a gradient scaler), gradient
  clipping, warm-up + decay learning-rate schedule;
* ``RUN/last.pt`` written atomically every ``save_every`` steps, at every epoch end (before the
  epoch's evaluation, so a failing evaluation loses nothing) and on interruption (Ctrl-C, or
  SIGTERM under :func:`rgbt.interrupt.terminate_as_interrupt`), holding model, optimiser,
  scheduler, scaler, RNG states, position and config, so ``resume=True`` continues exactly where
  the run stopped (mid-epoch included) and ends bit-identical to an uninterrupted run;
  ``RUN/best.pt`` when a validation metric improves;
* exact augmentation on resume: a dataset with a ``set_epoch(epoch)`` method (like
  :class:`rgbt.data.dataset.PairDataset`) is told the epoch before each pass and draws every
  item's randomness from ``(seed, epoch, index)``, so neither worker count nor an interruption
  changes what a sample looks like; the DataLoader has its own seeded generator and never draws
  from the global RNG that model code uses;
* the resolved config written to ``RUN/config.yaml`` (atomically) once the run really starts; on
  resume the checkpoint's config must equal the given one (apart from :data:`RESUME_FREE_KEYS`);
  ``log.csv`` / ``eval.csv`` rows past the resumed step are dropped;
* a CSV log of every ``log_every`` steps (``RUN/log.csv``), evaluations (``RUN/eval.csv``), a loss
  plot (``RUN/loss.png``) and a tqdm progress bar;
* a non-finite loss stops training with the epoch, step and frames of the offending batch named;
* optionally an ``adversary`` (a GAN's discriminator) with its own optimiser and schedule (same
  settings): each step first updates it on ``adversary_loss``, then updates the model on
  ``compute_loss``; its weights and optimiser state travel in the checkpoint under ``adversary*``
  keys, its components are logged beside the model's (its total as ``adversary_loss``).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from rgbt.atomic import atomic_write, atomic_write_text
from rgbt.config import OptimConfig, config_to_dict, save_config
from rgbt.engine import distributed
from rgbt.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from rgbt.engine.loader import ReportingDataLoader
from rgbt.engine.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)

#: ``compute_loss(model, batch, device) -> {"loss": total, other named components...}``
LossFn = Callable[[torch.nn.Module, Any, torch.device], dict[str, torch.Tensor]]
#: ``adversary_loss(model, adversary, batch, device) -> {"loss": total, other named components...}``
AdversaryLossFn = Callable[[torch.nn.Module, torch.nn.Module, Any, torch.device], dict[str, torch.Tensor]]
#: ``evaluate(model) -> {metric name: value}``, run on the main process only.
EvalFn = Callable[[torch.nn.Module], dict[str, float]]

#: Config keys a resumed run may change: where and how fast it runs, and its length (to train a
#: finished run for longer; the learning-rate schedule then follows the new length), never what a
#: step computes.
RESUME_FREE_KEYS = frozenset({"train.device", "data.workers", "train.save_every", "train.log_every",
                              "train.epochs", "train.max_steps"})


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def config_differences(saved: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """``key: saved -> given`` for every dotted key whose value differs (keys in either dict)."""
    a, b = _flatten(saved), _flatten(given)
    missing = object()
    rows = []
    for key in sorted(set(a) | set(b)):
        if key in RESUME_FREE_KEYS:
            continue
        old, new = a.get(key, missing), b.get(key, missing)
        if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
            old, new = list(old), list(new)
        if old != new:
            shown = ["<absent>" if value is missing else repr(value) for value in (old, new)]
            rows.append(f"{key}: {shown[0]} -> {shown[1]}")
    return rows


class EpochSampler(Sampler[int]):
    """Dataset indices in a shuffled order fixed by ``(seed, epoch)``, this rank's shard, from an offset.

    Resuming mid-epoch replays the same order and skips the samples already seen, which is what
    makes a resumed run identical to an uninterrupted one.
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True) -> None:
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's order and skip its first ``start`` samples of this rank."""
        self.epoch = epoch
        self.start = start

    def _order(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = list(range(self.length))
        world = distributed.world_size()
        if world > 1 and order:
            # Pad so every rank takes the same number of steps (DDP needs matching collectives).
            order += order[: (-len(order)) % world]
        return distributed.shard(order)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order()[self.start :])

    def __len__(self) -> int:
        return max(0, len(self._order()) - self.start)


@dataclass
class TrainState:
    """Where a run is: completed epochs, global step and position inside the current epoch."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0
    best: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    #: the epoch end was saved but its evaluation has not run yet (it runs first on resume)
    pending_eval: bool = False


def _row_step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0


def _check_loop_settings(optim: OptimConfig, workers: int) -> None:
    """Refuse loop settings that would train nothing or make no sense (they used to pass silently)."""
    checks = [
        ("train.epochs", optim.epochs, optim.epochs >= 1, ">= 1"),
        ("train.max_steps", optim.max_steps, optim.max_steps >= 0, ">= 0 (0: no limit)"),
        ("train.batch_size", optim.batch_size, optim.batch_size >= 1, ">= 1"),
        ("train.save_every", optim.save_every, optim.save_every >= 0, ">= 0 (0: epoch ends only)"),
        ("train.log_every", optim.log_every, optim.log_every >= 1, ">= 1"),
        ("train.eval_every", optim.eval_every, optim.eval_every >= 0, ">= 0 (0: off)"),
        ("train.warmup_steps", optim.warmup_steps, optim.warmup_steps >= 0, ">= 0"),
        ("train.lr", optim.lr, math.isfinite(optim.lr) and optim.lr > 0, "a finite number > 0"),
        ("train.grad_clip", optim.grad_clip, math.isfinite(optim.grad_clip) and optim.grad_clip >= 0, ">= 0"),
        ("data.workers", workers, workers >= 0, ">= 0"),
    ]
    for key, value, ok, expected in checks:
        if not ok:
            raise ValueError(f"{key} must be {expected}, got {value!r}")


def _autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    if not amp:
        return None
    if device.type != "cuda":
        log.warning("amp requested on %s: mixed precision is only used on CUDA, training in float32", device)
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _describe(batch: Any) -> str:
    """Frame ids of a batch when its targets carry them (``target['frame_id']``)."""
    targets = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
    if isinstance(targets, Sequence) and targets and isinstance(targets[0], dict) and "frame_id" in targets[0]:
        return ", ".join(str(t["frame_id"]) for t in targets)
    return "<frames unknown>"


def _plot_losses(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    keys = [k for k in rows[0] if k not in ("step", "epoch", "lr", "seconds")]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [int(r["step"]) for r in rows]
    for key in keys:
        ax.plot(steps, [float(r[key]) for r in rows], label=key, linewidth=1.2 if key == "loss" else 0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(png_path, lambda handle: fig.savefig(handle, format="png", dpi=100))
    plt.close(fig)


class Trainer:
    """Train ``model`` on ``dataset`` with ``compute_loss``; see the module docstring.

    Args:
        model: the module to train (moved to ``device``; wrapped in DDP under ``torchrun``).
        dataset: a map-style dataset; ``collate_fn`` builds batches from its items.
        compute_loss: returns a dict with the total under ``"loss"`` plus named components.
        optim: optimiser / schedule / loop settings.
        run_dir: where checkpoints and logs go.
        config: the resolved run config, stored in every checkpoint.
        device: where to train.
        evaluate: optional validation callback; ``metric`` names the value that selects
            ``best.pt`` (``lower_is_better`` tells the direction).
        workers: DataLoader worker processes (0 loads in the training process).
        adversary, adversary_loss: an optional second module trained before every model step on
            ``adversary_loss`` with its own optimiser (a GAN's discriminator); both or neither.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        dataset: Dataset,
        collate_fn: Callable[[list[Any]], Any],
        compute_loss: LossFn,
        optim: OptimConfig,
        run_dir: str | Path,
        config: Any,
        device: torch.device,
        evaluate: EvalFn | None = None,
        metric: str | None = None,
        lower_is_better: bool = True,
        workers: int = 0,
        adversary: torch.nn.Module | None = None,
        adversary_loss: AdversaryLossFn | None = None,
    ) -> None:
        if (adversary is None) != (adversary_loss is None):
            raise ValueError("adversary and adversary_loss go together: give both or neither")
        self.optim = optim
        self.run_dir = Path(run_dir)
        self.config = config
        self.device = device
        self.compute_loss = compute_loss
        self.evaluate = evaluate
        self.metric = metric
        self.lower_is_better = lower_is_better
        self.distributed = distributed.init_distributed(device)
        self.model = model.to(device)
        self.train_model: torch.nn.Module = self.model
        if self.distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if len(dataset) == 0:
            raise ValueError("the training set is empty: check the dataset root, image set and period filter")
        _check_loop_settings(optim, workers)
        self.dataset = dataset
        self.sampler = EpochSampler(len(dataset), seed=optim.seed)
        # Its own generator: creating a DataLoader iterator draws a worker base seed, which must not come from
        # the global torch RNG (a resumed run creates its iterator at another point of that stream).
        self.loader_generator = torch.Generator()
        self.loader = ReportingDataLoader(
            dataset,
            batch_size=optim.batch_size,
            sampler=self.sampler,
            collate_fn=collate_fn,
            num_workers=workers,
            generator=self.loader_generator,
        )
        self.steps_per_epoch = math.ceil(len(self.sampler) / optim.batch_size)
        total = optim.epochs * self.steps_per_epoch
        self.total_steps = min(total, optim.max_steps) if optim.max_steps > 0 else total
        self.optimizer = build_optimizer(
            self.model.parameters(), optim.optimizer, optim.lr, optim.weight_decay, optim.momentum
        )
        self.scheduler = build_scheduler(self.optimizer, self.total_steps, optim.warmup_steps, optim.schedule)
        self.adversary = adversary.to(device) if adversary is not None else None
        self.adversary_loss = adversary_loss
        self.train_adversary = self.adversary
        if self.adversary is not None:
            if self.distributed:
                ids = [device.index] if device.type == "cuda" else None
                self.train_adversary = torch.nn.parallel.DistributedDataParallel(self.adversary, device_ids=ids)
            self.adversary_optimizer = build_optimizer(
                self.adversary.parameters(), optim.optimizer, optim.lr, optim.weight_decay, optim.momentum
            )
            self.adversary_scheduler = build_scheduler(
                self.adversary_optimizer, self.total_steps, optim.warmup_steps, optim.schedule
            )
        self.autocast_dtype = _autocast_dtype(device, optim.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self.state = TrainState()

    # ---------------------------------------------------------------- checkpoints
    def _checkpoint_state(self) -> dict[str, Any]:
        adversary = {}
        if self.adversary is not None:
            adversary = {
                "adversary": self.adversary.state_dict(),
                "adversary_optimizer": self.adversary_optimizer.state_dict(),
                "adversary_scheduler": self.adversary_scheduler.state_dict(),
            }
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.state.epoch,
            "step": self.state.step,
            "batch_in_epoch": self.state.batch_in_epoch,
            "best": self.state.best,
            "history": self.state.history,
            "pending_eval": self.state.pending_eval,
            "config": config_to_dict(self.config),
            "rng": rng_state(),
            **adversary,
        }

    def save(self, name: str = "last.pt") -> Path | None:
        """Write a checkpoint (main process only)."""
        if not distributed.is_main_process():
            return None
        return save_checkpoint(self.run_dir / name, self._checkpoint_state())

    def resume(self, path: str | Path | None = None) -> bool:
        """Restore everything from ``path`` (default ``RUN/last.pt``); False when there is nothing to resume."""
        path = Path(path) if path else self.run_dir / "last.pt"
        if not path.is_file():
            return False
        state = load_checkpoint(path, map_location=self.device)
        if "model" not in state or "step" not in state:
            raise ValueError(f"{path}: not a training checkpoint of rgbt (no model/step state to resume from)")
        differences = config_differences(state.get("config") or {}, config_to_dict(self.config))
        if differences:
            shown = "; ".join(differences[:8]) + (f"; ... ({len(differences)} in all)" if len(differences) > 8 else "")
            raise ValueError(
                f"{path}: cannot resume with other settings than the run was started with ({shown}); resume without "
                "--config/--set to continue it, or train into a new --out"
            )
        saved_config = _flatten(state.get("config") or {})
        length = {k: v for k, v in saved_config.items() if k in ("train.epochs", "train.max_steps")}
        now = {"train.epochs": self.optim.epochs, "train.max_steps": self.optim.max_steps}
        if any(length.get(k, v) != v for k, v in now.items()):
            log.warning("resuming %s with another length (%s -> %s): the learning-rate schedule follows the new length",
                        path, length, now)
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(f"{path}: the checkpoint's model does not fit the configured model ({err})") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.adversary is not None:
            if "adversary" not in state:
                raise ValueError(f"{path}: no adversary state to resume this adversarial run from")
            self.adversary.load_state_dict(state["adversary"])
            self.adversary_optimizer.load_state_dict(state["adversary_optimizer"])
            self.adversary_scheduler.load_state_dict(state["adversary_scheduler"])
        self.state = TrainState(
            epoch=state["epoch"],
            step=state["step"],
            batch_in_epoch=state["batch_in_epoch"],
            best=state["best"],
            history=list(state.get("history", [])),
            pending_eval=bool(state.get("pending_eval", False)),
        )
        set_rng_state(state["rng"])
        self._truncate_logs()
        log.info("resumed from %s at epoch %d, step %d", path, self.state.epoch, self.state.step)
        return True

    # ---------------------------------------------------------------- logging
    def _truncate_logs(self) -> None:
        """Drop ``log.csv`` / ``eval.csv`` rows written after the resumed checkpoint (an interrupted run's)."""
        if not distributed.is_main_process():
            return
        for name in ("log.csv", "eval.csv"):
            path = self.run_dir / name
            if not path.is_file():
                continue
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                fields = reader.fieldnames or []
                rows = list(reader)
            keep = [row for row in rows if _row_step(row) <= self.state.step]
            if name == "eval.csv" and self.state.pending_eval:
                keep = [row for row in keep if _row_step(row) < self.state.step]
            if len(keep) == len(rows):
                continue
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=fields)
            writer.writeheader()
            writer.writerows(keep)
            atomic_write_text(path, buffer.getvalue())
            log.info("%s: dropped %d row(s) written after step %d by the interrupted run", path, len(rows) - len(keep),
                     self.state.step)

    def _append_csv(self, name: str, row: dict[str, float]) -> None:
        if not distributed.is_main_process():
            return
        path = self.run_dir / name
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    # ---------------------------------------------------------------- loop
    def _check_finite(self, losses: dict[str, torch.Tensor], batch: Any, what: str = "loss") -> None:
        if not torch.isfinite(losses["loss"]):
            values = {k: float(v.detach()) for k, v in losses.items()}
            raise FloatingPointError(
                f"non-finite {what} at epoch {self.state.epoch}, step {self.state.step} "
                f"(batch {self.state.batch_in_epoch}: {_describe(batch)}): {values}"
            )

    def _adversary_step(self, batch: Any) -> dict[str, float]:
        """One update of the adversary; the scaler's ``update`` is left to the model's step."""
        adversary, adversary_loss = self.train_adversary, self.adversary_loss
        if adversary is None or adversary_loss is None:
            return {}
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            losses = adversary_loss(self.train_model, adversary, batch, self.device)
        self._check_finite(losses, batch, "adversary loss")
        self.adversary_optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["loss"]).backward()
        if self.optim.grad_clip > 0:
            self.scaler.unscale_(self.adversary_optimizer)
            torch.nn.utils.clip_grad_norm_(adversary.parameters(), self.optim.grad_clip)
        self.scaler.step(self.adversary_optimizer)
        self.adversary_scheduler.step()
        return {("adversary_loss" if k == "loss" else k): float(v.detach()) for k, v in losses.items()}

    def _train_step(self, batch: Any) -> dict[str, float]:
        adversary = self._adversary_step(batch)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            losses = self.compute_loss(self.train_model, batch, self.device)
        total = losses["loss"]
        self._check_finite(losses, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {**{k: float(v.detach()) for k, v in losses.items()}, **adversary}

    def _run_evaluation(self) -> None:
        self.state.pending_eval = False
        if self.evaluate is None or not distributed.is_main_process():
            return
        self.model.eval()
        metrics = self.evaluate(self.model)
        self.model.train()
        row = {"epoch": self.state.epoch, "step": self.state.step, **metrics}
        self.state.history.append(row)
        self._append_csv("eval.csv", row)
        log.info("evaluation at epoch %d: %s", self.state.epoch, {k: round(v, 4) for k, v in metrics.items()})
        if self.metric is not None and self.metric in metrics:
            value = metrics[self.metric]
            better = self.state.best is None or (
                value < self.state.best if self.lower_is_better else value > self.state.best
            )
            if better:
                self.state.best = value
                self.save("best.pt")

    def _set_epoch(self) -> None:
        """Point the sampler, the loader's generator and the dataset's item seeds at the current epoch."""
        self.sampler.set_epoch(self.state.epoch, self.state.batch_in_epoch * self.optim.batch_size)
        self.loader_generator.manual_seed(self.optim.seed * 100_003 + self.state.epoch)
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.state.epoch)

    def fit(self, resume: bool = False) -> TrainState:
        """Train until ``optim.epochs`` (or ``optim.max_steps``) are done; returns the final state."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume and not self.resume():
            log.info("nothing to resume in %s: starting a new run", self.run_dir)
        main = distributed.is_main_process()
        if main:
            save_config(self.config, self.run_dir)
        if self.state.pending_eval:
            self._run_evaluation()
            self.save()
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=self.state.step, desc=f"train {self.run_dir.name}", disable=not main,
                   leave=False)
        started = time.perf_counter()
        every_save = max(0, self.optim.save_every)
        try:
            while self.state.step < self.total_steps and self.state.epoch < self.optim.epochs:
                self._set_epoch()
                for batch in self.loader:
                    losses = self._train_step(batch)
                    self.state.step += 1
                    self.state.batch_in_epoch += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{losses['loss']:.4f}", epoch=self.state.epoch)
                    if self.state.step % max(1, self.optim.log_every) == 0 or self.state.step == self.total_steps:
                        self._append_csv("log.csv", {
                            "step": self.state.step,
                            "epoch": self.state.epoch,
                            "lr": self.scheduler.get_last_lr()[0],
                            "seconds": round(time.perf_counter() - started, 3),
                            **losses,
                        })
                    if self.state.step >= self.total_steps:
                        break
                    if every_save and self.state.step % every_save == 0:
                        self.save()
                finished_epoch = self.state.batch_in_epoch >= self.steps_per_epoch
                if finished_epoch:
                    self.state.epoch += 1
                    self.state.batch_in_epoch = 0
                last = self.state.step >= self.total_steps or self.state.epoch >= self.optim.epochs
                every = self.optim.eval_every
                if every > 0 and (last or (finished_epoch and self.state.epoch % every == 0)):
                    # Saved first: an evaluation that fails (a corrupt validation image) loses no training.
                    self.state.pending_eval = True
                    self.save()
                    self._run_evaluation()
                self.save()
                if main and (self.run_dir / "log.csv").exists():
                    _plot_losses(self.run_dir / "log.csv", self.run_dir / "loss.png")
        except KeyboardInterrupt as err:
            # Keep every finished step: `--resume` continues from here.
            path = self.save()
            if path is not None:
                log.warning("%s at step %d: saved %s; run again with --resume to continue", err or "interrupted",
                            self.state.step, path)
            raise
        finally:
            bar.close()
        distributed.barrier()
        return self.state
