"""train-translator, translate and translate-eval end to end on a tiny synthetic root (CPU, seconds)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from rgbt.atomic import file_sha256
from rgbt.cli import main
from rgbt.data.dataset import image_to_tensor
from rgbt.data.imageio import read_image
from rgbt.data.source import open_source
from rgbt.engine import distributed
from rgbt.engine.translation import MANIFEST_NAME, translate_dataset
from rgbt.engine.translator_builder import load_translator
from rgbt.translate.flow import ActNorm

TINY = Path(__file__).resolve().parents[2] / "configs" / "translator" / "tiny.yaml"


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def fixed_batch_loss(checkpoint: Path, root: Path) -> float:
    """The objective on every full day training frame, eval mode (no bank update, no crop noise)."""
    translator = load_translator(checkpoint, "cpu").translator
    source = open_source(root, "train", period="day")
    thermal = torch.stack([image_to_tensor(source[i].thermal) for i in range(len(source))])
    rgb = torch.stack([image_to_tensor(source[i].rgb) for i in range(len(source))])
    with torch.no_grad():
        return float(translator.loss(thermal, rgb)["total"])


@pytest.fixture(scope="module")
def short_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("translator") / "run"
    code = main(["train-translator", "--config", str(TINY), "--data", str(synthetic_root), "--out", str(run),
                 "--set", "train.max_steps=4", "--set", "train.eval_every=2"])
    assert code == 0
    return run


@pytest.fixture(scope="module")
def resumed_run(short_run: Path) -> tuple[Path, int]:
    """The short run copied and resumed to 24 steps (config from RUN/last.pt); counts ActNorm inits."""
    run = short_run.parent / "resumed"
    shutil.copytree(short_run, run)
    calls = []
    original = ActNorm.initialize

    def counting(self, x):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(self, x)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ActNorm, "initialize", counting)
        assert main(["train-translator", "--out", str(run), "--resume", "--set", "train.max_steps=24"]) == 0
    return run, len(calls)


@pytest.fixture(scope="module")
def checkpoint(resumed_run: tuple[Path, int]) -> Path:
    return resumed_run[0] / "last.pt"


# --------------------------------------------------------------------------------------------
# train-translator
# --------------------------------------------------------------------------------------------


def test_train_translator_writes_the_run_directory(short_run: Path) -> None:
    for name in ("last.pt", "best.pt", "config.yaml", "log.csv", "loss.png", "eval.csv", "result.json"):
        assert (short_run / name).is_file(), name
    result = json.loads((short_run / "result.json").read_text())
    assert result["steps"] == 4 and result["metric"] == "psnr" and np.isfinite(result["best"])
    # Trained on the 4 day frames; afterwards the bank is recomputed from all 4 day + 4 night RGB frames.
    assert result["bank_frames"] == result["bank_counts"] == {"day": 4, "night": 4}
    for name in ("last.pt", "best.pt"):
        assert load_translator(short_run / name, "cpu").translator.bank.count("night") == 4
    rows = read_rows(short_run / "log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert {"loss", "l1", "ssim", "grad", "nll"} <= set(rows[0])
    evals = read_rows(short_run / "eval.csv")
    assert {"psnr", "ssim", "psnr_bank"} <= set(evals[0])


def test_actnorm_is_initialised_once_before_training(short_run: Path) -> None:
    translator = load_translator(short_run / "last.pt", "cpu").translator
    layers = [m for m in translator.modules() if isinstance(m, ActNorm)]
    assert layers and all(bool(m.initialized) for m in layers)
    assert any(float(m.log_scale.detach().abs().max()) > 0.1 for m in layers)  # data-dependent, not the identity


def test_resume_continues_the_step_count_without_reinitialising_actnorm(resumed_run: tuple[Path, int]) -> None:
    run, init_calls = resumed_run
    assert init_calls == 0
    steps = [int(r["step"]) for r in read_rows(run / "log.csv")]
    assert steps == list(range(1, 25))
    assert json.loads((run / "result.json").read_text())["steps"] == 24


def test_training_lowers_the_loss(synthetic_root: Path, short_run: Path, checkpoint: Path) -> None:
    before = fixed_batch_loss(short_run / "last.pt", synthetic_root)
    after = fixed_batch_loss(checkpoint, synthetic_root)
    assert after < before - 0.02, (before, after)


@pytest.mark.parametrize("name", ["tiny", "default", "artflow"])
def test_shipped_configs_load_and_build(name: str) -> None:
    from rgbt.config import TranslatorConfig, load_config
    from rgbt.engine.translator_builder import build_translator_from_config

    config = load_config(TranslatorConfig, TINY.parent / f"{name}.yaml")
    translator = build_translator_from_config(config.model, config.loss, seed=0)
    assert translator.flow.in_channels == 3 and config.data.period == "day"
    assert len(config.crop) == 2 and not (config.loss.ms_ssim and min(config.crop) <= 160)


def test_missing_vgg_weights_is_a_clear_error(synthetic_root: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train-translator", "--config", str(TINY), "--data", str(synthetic_root), "--out",
                 str(tmp_path / "run"), "--set", "loss.content=1", "--set", f"loss.vgg_weights={tmp_path / 'no.pth'}"])
    assert code == 1
    err = capsys.readouterr().err
    assert "VGG-19 weights not found" in err and "never downloaded" in err
    code = main(["train-translator", "--config", str(TINY), "--data", str(synthetic_root), "--out",
                 str(tmp_path / "run2"), "--set", "loss.style=1"])
    assert code == 1 and "loss.vgg_weights" in capsys.readouterr().err


def test_vgg_content_and_style_losses_train_from_a_local_file(synthetic_root: Path, tmp_path: Path) -> None:
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["E"])[:21]
    weights = tmp_path / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, weights)
    run = tmp_path / "run"
    assert main(["train-translator", "--config", str(TINY), "--data", str(synthetic_root), "--out", str(run),
                 "--set", "train.max_steps=2", "--set", "train.eval_every=0", "--set", "loss.content=1",
                 "--set", "loss.style=0.1", "--set", f"loss.vgg_weights={weights}"]) == 0
    rows = read_rows(run / "log.csv")
    assert len(rows) == 2 and all(np.isfinite(float(r[k])) for r in rows for k in ("content", "style", "loss"))
    # The VGG network is a loss, not part of the translator: the checkpoint does not carry it.
    assert not any("features" in k for k in torch.load(run / "last.pt", weights_only=False)["model"])


# --------------------------------------------------------------------------------------------
# translate
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def translated(checkpoint: Path, synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fake") / "fake_rgb"
    assert main(["translate", "--checkpoint", str(checkpoint), "--data", str(synthetic_root), "--out", str(out),
                 "--workers", "0", "--batch-size", "3"]) == 0
    return out


def test_translate_writes_every_frame_where_the_data_layer_reads_it(translated: Path, synthetic_root: Path) -> None:
    source = open_source(synthetic_root, fake_rgb_root=translated)
    manifest = json.loads((translated / MANIFEST_NAME).read_text())
    assert len(manifest["files"]) == len(source) == 14
    for index in range(len(source)):
        sample = source[index]
        fid = sample.frame_id
        # The flow's default storage is lossless PNG (its inverse needs the exact pixels).
        path = translated / "images" / fid.split("/")[0] / fid.split("/")[1] / "fake_visible" / f"{fid[-6:]}.png"
        assert path.is_file()
        assert sample.fake_rgb is not None and sample.fake_rgb.shape == (64, 80, 3)
        assert manifest["files"][path.relative_to(translated).as_posix()] == file_sha256(path)
    assert manifest["checkpoint_sha256"] == file_sha256(manifest["checkpoint"])
    assert manifest["settings"]["style"] == "bank" and manifest["config"]["model"]["hidden"] == 8
    assert manifest["source_root"] == str(synthetic_root.resolve())


def test_second_run_skips_everything_and_a_corrupted_file_is_redone(
    translated: Path, checkpoint: Path, synthetic_root: Path
) -> None:
    summary = translate_dataset(checkpoint, synthetic_root, translated, workers=0, device="cpu", progress=False)
    assert summary["written"] == 0 and summary["skipped"] == 14
    victim = next(iter(sorted((translated / "images").rglob("*.png"))))
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 3])  # truncated, as by a crash of some other writer
    summary = translate_dataset(checkpoint, synthetic_root, translated, workers=0, device="cpu", progress=False)
    assert summary["written"] == 1 and summary["skipped"] == 13
    assert victim.read_bytes() == good  # deterministic translation: the same bytes again
    assert read_image(victim).shape == (64, 80, 3)


def test_an_interrupted_run_keeps_its_finished_files_and_resumes(
    checkpoint: Path, synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rgbt.engine import manifest

    out, calls = tmp_path / "killed", []
    real_write = manifest.write_image

    def write_then_die(path, image, jpeg_quality=95):  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_write(path, image, jpeg_quality=jpeg_quality)

    monkeypatch.setattr(manifest, "write_image", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        translate_dataset(checkpoint, synthetic_root, out, workers=0, batch_size=2, device="cpu", flush_every=2,
                          progress=False)
    listed = json.loads((out / MANIFEST_NAME).read_text())["files"]
    assert 1 <= len(listed) < 14 and calls[5].relative_to(out).as_posix() not in listed
    assert all(file_sha256(out / rel) == sha for rel, sha in listed.items())
    assert not list(out.rglob("*.tmp"))  # atomic writes leave no partial file behind
    monkeypatch.setattr(manifest, "write_image", real_write)
    summary = translate_dataset(checkpoint, synthetic_root, out, workers=0, device="cpu", progress=False)
    assert summary["skipped"] == len(listed) and summary["written"] == 14 - len(listed)


def test_translate_refuses_a_folder_made_with_other_settings(translated: Path, checkpoint: Path,
                                                              synthetic_root: Path) -> None:
    with pytest.raises(ValueError, match="other settings"):
        translate_dataset(checkpoint, synthetic_root, translated, style="paired", workers=0, device="cpu",
                          progress=False)


def test_paired_and_image_styles(checkpoint: Path, synthetic_root: Path, tmp_path: Path) -> None:
    paired = translate_dataset(checkpoint, synthetic_root, tmp_path / "paired", image_set="test", style="paired",
                               image_format="png", workers=0, device="cpu", progress=False)
    assert paired["written"] == 6 and paired["bank_fallbacks"] == 0
    style = synthetic_root / "images" / "set00" / "V000" / "visible" / "I00000.jpg"
    image = translate_dataset(checkpoint, synthetic_root, tmp_path / "image", image_set="test", style=str(style),
                              workers=0, device="cpu", progress=False)
    assert image["written"] == 6
    source = open_source(synthetic_root, "test", fake_rgb_root=tmp_path / "paired")
    assert all(source[i].fake_rgb is not None for i in range(len(source)))
    assert next((tmp_path / "paired").rglob("*.png"))


def test_sharded_ranks_write_parts_that_rank_zero_merges(checkpoint: Path, synthetic_root: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sharded"
    with monkeypatch.context() as patch:
        # Two ranks, run one after the other: rank 0 finishes (and merges) before rank 1 has written its part.
        patch.setattr(distributed, "world_size", lambda: 2)
        patch.setattr(distributed, "init_distributed", lambda device: True)
        patch.setattr(distributed, "barrier", lambda: None)
        written = {}
        for rank in (0, 1):
            patch.setattr(distributed, "rank", lambda rank=rank: rank)
            patch.setattr(distributed, "is_main_process", lambda rank=rank: rank == 0)
            written[rank] = translate_dataset(checkpoint, synthetic_root, out, workers=0, device="cpu",
                                              progress=False)["written"]
    assert written == {0: 7, 1: 7}
    assert len(json.loads((out / "manifest.part1.json").read_text())["files"]) == 7
    # The next run (any world size) merges the leftover part at start-up and finds everything done.
    summary = translate_dataset(checkpoint, synthetic_root, out, workers=0, device="cpu", progress=False)
    assert summary["skipped"] == 14 and summary["written"] == 0
    assert not list(out.glob("manifest.part*.json"))
    assert len(json.loads((out / MANIFEST_NAME).read_text())["files"]) == 14


def test_load_translator_rejects_other_checkpoints(tmp_path: Path) -> None:
    torch.save({"weights": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a translator checkpoint"):
        load_translator(tmp_path / "x.pt", "cpu")


# --------------------------------------------------------------------------------------------
# translate-eval
# --------------------------------------------------------------------------------------------


def test_translate_eval_writes_finite_metrics_and_the_figure(checkpoint: Path, synthetic_root: Path,
                                                             tmp_path: Path) -> None:
    out, figure = tmp_path / "eval.json", tmp_path / "triplets.png"
    assert main(["translate-eval", "--checkpoint", str(checkpoint), "--data", str(synthetic_root), "--image-set",
                 "test", "--max-frames", "4", "--json", str(out), "--figure", str(figure), "--device", "cpu"]) == 0
    report = json.loads(out.read_text())
    assert list(report) == ["roundtrip_max_abs", "roundtrip_mean_abs", "rounds_psnr_db", "roundtrip_max_abs_8bit",
                            "roundtrip_mean_abs_8bit", "rounds_psnr_db_8bit", "person_contrast_thermal",
                            "person_contrast_fake", "edge_f1", "gradient_ssim", "psnr_day", "ssim_day", "image_format",
                            "frames"]
    assert report.pop("image_format") == "png"
    assert all(isinstance(v, (int, float)) and np.isfinite(v) for v in report.values()), report
    assert report["frames"] == 4
    assert report["roundtrip_max_abs"] < 1e-3 and report["roundtrip_mean_abs"] < report["roundtrip_max_abs"] + 1e-12
    assert report["rounds_psnr_db"] > 50.0
    assert 0.0 <= report["edge_f1"] <= 1.0 and -1.0 <= report["gradient_ssim"] <= 1.0
    assert figure.is_file() and figure.stat().st_size < 300_000


def test_torchrun_trains_and_translates_in_two_processes(synthetic_root: Path, checkpoint: Path, tmp_path: Path,
                                                         torchrun_two) -> None:
    run = tmp_path / "ddp"
    done = torchrun_two(["train-translator", "--config", str(TINY), "--data", str(synthetic_root), "--out", str(run),
                         "--set", "train.max_steps=2"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "result.json").read_text())["world_size"] == 2
    out = tmp_path / "fake"
    done = torchrun_two(["translate", "--checkpoint", str(checkpoint), "--data", str(synthetic_root), "--out", str(out),
                         "--workers", "0"])
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    source = open_source(synthetic_root, fake_rgb_root=out)
    assert len(manifest["files"]) == len(source)  # the two ranks' slices were merged
