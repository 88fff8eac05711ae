"""The character n-gram LM and its blend with the networks (engine/models.py CharNGramLM, engine/blend.py)."""
import json
import math
import random
from pathlib import Path

import pytest
import torch

from helpers import tiny_names, write_names_folder
from namestudio.data import Vocab, load_dataset
from namestudio.engine import runfolder as rf
from namestudio.engine.batches import encode, pad
from namestudio.engine.blend import fit_blend, fit_mix, load_blend, save_blend
from namestudio.engine.config import TrainConfig
from namestudio.engine.infer import load_run
from namestudio.engine.models import BlendedClassifier, CharNGramLM, MixedGenerator, build_model
from namestudio.engine.train import Trainer

PAIRS = [(n, lab) for lab, names in tiny_names(30).items() for n in names]
LABELS = sorted({lab for _, lab in PAIRS})
VOCAB = Vocab.build(n for n, _ in PAIRS)
INDEX = {lab: i for i, lab in enumerate(LABELS)}


def fitted(order=3, pairs=PAIRS):
    data = encode(pairs, VOCAB, INDEX, "classify")
    return CharNGramLM(len(VOCAB), len(LABELS), order).fit(data.ids, data.lengths, data.y), data


@pytest.mark.parametrize("order", [1, 2, 4])
def test_next_character_distributions_sum_to_one_even_after_unseen_contexts(order):
    lm, _ = fitted(order)
    history = torch.tensor([[VOCAB.BOS] + VOCAB.encode("Kaov"), [VOCAB.BOS] + VOCAB.encode("Zzzz")])  # Zzzz: unseen
    q = lm.next_probs(history, torch.tensor([0, 2]))
    assert q.shape == (2, 5, len(VOCAB))
    torch.testing.assert_close(q.sum(-1), torch.ones(2, 5))
    assert bool((q > 0).all())


@pytest.mark.parametrize("order", [1, 2, 4])
def test_the_last_positions_alone_and_shared_contexts_give_the_same_distributions(order):
    """Sampling asks for the last position only, for many names that share their context: computed once each."""
    lm, _ = fitted(order)
    names = ["Kaov", "Kaov", "Mcra", "Viss", "Kaov"]
    history = torch.tensor([[VOCAB.BOS] + VOCAB.encode(n) for n in names])
    labels = torch.tensor([0, 0, 1, 2, 1])            # the first two share language and context
    whole = torch.stack([lm.next_probs(history[i:i + 1], labels[i:i + 1])[0] for i in range(len(names))])
    torch.testing.assert_close(lm.next_probs(history, labels), whole)
    for last in (1, 2, 5):
        torch.testing.assert_close(lm.next_probs(history, labels, last=last), whole[:, -last:])


def test_every_name_has_a_finite_score_under_every_language_even_from_few_names():
    """From 60 names a language, D3+ came out at 0: a context whose continuations were all seen 3 times or more
    freed no mass, so a letter unseen after it had probability 0, and `eval --data` printed "NLL inf"."""
    assert CharNGramLM._discounts(torch.tensor([1, 2, 3, 4, 4, 4]))[2] > 0      # 3 - 4·(1/3)·3/1 = -1 before
    for trial in range(30):
        letters = list("abcde")
        pairs = [("".join(random.Random(trial * 1000 + i).choices(letters[:2 + i % 4], k=3 + i % 3)), f"L{i % 2}")
                 for i in range(40)]
        vocab = Vocab.build(n for n, _ in pairs)
        data = encode(pairs, vocab, {"L0": 0, "L1": 1}, "classify")
        for order in (2, 3, 4):
            lm = CharNGramLM(len(vocab), 2, order).fit(data.ids, data.lengths, data.y)
            probe = encode([("".join(random.Random(trial).choices(letters, k=5)), "L0"), ("edcba", "L1")], vocab,
                           {"L0": 0, "L1": 1}, "classify")
            scores = lm(probe.ids.long(), probe.lengths)
            assert bool(torch.isfinite(scores).all()), (trial, order, scores)


