import re

import pytest

from zspace.config import (
    Config,
    check_geometry,
    config_from_dict,
    load_config,
    read_toml,
    to_toml,
)
from zspace.core.errors import ZspaceError


def test_defaults_validate_and_mirror_decoder():
    cfg = load_config()
    assert cfg.model.leaky_slope == 0.3
    assert cfg.model.eps_clip == 5.0
    assert cfg.model.decoder_strides == tuple(reversed(cfg.model.encoder_strides))
    assert cfg.model.decoder_kernels == (3, 3, 3)


def test_toml_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("seed = 7\n[model]\nz_dim = 32\nencoder_kernels = 5\n[train]\nlr = 1e-3\n")
    cfg = load_config(path, ["model.z_dim=64", "data.source=mnist:/x/y", "train.epochs=3"])
    assert cfg.seed == 7
    assert cfg.model.z_dim == 64
    assert cfg.model.encoder_kernels == (5, 5, 5)  # a scalar broadcasts over the layers
    assert cfg.data.source == "mnist:/x/y"  # not TOML: read as a string
    assert cfg.train.lr == 1e-3 and cfg.train.epochs == 3


def test_roundtrip_reproduces_config(tmp_path):
    cfg = load_config(
        None,
        [
            "model.encoder_filters=[4,8,16,32]",
            "model.encoder_strides=2",
            'data.source=folder:/a "b"',
            "model.fact=1e-5",
        ],
    )
    path = tmp_path / "config.toml"
    path.write_text(to_toml(cfg))
    again = config_from_dict(read_toml(path))
    assert again == cfg
    assert isinstance(again, Config)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.zdim=3", "unknown key 'model.zdim' (did you mean 'z_dim'?)"),
        ("modle.z_dim=3", "unknown section 'modle' (did you mean 'model'?)"),
        ("model.z_dim=0", "model.z_dim = 0: must be >= 1"),
        ("train.lr=-0.1", "train.lr = -0.1: must be > 0"),
        ("model.fact=-1", "model.fact = -1.0: must be >= 0"),
        (
            "model.encoder_kernels=[3,3]",
            "model.encoder_kernels has 2 entries but model.encoder_filters has 3",
        ),
        (
            "model.activation=selu2",
            "model.activation = 'selu2': expected one of leaky_relu, "
            "relu, selu (did you mean 'selu'?)",
        ),
        ("model.variational=1", "model.variational = 1: expected true or false"),
        ("model.z_dim=abc", "model.z_dim = 'abc': expected an integer"),
        ("model.encoder_kernels=4", "kernel sizes must be odd"),
        ("model.dropout=1.5", "model.dropout = 1.5: must be in [0, 1)"),
        ("data.task=denoise", "data.task = 'denoise' needs data.noise_sigma > 0"),
        ("train.precision=fp8", "train.precision = 'fp8': expected one of fp32, bf16, fp16"),
        ("z=1", "unknown key 'z'"),
        ("justtext", "expected section.key=value"),
    ],
)
def test_validation_messages(override, message):
    with pytest.raises(ZspaceError) as info:
        load_config(None, [override])
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ZspaceError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nz_dim = ")
    with pytest.raises(ZspaceError, match="invalid TOML"):
        load_config(bad)


@pytest.mark.parametrize(
    "size, strides, ok",
    [
        (28, [1, 2, 2], True),
        (28, [1, 2, 2, 1], True),
        (96, [2, 2, 2, 2], True),
        (96, [2, 2, 2], True),
        (28, [2, 2, 2], False),
    ],
)
def test_geometry(size, strides, ok):
    filters = [8] * len(strides)
    cfg = load_config(
        None, [f"model.encoder_filters={filters}", f"model.encoder_strides={strides}"]
    )
    if ok:
        check_geometry(cfg, size, 1)
    else:
        with pytest.raises(ZspaceError) as info:
            check_geometry(cfg, size, 1)
        assert str(info.value) == (
            "config: model.encoder_strides = [2, 2, 2]: stride 2 of encoder layer 3 does not "
            "divide the size 7 it meets (sizes 28 -> 14 -> 7 -> 4 for 28x28 input)"
        )


