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