def test_the_name_score_is_the_product_of_its_next_character_probabilities():
    lm, _ = fitted(4)
    for name in ("Kalov", "Mcrate", "Visson", "Q"):
        ids, lengths = pad([VOCAB.encode(name)])
        scores = lm(ids, lengths)[0]
        history = torch.tensor([[VOCAB.BOS] + VOCAB.encode(name)])
        target = VOCAB.encode(name) + [VOCAB.EOS]
        for c in range(len(LABELS)):
            q = lm.next_probs(history, torch.tensor([c]))[0]
            by_steps = sum(math.log(q[i, t].item()) for i, t in enumerate(target))
            assert scores[c].item() == pytest.approx(by_steps, abs=1e-4)


def test_the_counts_are_exact_and_a_language_prefers_its_own_letters():
    pairs = [("Ab", "X"), ("Ab", "X"), ("Ac", "X"), ("Zy", "Y")]
    vocab = Vocab.build(n for n, _ in pairs)
    data = encode(pairs, vocab, {"X": 0, "Y": 1}, "classify")
    lm = CharNGramLM(len(vocab), 2, 2).fit(data.ids, data.lengths, data.y)
    V = len(vocab)
    key = lambda label, prev, ch: (label * V + vocab.stoi[prev]) * V + vocab.stoi[ch]
    counts = dict(zip(lm.keys1.tolist(), lm.counts1.tolist()))
    assert counts[key(0, "A", "b")] == 2 and counts[key(0, "A", "c")] == 1 and counts[key(1, "Z", "y")] == 1
    assert counts[key(2, "A", "b")] == 2            # the pooled model (label 2) counts every language
    assert key(1, "A", "b") not in counts
    hist = torch.tensor([[vocab.BOS, vocab.stoi["A"]]])
    qx, qy = lm.next_probs(hist, torch.tensor([0]))[0, 1], lm.next_probs(hist, torch.tensor([1]))[0, 1]
    assert qx[vocab.stoi["b"]] > qx[vocab.stoi["c"]] > qx[vocab.stoi["y"]]
    assert qx[vocab.stoi["b"]] > qy[vocab.stoi["b"]]
    ids, lengths = pad([vocab.encode("Ab"), vocab.encode("Zy")])
    assert lm(ids, lengths).argmax(1).tolist() == [0, 1]


def test_as_a_classifier_it_tells_the_fixture_languages_apart():
    lm, data = fitted(3)
    held = tiny_names(30, seed=7)      # other made-up names, same patterns
    pairs = [(n, lab) for lab, names in held.items() for n in names if (n, lab) not in set(PAIRS)]
    test = encode(pairs, VOCAB, INDEX, "classify")
    acc = (lm(test.ids.long(), test.lengths).argmax(1) == test.y).float().mean().item()
    assert acc > 0.9


def test_an_order_too_high_for_the_key_space_is_refused_and_the_blend_caps_it():
    assert CharNGramLM.max_order(5000, 10) == 4     # 11 * 5000**5 would overflow an int64
    with pytest.raises(ValueError, match="too high"):
        CharNGramLM(5000, 10, 5)
    data = encode(PAIRS, VOCAB, INDEX, "classify")
    _, report = fit_blend(_classifier(), data, data, len(LABELS), len(VOCAB), 99, torch.device("cpu"))
    assert report["order"] == CharNGramLM.max_order(len(VOCAB), len(LABELS)) < 99


def test_counting_in_slices_gives_the_same_model(monkeypatch):
    whole, data = fitted(4)
    monkeypatch.setattr(CharNGramLM, "CHUNK", 7)      # 90 names in 13 slices, of different widths
    sliced = CharNGramLM(len(VOCAB), len(LABELS), 4).fit(data.ids, data.lengths, data.y)
    for name, value in whole.state_dict().items():
        torch.testing.assert_close(sliced.state_dict()[name], value, msg=name)


def _classifier():
    torch.manual_seed(0)
    return build_model("classify", "lstm", len(VOCAB), len(LABELS), embed=8, hidden=8, layers=1,
                       bidirectional=True, dropout=0.0).eval()


