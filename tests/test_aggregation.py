"""Count-based aggregation against an entry-by-entry hand computation."""

import torch

from heterofl.aggregation import aggregate
from heterofl.layout import FULL, LABELS, Heads, Width
from heterofl.models import build_model
from heterofl.submodel import extract, parameters_of

LAYOUT = {
    "hidden.weight": (Width("h"), FULL),  # (4, 2)
    "out.weight": (LABELS, Width("h")),  # (3, 4)
    "out.bias": (LABELS,),  # (3,)
}


def test_two_clients_overlap_uncovered_and_label_rows():
    old = {
        "hidden.weight": torch.full((4, 2), 100.0),
        "out.weight": torch.full((3, 4), 100.0),
        "out.bias": torch.full((3,), 100.0),
    }
    # Client 1: width 4, labels {0, 1}. Client 2: width 2, labels {1}.
    c1 = {
        "hidden.weight": torch.arange(8.0).reshape(4, 2),
        "out.weight": torch.arange(12.0).reshape(3, 4),
        "out.bias": torch.tensor([1.0, 2.0, 3.0]),
    }
    c2 = {
        "hidden.weight": torch.full((2, 2), 10.0),
        "out.weight": torch.full((3, 2), 20.0),
        "out.bias": torch.full((3,), 30.0),
    }
    new = aggregate(
        old,
        LAYOUT,
        [(c1, {"h": 4}, torch.tensor([True, True, False])), (c2, {"h": 2}, torch.tensor([False, True, False]))],
    )
    # hidden rows 0-1 averaged over both clients, rows 2-3 from client 1 only.
    expected_hidden = torch.tensor([[5.0, 5.5], [6.0, 6.5], [4.0, 5.0], [6.0, 7.0]])
    torch.testing.assert_close(new["hidden.weight"], expected_hidden)
    # out row 0: client 1 only; row 1: cols 0-1 both clients, cols 2-3 client 1; row 2: nobody -> old.
    expected_out = torch.tensor([[0.0, 1.0, 2.0, 3.0], [12.0, 12.5, 6.0, 7.0], [100.0, 100.0, 100.0, 100.0]])
    torch.testing.assert_close(new["out.weight"], expected_out)
    torch.testing.assert_close(new["out.bias"], torch.tensor([1.0, 16.0, 100.0]))


def test_head_wise_regions_average_only_the_kept_head_columns():
    layout = {"q.weight": (Heads("e", 2), FULL)}  # 2 heads of 2 rows each
    old = {"q.weight": torch.zeros(4, 1)}
    local = {"q.weight": torch.tensor([[1.0], [2.0]])}  # width 2 -> first row of each head: rows 0 and 2
    new = aggregate(old, layout, [(local, {"e": 2}, torch.ones(1, dtype=torch.bool))])
    torch.testing.assert_close(new["q.weight"], torch.tensor([[1.0], [0.0], [2.0], [0.0]]))


def test_transformer_mask_embedding_row_is_updated():
    """Unlike the reference, the [MASK] row (beyond the vocabulary) is averaged over every client."""
    torch.manual_seed(0)
    model = build_model("transformer", 1.0, num_classes=6)
    params = parameters_of(model)
    clients = []
    for value, labels in ((1.0, [True, False, False, False, False, False]), (3.0, [False] * 5 + [True])):
        local = {k: torch.full_like(v, value) for k, v in extract(params, model.layout, model.widths).items()}
        clients.append((local, model.widths, torch.tensor(labels)))
    new = aggregate(params, model.layout, clients)
    emb = new["token_embedding.weight"]
    assert torch.all(emb[0] == 1.0) and torch.all(emb[5] == 3.0)
    assert torch.all(emb[6] == 2.0), "the [MASK] row must be the mean over both clients"
    torch.testing.assert_close(emb[1:5], params["token_embedding.weight"][1:5])
    assert torch.all(new["decoder2.bias"][1:5] == params["decoder2.bias"][1:5])
