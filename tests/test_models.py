import pytest
import torch

from namestudio.engine.models import CELLS, MyLSTM, build_model, run_rnn


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_mylstm_matches_nn_lstm_with_same_weights(layers, bidirectional):
    torch.manual_seed(0)
    ref = torch.nn.LSTM(5, 7, layers, batch_first=True, bidirectional=bidirectional)
    mine = MyLSTM(5, 7, layers, bidirectional)
    mine.load_state_dict(ref.state_dict())  # same parameter names and layout
    x = torch.randn(4, 6, 5)
    lengths = torch.tensor([6, 3, 1, 5])
    out_ref, h_ref = run_rnn(ref, x, lengths)
    out_mine, h_mine = run_rnn(mine, x, lengths)
    torch.testing.assert_close(out_mine, out_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_mine, h_ref, atol=1e-5, rtol=1e-5)
    # the cell state too, on full-length input through the module's own forward
    y_ref, (h1, c1) = ref(x)
    y_mine, (h2, c2) = mine(x)
    torch.testing.assert_close(y_mine, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c2, c1, atol=1e-5, rtol=1e-5)


def test_mylstm_gradients_match_nn_lstm():
    torch.manual_seed(1)
    ref = torch.nn.LSTM(3, 4, batch_first=True)
    mine = MyLSTM(3, 4)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(2, 5, 3)
    ref(x)[0].sum().backward()
    mine(x)[0].sum().backward()
    for name, p in ref.named_parameters():
        torch.testing.assert_close(dict(mine.named_parameters())[name].grad, p.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("task", ["classify", "generate"])
def test_every_cell_builds_for_both_tasks(cell, task):
    model = build_model(task, cell, vocab_size=10, n_labels=3, embed=0 if cell == "rnn" else 8, hidden=6, layers=2,
                        bidirectional=True, dropout=0.1)
    ids = torch.tensor([[2, 5, 6, 0], [2, 7, 8, 9]])
    lengths = torch.tensor([3, 4])
    labels = torch.tensor([0, 2])
    if task == "classify":
        out = model(ids, lengths)
        assert out.shape == (2, 3)
    else:
        out, _ = model(ids, labels)
        assert out.shape == (2, 4, 10)
    assert torch.isfinite(out).all()


def test_classifier_ignores_padding():
    torch.manual_seed(0)
    model = build_model("classify", "lstm", 10, 3, embed=4, hidden=5, layers=1, bidirectional=True, dropout=0.0).eval()
    short = model(torch.tensor([[4, 5, 6]]), torch.tensor([3]))
    padded = model(torch.tensor([[4, 5, 6, 0, 0]]), torch.tensor([3]))
    torch.testing.assert_close(short, padded)


def test_ngram_bag_hashes_every_ngram_of_the_framed_name():
    from namestudio.engine.models import NGramBag
    bag = NGramBag(vocab_size=10, dim=4, buckets=1000, n_max=3)
    ids = torch.tensor([[4, 5, 6, 0], [7, 8, 0, 0]])
    grams = bag.ngram_ids(ids, torch.tensor([3, 2]))
    # "<abc>": 3 unigrams, 4 bigrams, 3 trigrams; "<de>": 2, 3, 2
    assert int((grams[0] > 0).sum()) == 10 and int((grams[1] > 0).sum()) == 7
    assert int(grams.max()) <= 1000
    # the same n-gram hashes to the same bucket wherever it is
    same = bag.ngram_ids(torch.tensor([[7, 8, 0, 0, 0]]), torch.tensor([2]))
    assert sorted(same[same > 0].tolist()) == sorted(grams[1][grams[1] > 0].tolist())


@pytest.mark.parametrize("model", ["ngram", "hybrid"])
def test_bag_models_ignore_padding_and_are_classifiers_only(model):
    torch.manual_seed(0)
    m = build_model("classify", model, 10, 3, embed=4, hidden=5, layers=1, bidirectional=True, dropout=0.0).eval()
    torch.testing.assert_close(m(torch.tensor([[4, 5, 6]]), torch.tensor([3])),
                               m(torch.tensor([[4, 5, 6, 0, 0]]), torch.tensor([3])))
    with pytest.raises(ValueError, match="classifier only"):
        build_model("generate", model, 10, 3, embed=4, hidden=5, layers=1, bidirectional=False, dropout=0.0)


@pytest.mark.parametrize("model", ["ngram", "hybrid"])
def test_bag_models_train_and_classify(model, tmp_path):
    from helpers import write_names_folder
    from namestudio.data import load_dataset
    from namestudio.engine.config import TrainConfig
    from namestudio.engine.infer import load_run
    from namestudio.engine.train import Trainer
    ds = load_dataset(str(write_names_folder(tmp_path / "names")))
    cfg = TrainConfig(task="classify", model=model, embed=8, hidden=16, epochs=6, batch_size=16, lr=0.05,
                      patience=0, threads=1, log_every=1)
    losses = []
    done = Trainer(cfg, tmp_path / "ck", on_event=lambda e: losses.append(e.loss) if hasattr(e, "loss") else None,
                   dataset=ds).run()
    assert done.test_metrics["n"] > 0
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # it learns
    run = load_run(done.run_dir)
    top = run.classify(["Karov", "McLoha"], k=3)
    assert len(top) == 2 and all(len(t) == 3 for t in top)
    assert all(abs(sum(p for _, p in t) - 1) < 1e-5 for t in top)  # 3 labels: top-3 is all of them


def _tiny_batch(task: str):
    from namestudio.engine.batches import Batch
    ids = torch.tensor([[4, 5, 6, 0], [7, 8, 0, 0], [5, 5, 5, 9]])
    lengths = torch.tensor([3, 2, 4])
    y = torch.tensor([0, 2, 1])
    if task == "classify":
        return Batch(ids, lengths, y)
    ids = torch.cat([torch.full((3, 1), 2), ids], 1)                      # <bos> first
    target = torch.tensor([[4, 5, 6, 3, 0], [7, 8, 3, 0, 0], [5, 5, 5, 9, 3]])   # then <eos>, 0-padded
    return Batch(ids, lengths, y, target)


@pytest.mark.parametrize("task", ["classify", "generate"])
def test_an_ensemble_reads_as_the_mean_of_its_members_probabilities(task):
    from namestudio.engine.models import Ensemble
    torch.manual_seed(0)
    model = build_model(task, "lstm", 12, 3, embed=6, hidden=8, layers=1, bidirectional=task == "classify",
                        dropout=0.0, members=3)
    assert isinstance(model, Ensemble) and len(model.members) == 3
    first = [p for p in model.members[0].parameters()][0]
    assert not torch.equal(first, next(model.members[1].parameters()))   # each member from its own initialisation
    b = _tiny_batch(task)
    args = (b.ids, b.lengths) if task == "classify" else (b.ids, b.y)
    pick = (lambda out: out) if task == "classify" else (lambda out: out[0])
    model.eval()
    members = torch.stack([torch.softmax(pick(m(*args)), -1) for m in model.members])
    torch.testing.assert_close(pick(model(*args)).exp(), members.mean(0), atol=1e-6, rtol=1e-5)
    model.train()
    assert pick(model(*args)).shape == (3, *members.shape[1:])          # training: every member's own logits


@pytest.mark.parametrize("task", ["classify", "generate"])
def test_an_ensemble_trains_each_member_on_its_own_loss(task):
    from namestudio.engine.train import batch_loss
    torch.manual_seed(1)
    model = build_model(task, "gru", 12, 3, embed=6, hidden=8, layers=1, bidirectional=False, dropout=0.0,
                        members=2).train()
    b = _tiny_batch(task)
    weights = torch.tensor([1.0, 2.0, 0.5]) if task == "classify" else None
    loss, _ = batch_loss(model, b, task, class_weights=weights)
    own = [batch_loss(m, b, task, class_weights=weights)[0] for m in model.members]
    torch.testing.assert_close(loss, sum(own) / 2)
    loss.backward()
    for m, o in zip(model.members, own):   # a member's gradient is its own loss's, halved: no coupling
        grads = torch.autograd.grad(o / 2, list(m.parameters()))
        for p, g in zip(m.parameters(), grads):
            torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-5)