def test_the_blend_is_chosen_on_validation_and_never_worse_there():
    data = encode(PAIRS, VOCAB, INDEX, "classify")
    net = _classifier()                      # untrained: the n-gram model has to do the work
    blended, report = fit_blend(net, data, data, len(LABELS), len(VOCAB), 3, torch.device("cpu"))
    before, after = report["val_before"], report["val_after"]
    assert sum(after.values()) >= sum(before.values())
    assert report["weight"] > 0 and isinstance(blended, BlendedClassifier)
    assert after["accuracy"] > before["accuracy"]
    ids, lengths = data.ids.long(), data.lengths
    expected = torch.log_softmax(net(ids, lengths), -1) + report["weight"] * (
        blended.lm(ids, lengths) + report["prior_weight"] * blended.log_prior)
    torch.testing.assert_close(blended(ids, lengths), expected)


def test_a_saved_blend_loads_back_the_same_and_a_damaged_one_is_one_line(tmp_path):
    data = encode(PAIRS, VOCAB, INDEX, "classify")
    net = _classifier()
    blended, _ = fit_blend(net, data, data, len(LABELS), len(VOCAB), 3, torch.device("cpu"))
    save_blend(tmp_path, blended)
    again, left_out = load_blend(tmp_path, _classifier(), len(VOCAB), len(LABELS), "classify")
    assert left_out is None
    torch.testing.assert_close(again(data.ids.long(), data.lengths), blended(data.ids.long(), data.lengths))
    with pytest.raises(rf.RunFolderError, match="not this run's n-gram model"):
        load_blend(tmp_path, _classifier(), len(VOCAB), len(LABELS) + 1, "classify")
    (tmp_path / rf.LM).write_bytes(b"not safetensors")
    with pytest.raises(rf.RunFolderError, match="safetensors"):
        load_blend(tmp_path, _classifier(), len(VOCAB), len(LABELS), "classify")
    (tmp_path / rf.LM).unlink()
    net2 = _classifier()
    assert load_blend(tmp_path, net2, len(VOCAB), len(LABELS), "classify") == (net2, None)   # no file: the network


def _generator():
    torch.manual_seed(0)
    return build_model("generate", "lstm", len(VOCAB), len(LABELS), embed=8, hidden=16, layers=1,
                       bidirectional=False, dropout=0.0).eval()


def test_the_mixed_generator_reads_one_character_at_a_time_as_it_reads_the_whole_name():
    lm, _ = fitted(4)
    mixed = MixedGenerator(_generator(), lm, [0.9, 0.4, 0.6, 0.7], [0.1, 0.8, 0.5, 0.3]).eval()   # by position
    ids = torch.tensor([[VOCAB.BOS] + VOCAB.encode("Mckalo"), [VOCAB.BOS] + VOCAB.encode("Rasson")])
    labels = torch.tensor([0, 2])
    whole, _ = mixed(ids, labels)
    torch.testing.assert_close(whole.exp().sum(-1), torch.ones(2, ids.shape[1]))
    out, state = mixed(ids[:, :2], labels)
    steps = [out]
    for t in range(2, ids.shape[1]):
        out, state = mixed(ids[:, t:t + 1], labels, state=state)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, 1), whole, atol=1e-5, rtol=1e-5)


def test_the_mix_is_chosen_on_validation_nll_and_never_worse_there():
    data = encode(PAIRS, VOCAB, INDEX, "generate")
    mixed, report = fit_mix(_generator(), data, data, len(LABELS), len(VOCAB), 4, torch.device("cpu"))
    assert report["val_nll_after"] < report["val_nll_before"]      # an untrained network gains from the counts
    assert isinstance(mixed, MixedGenerator) and any(report["lm_weight"])
    assert len(report["net_weight"]) == len(report["lm_weight"]) == len(mixed.net_weight)


def test_the_mixed_generator_weighs_each_letter_position_with_its_own_pair():
    lm, _ = fitted(4)
    net = _generator()
    ids = torch.tensor([[VOCAB.BOS] + VOCAB.encode("Mckalo")])
    labels = torch.tensor([1])
    by_position = MixedGenerator(net, lm, [0.9, 0.4, 0.6], [0.1, 0.8, 0.5])(ids, labels)[0]
    for i, (a, b) in enumerate([(0.9, 0.1), (0.4, 0.8)] + [(0.6, 0.5)] * (ids.shape[1] - 2)):
        one_pair = MixedGenerator(net, lm, a, b)(ids, labels)[0]
        torch.testing.assert_close(by_position[:, i], one_pair[:, i])   # the last pair serves every later position
    with pytest.raises(ValueError):
        MixedGenerator(net, lm, [0.5, 0.5], [0.5])


