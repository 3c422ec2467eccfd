"""Task-aware flow training: a frozen detector's loss on the fake RGB (rgbt.translate.task_loss + train-translator)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from rgbt.atomic import file_sha256
from rgbt.config import DetectorConfig, TranslatorConfig, load_config
from rgbt.engine.detector_builder import build_detector_from_config
from rgbt.engine.detector_training import train_detector
from rgbt.engine.trainer import Trainer
from rgbt.engine.translator_builder import build_translator_from_config
from rgbt.engine.translator_training import train_translator
from rgbt.translate.task_loss import DetectorLoss, resize_factor

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def tiny_detector(modalities: tuple[str, ...] = ("rgb",)) -> torch.nn.Module:
    """A narrow Faster R-CNN with BatchNorm in its trunk (running statistics that must not move)."""
    config = load_config(DetectorConfig, CONFIGS / "detector" / "tiny.yaml")
    assert config.model.norm == "batch"
    torch.manual_seed(0)
    return build_detector_from_config(config.model, list(modalities), 2)


def targets(batch: int) -> list[dict[str, torch.Tensor]]:
    """One person and one ignore region per crop (thermal-frame xyxy pixels of a 32x40 crop)."""
    return [{"boxes": torch.tensor([[10.0, 4.0, 18.0, 28.0], [26.0, 6.0, 34.0, 20.0]]),
             "labels": torch.tensor([1, 0]), "ignore": torch.tensor([False, True])} for _ in range(batch)]


def test_the_detector_term_moves_no_detector_weight_or_buffer_and_reaches_every_flow_parameter(trained_like) -> None:  # type: ignore[no-untyped-def]
    config = TranslatorConfig()
    config.model.n_blocks, config.model.n_flows, config.model.hidden = 2, 2, 8
    # Only the detector term in the objective: every gradient below comes from it.
    config.loss.l1 = config.loss.ssim = config.loss.tv = config.loss.nll = 0.0
    translator = build_translator_from_config(config.model, config.loss, seed=0).train()
    trained_like(translator, seed=3)
    detector = tiny_detector(("rgb", "thermal"))
    before = {k: v.clone() for k, v in detector.state_dict().items()}
    term = DetectorLoss(detector, ("rgb", "thermal"), weight=2.0)
    assert not any(p.requires_grad for p in detector.parameters())
    optimizer = torch.optim.SGD(translator.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    for step in range(3):
        thermal = torch.rand((2, 1, 32, 40), generator=gen)
        rgb = torch.rand((2, 3, 32, 40), generator=gen)
        optimizer.zero_grad()
        parts = translator(thermal, rgb, "day", term.extra_loss(thermal, targets(2)))
        assert float(parts["total"].detach()) == pytest.approx(2.0 * float(parts["detector"].detach()), rel=1e-5)
        parts["total"].backward()
        if step == 0:
            missing = [name for name, p in translator.named_parameters()
                       if p.grad is None or not bool(p.grad.abs().sum() > 0)]
            assert not missing, f"no gradient from the detector term: {missing}"
        optimizer.step()
    after = detector.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, changed  # weights, BatchNorm running statistics and batch counters alike
    assert any("running_mean" in k for k in before)
    assert all(p.grad is None for p in detector.parameters())


def test_detector_loss_refuses_what_cannot_work() -> None:
    detector = tiny_detector(("thermal",))
    with pytest.raises(ValueError, match="without an RGB input"):
        DetectorLoss(detector, ("thermal",), 1.0)
    with pytest.raises(ValueError, match="must be > 0"):
        DetectorLoss(detector, ("rgb",), 0.0)
    with pytest.raises(ValueError, match="some of"):
        DetectorLoss(detector, ("depth",), 1.0)
    term = DetectorLoss(tiny_detector(), ("rgb",), 1.0)
    with pytest.raises(ValueError, match="not one batch"):
        term(torch.rand(2, 3, 32, 40), torch.rand(2, 1, 32, 40), targets(1))


def resized_sizes(term: DetectorLoss, crop: tuple[int, int]) -> tuple[int, int]:
    """(height, width) one crop has after the detector's resize transform, in a training call."""
    seen: list[tuple[int, int]] = []
    hook = term.detector.transform.register_forward_hook(
        lambda _m, _a, out: seen.append(tuple(out[0].image_sizes[0])))
    try:
        term(torch.rand(1, 3, *crop), torch.rand(1, 1, *crop), targets(1))
    finally:
        hook.remove()
    return seen[0]


