"""PairDataset tensors and targets, collate_pairs and stack_modalities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rgbt.data.dataset import PairDataset, collate_pairs, images_to_float, kaist_train_ignore, stack_modalities
from rgbt.data.sample import PairSample
from rgbt.data.source import FrameSource, open_source
from rgbt.data.synthetic import generate_synthetic
from rgbt.data.transforms import build_train_transform

H, W = 48, 64


class ListSource:
    """An in-memory :class:`FrameSource` over ready-made samples."""

    name = "list"
    root = Path(".")

    def __init__(self, samples: list[PairSample]) -> None:
        self.samples = samples
        self.frame_ids = [s.frame_id for s in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> PairSample:
        return self.samples[index]

    def annotations(self, index: int) -> PairSample:
        return self.samples[index].with_images(rgb=None, thermal=None, fake_rgb=None)

    def image_paths(self, index: int) -> dict[str, Path | None]:
        return {"rgb": None, "thermal": None, "fake_rgb": None}

    def period(self, index: int) -> str:
        return self.samples[index].period

    def frame_candidates(self, frame: str) -> list[str]:
        return [frame]


def make_sample(k: int, labels: list[str], ignore: list[bool] | None = None, rgb: bool = True,
                size: tuple[int, int] = (H, W)) -> PairSample:
    rng = np.random.default_rng(k)
    n = len(labels)
    boxes = np.array([[4 + 10 * i, 4, 12 + 10 * i, 4 + 8 + 12 * i] for i in range(n)], np.float32).reshape(-1, 4)
    return PairSample(
        rgb=rng.integers(0, 256, (*size, 3), dtype=np.uint8) if rgb else None,
        thermal=rng.integers(0, 256, size, dtype=np.uint8),
        boxes=boxes,
        labels=labels,
        ignore=ignore if ignore is not None else [False] * n,
        occlusion=[i % 3 for i in range(n)],
        meta={"frame_id": f"set0{k % 10}/V000/I0000{k}", "period": "night" if k % 2 else "day"},
    )


def test_list_source_is_a_frame_source() -> None:
    assert isinstance(ListSource([]), FrameSource)


def test_tensors_shapes_dtypes_ranges() -> None:
    sample = make_sample(0, ["person"])
    images, target = PairDataset(ListSource([sample]))[0]
    assert list(images) == ["rgb", "thermal"]
    assert images["rgb"].shape == (3, H, W) and images["thermal"].shape == (1, H, W)
    for tensor in images.values():
        assert tensor.dtype == torch.float32 and 0.0 <= tensor.min() and tensor.max() <= 1.0
    torch.testing.assert_close(images["rgb"], torch.from_numpy(sample.rgb).permute(2, 0, 1).float() / 255)
    torch.testing.assert_close(images["thermal"][0], torch.from_numpy(sample.thermal).float() / 255)
    assert images["rgb"].is_contiguous()
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (1, 4)
    assert target["labels"].dtype == torch.int64 and target["ignore"].dtype == torch.bool
    assert target["occlusion"].dtype == torch.int64
    assert target["frame_id"] == "set00/V000/I00000" and target["period"] == "day"
    assert target["index"] == 0 and target["size"] == (H, W)
    assert "boxes_rgb" not in target


def test_uint8_images_and_conversion_to_float() -> None:
    sample = make_sample(0, ["person"])
    images, _ = PairDataset(ListSource([sample]), image_dtype=torch.uint8)[0]
    assert images["rgb"].dtype == torch.uint8 and images["rgb"].shape == (3, H, W)
    np.testing.assert_array_equal(images["thermal"][0].numpy(), sample.thermal)
    floats, _ = PairDataset(ListSource([sample]))[0]
    converted = images_to_float(images)
    for m in ("rgb", "thermal"):
        torch.testing.assert_close(converted[m], floats[m])
    expected = stack_modalities(floats, ("rgb", "thermal"))
    torch.testing.assert_close(stack_modalities(images, ("rgb", "thermal")), expected)
    mixed = {"rgb": images["rgb"], "thermal": floats["thermal"]}
    torch.testing.assert_close(stack_modalities(mixed, ("rgb", "thermal")), expected)
    with pytest.raises(ValueError, match="image_dtype"):
        PairDataset(ListSource([sample]), image_dtype=torch.float16)


def test_labels_and_ignore_mapping() -> None:
    labels = ["person", "people", "person?", "cyclist", "person"]
    sample = make_sample(1, labels, ignore=[False, False, False, False, True])
    _, target = PairDataset(ListSource([sample]))[0]
    assert target["labels"].tolist() == [1, 0, 0, 0, 1]
    assert target["ignore"].tolist() == [False, True, True, True, True]  # last: file ign flag
    _, target = PairDataset(ListSource([sample]), classes=("person", "cyclist"))[0]
    assert target["labels"].tolist() == [1, 0, 0, 2, 1]
    assert target["ignore"].tolist() == [False, True, True, False, True]
    torch.testing.assert_close(target["boxes"], torch.from_numpy(sample.boxes))


def test_kaist_train_ignore_rule() -> None:
    sample = make_sample(2, ["person", "person", "people", "person"])  # heights 8, 20, 32, 44; occ 0, 1, 2, 0
    np.testing.assert_array_equal(kaist_train_ignore(sample, min_height=15), [True, False, True, False])
    np.testing.assert_array_equal(kaist_train_ignore(sample, min_height=0, max_occlusion=0), [False, True, True, False])
    _, target = PairDataset(ListSource([sample]), ignore_fn=lambda s: kaist_train_ignore(s, min_height=15))[0]
    assert target["ignore"].tolist() == [True, False, True, False]
    assert target["labels"].tolist() == [1, 1, 0, 1]


def test_keep_empty_false_skips_frames_without_positives() -> None:
    samples = [make_sample(0, ["person"]), make_sample(1, ["people"]), make_sample(2, []),
               make_sample(3, ["person"], ignore=[True])]
    assert len(PairDataset(ListSource(samples))) == 4
    dataset = PairDataset(ListSource(samples), keep_empty=False)
    assert len(dataset) == 1 and dataset.frame_ids == [samples[0].frame_id]


def test_missing_modality_names_the_frame() -> None:
    dataset = PairDataset(ListSource([make_sample(5, ["person"], rgb=False)]))
    with pytest.raises(ValueError, match=r"set05/V000/I00005.*'rgb'"):
        dataset[0]
    images, _ = PairDataset(ListSource([make_sample(5, ["person"], rgb=False)]), modalities=("thermal",))[0]
    assert list(images) == ["thermal"]
    with pytest.raises(ValueError, match="unknown modality"):
        PairDataset(ListSource([]), modalities=("depth",))


def test_transform_sees_only_requested_modalities() -> None:
    seen = []

    def spy(sample: PairSample) -> PairSample:
        seen.append((sample.rgb is None, sample.thermal is None))
        return sample

    PairDataset(ListSource([make_sample(0, ["person"])]), modalities=("thermal",), transform=spy)[0]
    assert seen == [(True, False)]


def test_collate_and_stack_modalities() -> None:
    dataset = PairDataset(ListSource([make_sample(k, ["person"] * (k + 1)) for k in range(3)]))
    images, targets = collate_pairs([dataset[i] for i in range(3)])
    assert images["rgb"].shape == (3, 3, H, W) and images["thermal"].shape == (3, 1, H, W)
    assert [len(t["boxes"]) for t in targets] == [1, 2, 3]
    stacked = stack_modalities(images, ("rgb", "thermal"))
    assert stacked.shape == (3, 4, H, W)
    torch.testing.assert_close(stacked[:, :3], images["rgb"])
    torch.testing.assert_close(stacked[:, 3:], images["thermal"])
    single = stack_modalities(dataset[0][0], ("thermal", "rgb"))
    assert single.shape == (4, H, W)
    torch.testing.assert_close(single[0], dataset[0][0]["thermal"][0])

    mixed = PairDataset(ListSource([make_sample(0, ["person"]), make_sample(1, [], size=(32, 40))]))
    images, _ = collate_pairs([mixed[0], mixed[1]])
    assert isinstance(images["rgb"], list) and images["rgb"][1].shape == (3, 32, 40)
    stacked = stack_modalities(images, ("rgb", "thermal"))
    assert [tuple(t.shape) for t in stacked] == [(4, H, W), (4, 32, 40)]
    with pytest.raises(ValueError, match="different shapes"):
        stack_modalities({"rgb": torch.zeros(3, 8, 8), "thermal": torch.zeros(1, 8, 9)}, ("rgb", "thermal"))
    with pytest.raises(ValueError, match="not in images"):
        stack_modalities({"rgb": torch.zeros(3, 8, 8)}, ("rgb", "thermal"))


def test_dataloader_with_workers_over_a_synthetic_root(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "s", 6, 0, seed=0, width=96, height=80, progress=False)
    dataset = PairDataset(open_source(root, "train"), transform=build_train_transform(hflip=0.0, shift_rgb=2, seed=0))
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate_pairs)
    batches = list(loader)
    assert len(batches) == 2
    in_process = collate_pairs([dataset[i] for i in range(3)])
    torch.testing.assert_close(batches[0][0]["thermal"], in_process[0]["thermal"])  # shift_rgb leaves thermal alone
    for images, targets in batches:
        assert images["rgb"].shape == (3, 3, 80, 96) and images["thermal"].shape == (3, 1, 80, 96)
        for target in targets:
            assert target["boxes_rgb"].shape == target["boxes"].shape
            assert target["period"] in ("day", "night")