def test_the_mix_gives_a_position_its_own_pair_only_with_enough_validation_letters(monkeypatch):
    import namestudio.engine.blend as blend
    data = encode(PAIRS, VOCAB, INDEX, "generate")
    monkeypatch.setattr(blend, "MIX_MIN_CHARS", 10 ** 9)     # no position has enough: one pair for all
    _, report = fit_mix(_generator(), data, data, len(LABELS), len(VOCAB), 4, torch.device("cpu"))
    assert len(set(zip(report["net_weight"], report["lm_weight"]))) == 1
    monkeypatch.setattr(blend, "MIX_MIN_CHARS", 1)
    _, own = fit_mix(_generator(), data, data, len(LABELS), len(VOCAB), 4, torch.device("cpu"))
    assert len(set(zip(own["net_weight"], own["lm_weight"]))) > 1     # the first letters want other weights
    assert own["val_nll_after"] < report["val_nll_after"]


def test_a_run_saved_with_one_pair_of_mix_weights_still_loads(tmp_path):
    lm, _ = fitted(4)
    save_blend(tmp_path, MixedGenerator(_generator(), lm, [0.6, 0.7], [0.5, 0.4]))
    sd = rf.load_weights(tmp_path / rf.LM)
    sd["net_weight"], sd["lm_weight"] = torch.tensor(0.6), torch.tensor(0.5)    # as runs before the positions
    rf.save_weights(sd, tmp_path / rf.LM)
    model, _ = load_blend(tmp_path, _generator(), len(VOCAB), len(LABELS), "generate")
    assert isinstance(model, MixedGenerator) and model.net_weight.tolist() == pytest.approx([0.6])
    ids = torch.tensor([[VOCAB.BOS] + VOCAB.encode("Rasson")])
    torch.testing.assert_close(model(ids, torch.tensor([0]))[0],
                               MixedGenerator(_generator(), lm, 0.6, 0.5)(ids, torch.tensor([0]))[0])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("blend")
    ds = load_dataset(str(write_names_folder(root / "names")))
    out = {}
    for task, order in (("classify", 3), ("classify", 0), ("generate", 4)):
        cfg = TrainConfig(task=task, model="lstm", embed=8, hidden=16, epochs=2, batch_size=16, patience=0,
                          threads=1, lm_order=order)
        out[task, order] = Path(Trainer(cfg, root / "ck", dataset=ds).run().run_dir)
    return out


def test_a_trained_classifier_reports_its_blend_and_loads_with_it(runs):
    run_dir = runs["classify", 3]
    test = json.loads((run_dir / rf.TEST).read_text())
    blend = test["test"]["lm_blend"] if "test" in test else test["lm_blend"]
    assert blend["order"] == 3
    assert sum(blend["val_after"].values()) >= sum(blend["val_before"].values())
    run = load_run(run_dir)
    assert isinstance(run.model, BlendedClassifier) == (rf.LM in {p.name for p in run_dir.iterdir()})
    assert isinstance(run.model, BlendedClassifier) == (blend["weight"] > 0)
    assert run.classify_each(["Karov"])[0]


def test_lm_order_0_trains_the_network_alone(runs):
    run_dir = runs["classify", 0]
    assert not (run_dir / rf.LM).exists()
    assert not isinstance(load_run(run_dir).model, BlendedClassifier)


def test_a_trained_generator_samples_with_its_mix(runs):
    run_dir = runs["generate", 4]
    run = load_run(run_dir)
    assert isinstance(run.model, MixedGenerator) == (run_dir / rf.LM).exists()
    names = run.sample(n=5, seed=0, temperature=0.8)
    assert len(names) == 5 and all(s["name"] for s in names)