def test_an_ensemble_generator_step_by_step_matches_the_whole_sequence():
    torch.manual_seed(2)
    model = build_model("generate", "lstm", 12, 3, embed=6, hidden=8, layers=1, bidirectional=False,
                        dropout=0.0, members=2).eval()
    b = _tiny_batch("generate")
    whole, _ = model(b.ids, b.y)
    state, steps = None, []
    for t in range(b.ids.shape[1]):
        out, state = model(b.ids[:, t:t + 1], b.y, state=state)
        steps.append(out)
    torch.testing.assert_close(torch.cat(steps, 1), whole, atol=1e-5, rtol=1e-5)


def test_an_ensemble_run_trains_saves_and_reloads(tmp_path):
    from helpers import write_names_folder
    from namestudio.data import load_dataset
    from namestudio.engine.config import TrainConfig
    from namestudio.engine.infer import load_run
    from namestudio.engine.train import Trainer
    ds = load_dataset(str(write_names_folder(tmp_path / "names")))
    cfg = TrainConfig(task="generate", embed=8, hidden=16, epochs=2, batch_size=16, patience=0, threads=1,
                      members=2, lm_order=3)
    done = Trainer(cfg, tmp_path / "ck", dataset=ds).run()
    run = load_run(done.run_dir)
    assert len(run.model.net.members) == 2          # the n-gram mix wraps the ensemble
    names = run.sample(lang="Slavic", n=5, seed=0)
    assert len(names) == 5
    from namestudio.engine import runfolder as rf
    from namestudio.engine.config import model_label
    row = next(r for r in rf.list_runs(tmp_path / "ck") if r["path"] == str(done.run_dir))
    assert model_label(row["model"], row["members"]) == "lstm ×2"   # how the Runs pane, runs and eval name it
    assert model_label("lstm", 1) == "lstm"
