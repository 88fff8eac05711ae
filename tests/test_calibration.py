import json

import pytest
import torch
import torch.nn.functional as F

from helpers import write_names_folder
from namestudio.data import load_dataset
from namestudio.engine.calibration import (CALIBRATION, calibrate_run, expected_calibration_error, fit_temperature,
                                           reliability)
from namestudio.engine.config import TrainConfig
from namestudio.engine.infer import load_run
from namestudio.engine.train import Trainer


def overconfident(n=4000, k=5, scale=4.0, seed=0):
    """Labels drawn from softmax(z); the 'model' reports scale * z, so it is over-confident by that factor."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g) * 1.5
    y = torch.multinomial(z.softmax(-1), 1, generator=g).squeeze(1)
    return z * scale, y


def test_temperature_scaling_lowers_nll_of_an_overconfident_model():
    logits, y = overconfident()
    t = fit_temperature(logits, y)
    before, after = F.cross_entropy(logits, y).item(), F.cross_entropy(logits / t, y).item()
    assert after < before - 0.1
    assert 3.0 < t < 5.5  # the true factor is 4
    # it is a minimum: nudging T either way does not help
    for other in (t * 0.9, t * 1.1):
        assert F.cross_entropy(logits / other, y).item() >= after
    # and the calibrated probabilities have a smaller calibration error
    assert expected_calibration_error((logits / t).softmax(-1), y) < expected_calibration_error(logits.softmax(-1), y)


def test_temperature_of_an_underconfident_model_is_below_one():
    logits, y = overconfident(scale=0.5)
    assert fit_temperature(logits, y) < 0.8


def test_ece_on_hand_made_predictions():
    probs = torch.tensor([[0.9, 0.1], [0.21, 0.79], [0.62, 0.38], [0.31, 0.69]])
    y = torch.tensor([0, 0, 0, 1])
    # confidences 0.9 (right), 0.79 (wrong), 0.62 (right), 0.69 (right), each alone in its 1/15 bin
    expected = (abs(1 - 0.9) + abs(0 - 0.79) + abs(1 - 0.62) + abs(1 - 0.69)) / 4
    assert expected_calibration_error(probs, y) == pytest.approx(expected)
    # one bin: |mean accuracy - mean confidence| = |0.75 - 0.75|
    assert expected_calibration_error(probs, y, bins=1) == pytest.approx(abs(0.75 - (0.9 + 0.79 + 0.62 + 0.69) / 4))
    # two bins, (0, .5] and (.5, 1]: a 3-class prediction at 0.4 (right) lands in the first
    p3 = torch.tensor([[0.4, 0.3, 0.3], [0.1, 0.8, 0.1], [0.7, 0.2, 0.1]])
    y3 = torch.tensor([0, 0, 0])
    assert expected_calibration_error(p3, y3, bins=2) == pytest.approx(1 / 3 * 0.6 + 2 / 3 * abs(0.5 - 0.75))


def test_reliability_bins_count_every_prediction():
    probs = torch.tensor([[0.9, 0.1], [0.21, 0.79], [0.62, 0.38], [0.95, 0.05]])
    rows = reliability(probs, torch.tensor([0, 0, 0, 1]), bins=5)
    assert [r["count"] for r in rows] == [0, 0, 0, 2, 2]  # (.6, .8] holds 0.79 and 0.62
    assert rows[3]["accuracy"] == pytest.approx(0.5) and rows[3]["confidence"] == pytest.approx((0.79 + 0.62) / 2)
    assert rows[4]["accuracy"] == pytest.approx(0.5) and rows[4]["confidence"] == pytest.approx(0.925)
    assert rows[0]["accuracy"] is None and rows[0]["lo"] == 0 and rows[4]["hi"] == 1


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cal")
    ds = load_dataset(str(write_names_folder(root / "names")))
    cfg = TrainConfig(task="classify", model="ngram", hidden=16, epochs=4, batch_size=16, lr=0.05, patience=0, threads=1)
    done = Trainer(cfg, root / "ck", dataset=ds).run()
    return done.run_dir


def test_calibrate_run_writes_the_temperature_and_inference_applies_it(run_dir):
    from pathlib import Path
    result = calibrate_run(run_dir)
    saved = json.loads((Path(run_dir) / CALIBRATION).read_text())
    assert saved["temperature"] == pytest.approx(result["temperature"]) and saved["temperature"] > 0
    assert saved["val_nll_after"] <= saved["val_nll_before"] + 1e-9
    for key in ("val_ece_before", "val_ece_after"):
        assert 0 <= saved[key] <= 1
    run = load_run(run_dir)
    assert run.temperature == pytest.approx(saved["temperature"])
    logits = run.model(*__import__("namestudio.engine.batches", fromlist=["pad"]).pad([run.vocab.encode("Karov")]))
    expected = (logits / saved["temperature"]).softmax(-1)
    torch.testing.assert_close(run.probabilities(["Karov"]), expected)


def _copy_run(run_dir, tmp_path):
    import shutil
    from pathlib import Path
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def _move_weights_on(run):
    """What a resumed run does to the folder: new best weights in model.safetensors, calibration.json left as it was."""
    from namestudio.engine import runfolder as rf
    sd = rf.load_weights(run / rf.WEIGHTS)
    rf.save_weights({k: v * 3 if v.is_floating_point() else v for k, v in sd.items()}, run / rf.WEIGHTS)


def test_a_calibration_fitted_to_earlier_weights_is_not_used_and_eval_fits_and_saves_it_again(run_dir, tmp_path, capsys):
    from namestudio.engine.calibration import run_calibration
    from namestudio.tui.cli import main
    run = _copy_run(run_dir, tmp_path)
    before = json.loads((run / CALIBRATION).read_text())
    assert run_calibration(load_run(run))["saved"] is True
    _move_weights_on(run)
    loaded = load_run(run)
    cal = run_calibration(loaded)
    assert cal["saved"] is False and cal["stale"] is True and cal["weights"] == loaded.weights_digest
    assert cal["val_nll_before"] != pytest.approx(before["val_nll_before"])   # fitted to the new weights
    assert loaded.temperature == pytest.approx(cal["temperature"])      # classify uses that one too
    assert main(["eval", str(run), "--json"]) == 0
    out = capsys.readouterr()
    m = json.loads(out.out.strip().splitlines()[-1])
    assert m["temperature"] == pytest.approx(cal["temperature"])
    assert "fitted to earlier weights" in out.err + out.out and "saved in calibration.json" in out.err + out.out
    saved = json.loads((run / CALIBRATION).read_text())
    assert saved["weights"] == loaded.weights_digest and saved["temperature"] == pytest.approx(cal["temperature"])
    assert run_calibration(load_run(run))["saved"] is True


def test_eval_tests_a_run_it_cannot_write_and_a_live_run_without_writing_into_it(run_dir, tmp_path, capsys, monkeypatch):
    import os
    import time

    from namestudio.engine import runfolder as rf
    from namestudio.tui.cli import main
    run = _copy_run(run_dir, tmp_path)
    (run / CALIBRATION).unlink()
    real = rf.atomic_write_json

    def refuse(path, obj, indent=1):   # a read-only folder (chmod does not stop root, who runs CI)
        if path.name == CALIBRATION:
            raise rf._os_error(path, PermissionError(13, "Permission denied"))
        return real(path, obj, indent)
    monkeypatch.setattr(rf, "atomic_write_json", refuse)
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "not saved (could not write" in out and "permission denied" in out and "ECE" in out
    assert not (run / CALIBRATION).exists()
    monkeypatch.setattr(rf, "atomic_write_json", real)
    # a trainer at work on the run (this process stands in for it): its weights move on, so nothing is written
    status = rf.RunStatus(state="running", pid=os.getpid(), host=rf.HOST, started=time.time(), heartbeat=time.time())
    rf.write_status(run, status)
    assert main(["eval", str(run)]) == 0
    assert "not saved (the run is being trained)" in capsys.readouterr().out
    assert not (run / CALIBRATION).exists()


def test_a_calibration_from_before_the_digest_counts_only_when_newer_than_the_weights(run_dir, tmp_path):
    import os

    from namestudio.engine import runfolder as rf
    from namestudio.engine.calibration import run_calibration
    run = _copy_run(run_dir, tmp_path)
    old = json.loads((run / CALIBRATION).read_text())
    old.pop("weights")
    (run / CALIBRATION).write_text(json.dumps(old))
    w = (run / rf.WEIGHTS).stat().st_mtime
    os.utime(run / CALIBRATION, (w + 5, w + 5))
    assert run_calibration(load_run(run))["saved"] is True
    os.utime(run / CALIBRATION, (w - 5, w - 5))
    assert run_calibration(load_run(run))["saved"] is False


@pytest.mark.parametrize("content, words", [
    ('{"temperature": 1e-300, "weights": "DIGEST"}', "temperature 1e-300 is not a number in [0.05, 20.0]"),
    ('{"temperature": 1e300, "weights": "DIGEST"}', "is not a number in"),
    ('{"temperature": true, "weights": "DIGEST"}', "temperature True is not a number"),
    ('{"temperature": "abc", "weights": "DIGEST"}', "temperature 'abc' is not a number"),
    ("[]", "calibration.json is damaged ("),
    ('{"temperature": 1.', "calibration.json is damaged ("),
])
def test_a_damaged_calibration_is_fitted_again_and_said_to_be_damaged(run_dir, tmp_path, capsys, content, words):
    from namestudio.engine.calibration import run_calibration
    from namestudio.tui.cli import main
    run = _copy_run(run_dir, tmp_path)
    (run / CALIBRATION).write_text(content.replace("DIGEST", load_run(run).weights_digest))
    cal = run_calibration(load_run(run))
    assert cal["saved"] is False and words in cal["why"] and 0.05 <= cal["temperature"] <= 20
    assert main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    assert "calibration fitted now on the validation split (calibration.json is damaged" in " ".join(out.split())
    assert "nan" not in out
    assert run_calibration(load_run(run))["saved"] is True        # eval saved a good one in its place