def test_the_evaluate_pane_says_when_the_test_figures_include_the_n_gram_model():
    from namestudio.tui.panes.evaluate import _generator_values, _headline_values
    m = {"accuracy": 0.86, "balanced_accuracy": 0.57, "macro_f1": 0.58, "n": 10}
    assert "n-gram" not in _headline_values(m)
    assert "n-gram" not in _headline_values({**m, "lm_blend": {"order": 5, "weight": 0.0, "prior_weight": 0.0}})
    assert _headline_values({**m, "lm_blend": {"order": 5, "weight": 0.5, "prior_weight": 0.5}})["n-gram"] == "5 · w 0.5"
    g = {"nll": 1.75, "perplexity": 5.75}
    assert "n-gram" not in _generator_values(g)
    assert _generator_values({**g, "lm_blend": {"order": 6, "net_weight": 0.5, "lm_weight": 0.45}})["n-gram"] == "6 · 0.5/0.45"
    by_position = {"order": 6, "net_weight": [0.7, 0.5], "lm_weight": [0.3, 0.45]}
    assert _generator_values({**g, "lm_blend": by_position})["n-gram"] == "6 · 2 positions"
    assert "n-gram" not in _generator_values({**g, "lm_blend": {**by_position, "lm_weight": [0.0, 0.0]}})


def test_the_mix_is_described_by_position_and_older_runs_by_their_one_pair():
    from namestudio.engine.blend import describe
    rep = {"order": 6, "val_nll_before": 1.8, "val_nll_after": 1.74}
    line = describe({**rep, "net_weight": [0.75, 0.3], "lm_weight": [0.3, 0.75]})
    assert "0.75/0.3 0.3/0.75" in line and "2+" in line and "1.7400" in line
    assert "network 0.5, n-gram 0.45" in describe({**rep, "net_weight": 0.5, "lm_weight": 0.45})


def _run_with_a_blend(run_dir: Path, to: Path) -> Path:
    """A copy of a trained classifier run with an n-gram blend that takes part (weight 2), chosen for its weights
    (save_blend records their digest), and test_metrics.json saying so, as a finished run's."""
    import shutil
    d = to / "run"
    shutil.copytree(run_dir, d)
    run = load_run(d)
    net = run.model.net if isinstance(run.model, BlendedClassifier) else run.model
    data = encode([tuple(p) for p in run.split["train"]], run.vocab, {l: i for i, l in enumerate(run.labels)},
                  "classify")
    lm = CharNGramLM(len(run.vocab), len(run.labels), 3).fit(data.ids, data.lengths, data.y)
    save_blend(d, BlendedClassifier(net, lm, torch.zeros(len(run.labels)), 2.0, 1.0))
    test = json.loads((d / rf.TEST).read_text())
    figures = {"accuracy": 0.789, "balanced_accuracy": 0.5, "macro_f1": 0.5}
    test["test"]["lm_blend"] = {"order": 3, "weight": 2.0, "prior_weight": 1.0, "val_before": figures,
                                "val_after": {**figures, "accuracy": 0.848}}
    rf.atomic_write_json(d / rf.TEST, test)
    return d


def _new_best(run_dir: Path) -> None:
    """model.safetensors rewritten with other weights, as a resumed run's new best is while it trains."""
    sd = rf.load_weights(run_dir / rf.WEIGHTS)
    rf.save_weights({k: v + 0.01 if v.is_floating_point() else v for k, v in sd.items()}, run_dir / rf.WEIGHTS)