def test_crops_are_resized_by_the_factor_of_their_frames() -> None:
    detector = tiny_detector()  # min_size 64, max_size 80
    assert resize_factor(detector, (64, 80)) == 1.0
    assert resize_factor(detector, (128, 160)) == 0.5
    assert resize_factor(detector, (32, 40)) == 2.0
    # Without a frame size the crop itself is enlarged to min_size (a 32x40 crop to 64x80); with the
    # frames' size it is resized as a whole frame would be (factor 1 for 64x80 frames, 0.5 for 128x160).
    assert resized_sizes(DetectorLoss(detector, ("rgb",), 1.0), (32, 40)) == (64, 80)
    assert resized_sizes(DetectorLoss(detector, ("rgb",), 1.0, frame_size=(64, 80)), (32, 40)) == (32, 40)
    assert resized_sizes(DetectorLoss(detector, ("rgb",), 1.0, frame_size=(128, 160)), (32, 40)) == (16, 20)
    # The transform's own sizes are restored after every call.
    assert detector.transform.min_size == (64,) and detector.transform.max_size == 80
    with pytest.raises(ValueError, match="positive"):
        resize_factor(detector, (0, 80))
    with pytest.raises(ValueError, match="no torchvision resize transform"):
        resize_factor(torch.nn.Linear(2, 2), (64, 80))


# --------------------------------------------------------------------------------------------
# train-translator with loss.detector
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rgb_detector(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RGB-only tiny detector trained 2 steps on the synthetic root."""
    config = load_config(DetectorConfig, CONFIGS / "detector" / "tiny.yaml",
                         ["data.modalities=[rgb]", "train.max_steps=2", "ignore.min_height=6"])
    config.data.root = str(synthetic_root)
    run = tmp_path_factory.mktemp("detector") / "run"
    train_detector(config, run)
    return run / "last.pt"


def translator_config(root: Path, *overrides: str) -> TranslatorConfig:
    config = load_config(TranslatorConfig, CONFIGS / "translator" / "tiny.yaml",
                         ["train.eval_every=0", "bank_frames=0", *overrides])
    config.data.root = str(root)
    return config


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"]


def test_detector_weight_zero_trains_exactly_as_without_the_term(synthetic_root: Path, rgb_detector: Path,
                                                                 tmp_path: Path) -> None:
    plain = translator_config(synthetic_root, "train.max_steps=3")
    train_translator(plain, tmp_path / "plain")
    named = translator_config(synthetic_root, "train.max_steps=3", f"loss.detector_checkpoint={rgb_detector}")
    train_translator(named, tmp_path / "named")
    a, b = weights(tmp_path / "plain"), weights(tmp_path / "named")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with (tmp_path / "named" / "log.csv").open(newline="") as handle:
        assert "detector" not in next(csv.DictReader(handle))


def test_detector_term_trains_logs_and_resumes_exactly(synthetic_root: Path, rgb_detector: Path,
                                                       tmp_path: Path) -> None:
    sha = file_sha256(rgb_detector)
    task = ["loss.detector=0.5", f"loss.detector_checkpoint={rgb_detector}"]
    straight = tmp_path / "straight"
    train_translator(translator_config(synthetic_root, "train.max_steps=4", "train.save_every=2", *task), straight)
    with (straight / "log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and all(float(r["detector"]) > 0 for r in rows)
    # The term changes the translator: the same run without it ends elsewhere.
    train_translator(translator_config(synthetic_root, "train.max_steps=4"), tmp_path / "plain")
    a, b = weights(straight), weights(tmp_path / "plain")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert all(not k.startswith("detector") for k in a)  # the frozen detector is not part of the checkpoint
    # Killed before step 4 (last save at step 2) and resumed: the same weights as the straight run.
    resumed = tmp_path / "resumed"
    original = Trainer._train_step

    def step_or_die(self, batch):  # type: ignore[no-untyped-def]
        if self.state.step == 3:
            raise KeyboardInterrupt  # stands in for a kill: no save at this step
        return original(self, batch)

    config = translator_config(synthetic_root, "train.max_steps=4", "train.save_every=2", *task)
    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(Trainer, "_train_step", step_or_die)
        train_translator(config, resumed)
    assert torch.load(resumed / "last.pt", map_location="cpu", weights_only=False)["step"] in (2, 3)
    train_translator(config, resumed, resume=True)
    c = weights(resumed)
    assert all(torch.equal(a[k], c[k]) for k in a)
    assert file_sha256(rgb_detector) == sha


def test_detector_term_config_errors(synthetic_root: Path, rgb_detector: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loss.detector_checkpoint is empty"):
        train_translator(translator_config(synthetic_root, "loss.detector=1"), tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="no such file"):
        train_translator(translator_config(synthetic_root, "loss.detector=1",
                                           f"loss.detector_checkpoint={tmp_path / 'none.pt'}"), tmp_path / "b")
    with pytest.raises(ValueError, match="must be >= 0"):
        train_translator(translator_config(synthetic_root, "loss.detector=-1"), tmp_path / "c")
    with pytest.raises(ValueError, match="model.model is 'pix2pixhd'"):
        train_translator(translator_config(synthetic_root, "loss.detector=1", "model.model=pix2pixhd",
                                           f"loss.detector_checkpoint={rgb_detector}"), tmp_path / "d")