def test_decoder_must_end_in_image_channels():
    cfg = load_config(None, ["model.decoder_filters=[64, 32, 1]"])
    with pytest.raises(ZspaceError, match="must output the 3 image channel"):
        check_geometry(cfg, 32, 3)


def test_one_value_grammar_for_config_keys_and_analysis_parameters():
    from zspace.config.parse import coerce

    pairs = tuple[tuple[int, int], ...] | None
    assert coerce("k", "1-2,1-18", pairs) == ((1, 2), (1, 18))  # --param's shorthand
    assert coerce("k", "[[1,2],[3,4]]", pairs) == ((1, 2), (3, 4))  # TOML, as --set reads it
    assert coerce("k", "1:2", pairs) == ((1, 2),)
    assert coerce("k", "none", pairs) is None
    assert coerce("k", "-10,-5", tuple[float, ...]) == (-10.0, -5.0)
    assert coerce("k", "[8,16]", tuple[int, ...]) == coerce("k", "8, 16", tuple[int, ...])
    assert coerce("k", "5e3", int) == 5000 and coerce("k", "1e-4", float) == 1e-4
    assert coerce("k", "yes", bool) is True and coerce("k", "false", bool) is False
    assert coerce("k", '"a b"', str) == '"a b"'  # a string field keeps its text
    cfg = load_config(None, ["model.encoder_filters=16,32,64", "model.variational=no"])
    assert cfg.model.encoder_filters == (16, 32, 64) and cfg.model.variational is False
    for value, hint, message in [
        ("1-2-3", pairs, "k = [1, 2, 3]: expected a pair such as 1-2"),
        ("3.5", int, "k = 3.5: expected an integer"),
        ("maybe", bool, "k = 'maybe': expected true or false"),
        ("nan", float, "k = nan: must be a finite number"),
        ("1e39", float, "outside the range of float32"),
        ("3000000000", int, "k = 3000000000: too large (at most 2,147,483,647)"),
    ]:
        with pytest.raises(ZspaceError, match=re.escape(message)):
            coerce("k", value, hint)
    assert coerce("kmeans.seed", "3000000000", int) == 3_000_000_000  # seeds are 64-bit


def test_config_diff_names_the_keys_that_differ():
    from zspace.config.parse import config_diff

    a = load_config(None, ["seed=1"])
    b = load_config(None, ["model.z_dim=3", "train.lr=1e-3"])
    assert config_diff(a, b) == ["seed", "model.z_dim", "train.lr"]
    assert config_diff(a, a) == []


def test_values_that_read_the_same_are_one_value():
    """A sweep's values compared as the run gets them, not as text (issue 29)."""
    from zspace.config.parse import distinct_values

    assert distinct_values("model.fact", ["1", "2.5", 1e-5]) == [1.0, 2.5, 1e-5]
    assert distinct_values("seed", ["1", "2"]) == [1, 2]
    for key, values, message in [
        ("model.fact", ["1", "1.0"], "model.fact: 1 and 1.0 are the same value (1.0)"),
        ("model.fact", ["0.5", "5e-1"], "model.fact: 0.5 and 5e-1 are the same value"),
        ("model.encoder_kernels", ["5", "[5]"], "5 and [5] are the same value ((5,))"),
        ("model.variational", ["yes", "true"], "yes and true are the same value (True)"),
        ("train.device", ["cpu", '"cpu"'], "cpu and \"cpu\" are the same value ('cpu')"),
        ("model.fact", ["1", "x"], "config: model.fact = 'x': expected a number"),
        ("model.fcat", ["1", "2"], "unknown key 'model.fcat' (did you mean 'model.fact'?)"),
        ("sed", ["1", "2"], "unknown key 'sed' (did you mean 'seed'?)"),
    ]:
        with pytest.raises(ZspaceError, match=re.escape(message)):
            distinct_values(key, values)
