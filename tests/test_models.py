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