def test_a_blend_chosen_for_earlier_weights_is_left_out_and_eval_says_so(runs, tmp_path, capsys):
    from namestudio.tui.cli import main
    from namestudio.tui.panes.evaluate import _headline_values
    d = _run_with_a_blend(runs["classify", 3], tmp_path)
    assert isinstance(load_run(d).model, BlendedClassifier)                          # chosen for these weights

    _new_best(d)                                   # a resume's new best: lm.safetensors was chosen for the old one
    run = load_run(d)
    assert not isinstance(run.model, BlendedClassifier)                               # the network alone,
    torch.testing.assert_close(dict(run.model.state_dict()), rf.load_weights(d / rf.WEIGHTS))   # the new ones
    assert run.lm_blend == {"order": 3, "why": "chosen for earlier weights; the run has trained on since",
                            "stale": True}

    assert main(["eval", str(d)]) == 0
    out = capsys.readouterr().out
    assert "n-gram blend (order 3): not used (chosen for earlier weights; the run has trained on since)" in out
    assert "validation accuracy 0.789 -> 0.848" not in out and "weight 2" not in out
    assert main(["eval", str(d), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["lm_blend"]["stale"] is True and "earlier weights" in res["lm_blend"]["why"]
    m = {"accuracy": 0.86, "balanced_accuracy": 0.57, "macro_f1": 0.58, "n": 10}
    assert _headline_values({**m, "lm_blend": res["lm_blend"]})["n-gram"] == "not used (earlier weights)"


def test_a_blend_saved_before_the_weights_digest_was_recorded_still_loads(runs, tmp_path, capsys):
    from namestudio.tui.cli import main
    d = _run_with_a_blend(runs["classify", 3], tmp_path)
    rf.save_weights(rf.load_weights(d / rf.LM), d / rf.LM)                  # as written before: no digest
    _new_best(d)                                   # an older run cannot tell: its blend is used, as it was
    assert isinstance(load_run(d).model, BlendedClassifier)
    assert main(["eval", str(d)]) == 0
    assert "n-gram blend (order 3): weight 2, prior 1; validation accuracy 0.789 -> 0.848" in capsys.readouterr().out


def test_a_trained_run_records_the_weights_its_blend_was_chosen_for(runs):
    from safetensors import safe_open
    blended = [runs[key] for key in (("classify", 3), ("generate", 4)) if (runs[key] / rf.LM).exists()]
    assert blended
    for d in blended:
        with safe_open(str(d / rf.LM), "pt") as f:
            recorded = f.metadata()
        chosen = json.loads((d / rf.TEST).read_text())["test"]["lm_blend"]     # and what was chosen, with it
        assert recorded == {"weights": rf.weights_digest((d / rf.WEIGHTS).read_bytes()), "chosen": json.dumps(chosen)}
        assert rf.blend_chosen((d / rf.LM).read_bytes()) == chosen
        assert rf.weights_metadata((d / rf.LM).read_bytes()) == recorded
    assert rf.weights_metadata(b"not safetensors") == {}


# ---- a run stopped after its blend was saved, before its test was written --------------------------------------
def _stopped_after_the_blend(run_dir: Path, to: Path) -> Path:
    """A copy of a trained run as a second Ctrl-C (or a kill) left it after lm.safetensors was saved and before the
    test wrote its record: the blend chosen for its weights, test_metrics.json stopped and untested ("test": {})."""
    import shutil
    d = to / "run"
    shutil.copytree(run_dir, d)
    test = json.loads((d / rf.TEST).read_text())
    rf.atomic_write_json(d / rf.TEST, {**test, "test": {}, "reason": rf.STOPPED, "untested": rf.NOT_TESTED})
    st = rf.read_status(d)
    st.state = st.reason = rf.STOPPED
    rf.write_status(d, st)
    return d


def test_a_run_stopped_between_its_blend_and_its_test_is_described_with_the_blend_it_uses(runs, tmp_path, capsys):
    """Was: `runs` gave the network alone's validation figure and `eval --json` "lm_blend": null with no n-gram
    line, while eval, classify and report's top-3 used the blend in lm.safetensors. Now lm.safetensors carries
    what was chosen, and every face describes the model that is used: the blend."""
    from namestudio.engine import experiment as ex
    from namestudio.tui.cli import main
    for task, order in (("classify", 3), ("generate", 4)):
        if not (runs[task, order] / rf.LM).exists():
            continue
        chosen = json.loads((runs[task, order] / rf.TEST).read_text())["test"]["lm_blend"]
        d = _stopped_after_the_blend(runs[task, order], tmp_path / task)
        key = "accuracy" if task == "classify" else "nll"
        row = rf.list_runs(tmp_path / task)[0]
        assert row["state"] == "stopped" and row["untested"] == rf.NOT_TESTED
        assert row["best_val_" + key] == rf.blend_val(chosen, key) == rf.kept_val(d, key)   # the blend's
        run = load_run(d)
        assert isinstance(run.model, BlendedClassifier if task == "classify" else MixedGenerator)
        assert run.lm_blend == chosen
        results = ex.results_row(d)
        assert results["n_gram"] and results["val_kept"] == rf.blend_val(chosen, key)
        if task == "classify":
            assert main(["eval", str(d)]) == 0
            assert "n-gram blend (order 3): weight" in capsys.readouterr().out
            assert main(["eval", str(d), "--json"]) == 0
            assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["lm_blend"] == chosen


@pytest.mark.parametrize("how", ["file gone", "earlier weights"])
def test_a_run_that_does_not_use_its_recorded_blend_is_described_as_the_network_alone(runs, tmp_path, how):
    """The other way round: a run whose lm.safetensors is gone, or was chosen for earlier weights (a resume's new
    best), keeps the network alone, and nothing says a blend takes part (was: `runs`, report and compare gave the
    test record's blend figure, 0.848, and eval printed that blend's line for the network alone)."""
    from namestudio.engine import experiment as ex
    d = _run_with_a_blend(runs["classify", 3], tmp_path)        # its record: a blend of weight 2, 0.848
    if how == "file gone":
        (d / rf.LM).unlink()
    else:
        _new_best(d)
    run = load_run(d)
    assert not isinstance(run.model, BlendedClassifier)
    assert run.lm_blend is None if how == "file gone" else run.lm_blend["stale"]
    network = rf._best_evals(d / rf.METRICS, "accuracy")[0]
    assert rf.list_runs(tmp_path)[0]["best_val_accuracy"] == network == rf.kept_val(d, "accuracy") != 0.848
    row = ex.results_row(d)
    assert row["n_gram"] is None and row["val_kept"] is None


def test_a_second_ctrl_c_after_the_blend_is_saved_leaves_a_run_described_and_resumed_with_it(tmp_path, monkeypatch):
    """End to end: the second Ctrl-C lands just after train saved lm.safetensors. The run ends stopped, untested;
    every face describes the blend it uses; `train --resume` tests it (with the blend) and it is done."""
    from namestudio.engine import blend as blend_mod
    from namestudio.engine import experiment as ex
    from namestudio.engine.events import Done
    ds = load_dataset(str(write_names_folder(tmp_path / "names")))
    cfg = TrainConfig(task="classify", model="lstm", embed=8, hidden=16, epochs=2, batch_size=16, patience=0,
                      threads=1, lm_order=3)
    saved = blend_mod.save_blend
    forced = []

    def save_then_interrupt(run_dir, model, *a, **kw):
        forced.append(model)
        path = saved(run_dir, model, *a, **kw)
        trainer.abort()                               # the second Ctrl-C, the moment the blend is on disk
        return path

    monkeypatch.setattr(blend_mod, "save_blend", save_then_interrupt)
    monkeypatch.setattr(blend_mod, "WEIGHTS", (2.0,))  # a blend that takes part, whatever the tiny run learned
    monkeypatch.setattr(blend_mod, "PRIOR_WEIGHTS", (1.0,))
    trainer = Trainer(cfg, tmp_path / "ck", dataset=ds)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    d = trainer.run_dir
    assert forced and (d / rf.LM).exists()
    test = rf.read_test(d)
    assert test["test"] == {} and test["untested"] == rf.NOT_TESTED
    run = load_run(d)
    assert isinstance(run.model, BlendedClassifier) and run.lm_blend["weight"] == 2.0
    row = rf.list_runs(tmp_path / "ck")[0]
    assert row["best_val_accuracy"] == run.lm_blend["val_after"]["accuracy"]
    assert ex.results_row(d)["n_gram"] == "3 · w 2"

    monkeypatch.setattr(blend_mod, "save_blend", saved)
    resumed = Trainer(TrainConfig.from_dict(rf.read_config(d)["train"]), tmp_path / "ck", resume_from=d).run()
    assert isinstance(resumed, Done) and not resumed.untested and resumed.test_metrics["lm_blend"]["weight"] == 2.0
    assert rf.read_status(d).state == "done" and rf.read_test(d)["test"]["lm_blend"] == load_run(d).lm_blend
