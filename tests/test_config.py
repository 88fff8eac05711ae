"""The one definition of every option: CLI flags, the exact command line of a config, bounds, errors."""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from namestudio.data.errors import DataError, NamestudioError
from namestudio.engine.config import (MODELS, ConfigError, TrainConfig, add_train_arguments, cfg_to_argv,
                                      config_from_args, option)
from namestudio.tui.cli import build_parser, main


def parse_train(argv: list[str]):
    return build_parser().parse_args(["train", *argv])


@pytest.mark.parametrize("cfg", [
    TrainConfig(),
    TrainConfig(task="generate", model="gru", data="/tmp/x y/names", ascii_fold=True, embed=0, hidden=17, layers=2,
                dropout=0.0, label_init=False, epochs=3, batch_size=7, lr=1e-4, weight_decay=0.0, clip=0.0,
                schedule="none", eval_every=5, patience=0, seed=9, split_seed=4,
                val_fraction=0.15, test_fraction=0.2, device="cpu", amp=False, threads=1, log_every=3, max_steps=11),
    TrainConfig(task="classify", bidirectional=False, lr=0.1 + 0.2, class_weighting=1.0),   # a float that prints
])                                                                                            # with many digits
def test_cfg_to_argv_rebuilds_the_same_config(cfg):
    again = config_from_args(parse_train(cfg_to_argv(cfg)))
    assert again == cfg


@pytest.mark.parametrize("argv, said", [
    (["--task", "generate", "--bidirectional"], "--bidirectional is for classifiers only; this run is a generator"),
    (["--task", "generate", "--class-weighting", "2"], "--class-weighting is for classifiers only"),
    (["--no-label-init"], "--no-label-init is for generators only; this run is a classifier (--task classify)"),
])
def test_an_option_of_the_other_task_is_refused_not_ignored(argv, said, capsys):
    """`train --task generate --class-weighting 2` trained and recorded nothing of it; --bidirectional on a
    generator was recorded as false. What the task does anyway passes (a generator is one-way)."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        config_from_args(parse_train(argv))
    assert main(["train", *argv, "--data", "builtin"]) == 1
    assert said in capsys.readouterr().err
    assert config_from_args(parse_train(["--task", "generate", "--no-bidirectional"])).bidirectional is False
    cfg = TrainConfig(task="generate", class_weighting=1.0)     # a form's leftover: not passed to `train`
    assert "--class-weighting" not in cfg_to_argv(cfg) and config_from_args(parse_train(cfg_to_argv(cfg))).task == "generate"


def test_every_field_is_a_train_option_with_help():
    helps = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["help"], f.name
        flag = option(f.name)["flag"]
        assert flag in helps, flag
    assert "--class-weighting" in helps        # had no flag before


def test_task_defaults_follow_the_task():
    assert option("epochs", "classify")["default"] == TrainConfig(task="classify").epochs
    assert option("epochs", "generate")["default"] == TrainConfig(task="generate").epochs
    assert option("hidden", "generate")["default"] == TrainConfig(task="generate").hidden
    assert option("model")["choices"] == MODELS


def test_models_match_the_engine_registry():
    from namestudio.engine.models import MODELS as REGISTERED
    assert set(MODELS) == set(REGISTERED)


@pytest.mark.parametrize("argv, flag", [
    (["--patience", "-1"], "--patience"),
    (["--max-steps", "-1"], "--max-steps"),
    (["--eval-every", "-5"], "--eval-every"),
    (["--embed", "-3"], "--embed"),
    (["--clip", "nan"], "--clip"),
    (["--lr", "0"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--dropout", "1"], "--dropout"),
    (["--layers", "3000"], "--layers"),
    (["--hidden", "0"], "--hidden"),
    (["--val-fraction", "0"], "--val-fraction"),
    (["--epochs", "0"], "--epochs"),
    (["--val-fraction", "0.5", "--test-fraction", "0.5"], "--val-fraction + --test-fraction must be below 1"),
])
def test_bad_numbers_are_refused_naming_the_option(argv, flag, capsys):
    with pytest.raises(ConfigError, match=re.escape(flag)):
        config_from_args(parse_train(argv))
    assert main(["train", *argv, "--data", "builtin"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("namestudio: error: ") and flag in err[0]


@pytest.mark.parametrize("argv, said", [
    (["--batch-size", "100000000"], "--batch-size must be ≤ 1,000,000 (got 100000000)"),
    (["--batch-size", "0"], "--batch-size must be ≥ 1 (got 0)"),
    (["--split-seed", "99999999999999999999"], "--split-seed must be ≤ 9,223,372,036,854,775,807"),
])
def test_a_number_past_either_end_of_its_range_is_told_that_end(argv, said, capsys):
    assert main(["train", *argv, "--data", "builtin"]) == 1
    assert said in capsys.readouterr().err


def test_data_refuses_a_negative_split_seed_as_train_does(capsys):
    assert main(["data", "--data", "builtin", "--seed", "-1"]) == 1
    assert "--seed must be ≥ 0 (got -1)" in capsys.readouterr().err


def test_saved_config_of_the_wrong_type_is_a_config_error():
    with pytest.raises(ConfigError):
        TrainConfig.from_dict(["not", "a", "dict"])
    with pytest.raises(ConfigError, match="--layers"):
        TrainConfig.from_dict({"layers": 3000}).validate()
    with pytest.raises(ConfigError, match="--model"):
        TrainConfig.from_dict({"model": "transformer"}).validate()


def test_every_user_error_shares_one_base():
    from namestudio.engine.device import DeviceError
    from namestudio.engine.infer import InferenceError
    from namestudio.tui.cli import CliError
    for cls in (DataError, ConfigError, DeviceError, InferenceError, CliError):
        assert issubclass(cls, NamestudioError), cls


def test_version_comes_from_package_metadata():
    out = subprocess.run([sys.executable, "-m", "namestudio.tui.cli", "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"namestudio {version('namestudio')}"


def test_unknown_failure_is_still_one_line(monkeypatch, capsys):
    import namestudio.tui.cli as cli

    def boom(args):
        raise RuntimeError("first line\nsecond line")
    monkeypatch.setattr(cli, "cmd_runs", boom)
    assert cli.main(["runs"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RuntimeError: first line" in err[0]


def test_add_train_arguments_leaves_unset_options_out():
    import argparse
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    args = p.parse_args(["--no-amp", "--unidirectional"])
    cfg = config_from_args(args)
    assert cfg.amp is False and cfg.bidirectional is False and cfg.epochs == TrainConfig().epochs
