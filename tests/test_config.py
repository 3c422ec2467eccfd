"""Config loading: defaults, YAML overrides, --set overrides, strict keys, saving."""

from __future__ import annotations

import pytest
import yaml

from rgbt.config import (
    ConfigError,
    DetectorConfig,
    TranslatorConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)


def test_defaults_without_file() -> None:
    config = load_config(DetectorConfig)
    assert config.model.arch == "fasterrcnn"
    assert config.data.modalities == ["rgb", "thermal"]


def test_yaml_overrides_only_what_it_names(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  trunk: resnet34\ntrain:\n  lr: 0.02\n")
    config = load_config(DetectorConfig, path)
    assert config.model.trunk == "resnet34"
    assert config.train.lr == 0.02
    assert config.model.fusion == "concat"  # untouched default


def test_set_overrides_parse_values_as_yaml() -> None:
    overrides = ["train.lr=1e-3", "data.modalities=[thermal]", "model.weights={rgb: w.pth}", "train.amp=true"]
    config = load_config(DetectorConfig, None, overrides)
    assert config.train.lr == pytest.approx(1e-3)
    assert config.data.modalities == ["thermal"]
    assert config.model.weights == {"rgb": "w.pth"}
    assert config.train.amp is True


def test_unknown_key_suggests_the_close_one(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'train.lr'"):
        load_config(DetectorConfig, None, ["train.lrr=1"])
    path = tmp_path / "bad.yaml"
    path.write_text("modle:\n  trunk: resnet34\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*did you mean 'model'"):
        load_config(DetectorConfig, path)


def test_wrong_types_are_rejected() -> None:
    with pytest.raises(ConfigError, match="train.epochs: expected int"):
        load_config(DetectorConfig, None, ["train.epochs=abc"])
    with pytest.raises(ConfigError, match="expected a list"):
        load_config(DetectorConfig, None, ["data.modalities=rgb"])
    with pytest.raises(ConfigError, match="must look like"):
        load_config(DetectorConfig, None, ["train.lr"])


def test_invalid_yaml_names_the_line(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("train:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+"):
        load_config(DetectorConfig, path)


def test_save_and_reload_round_trip(tmp_path) -> None:
    config = load_config(TranslatorConfig, None, ["model.n_flows=3", "crop=[64, 80]"])
    path = save_config(config, tmp_path)
    again = config_from_dict(TranslatorConfig, yaml.safe_load(path.read_text()))
    assert config_to_dict(again) == config_to_dict(config)


def _leaves(data: dict, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """``(key path, value)`` of every non-mapping value in a nested dict."""
    items = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            items += _leaves(value, (*prefix, key))
        else:
            items.append(((*prefix, key), value))
    return items


def test_every_shipped_config_loads() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.rglob("*.yaml"))
    # Both folders ship configs: a moved or emptied folder must fail here, not pass with nothing checked.
    assert {path.parent.name for path in files} == {"detector", "translator"}, files
    for path in files:
        cls = TranslatorConfig if "translator" in path.parts else DetectorConfig
        config = config_to_dict(load_config(cls, path))
        named = _leaves(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        assert named, f"{path} overrides nothing"
        for keys, value in named:
            loaded = config
            for key in keys:
                loaded = loaded[key]
            # YAML 1.1 reads "1e-3" as a string; the config stores the float.
            expected = float(value) if isinstance(value, str) and isinstance(loaded, float) else value
            assert loaded == expected, (path, ".".join(keys), loaded, value)
