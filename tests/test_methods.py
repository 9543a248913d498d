"""Extraction methods (FedRolex, FedEcover, Federated Dropout, FjORD) and index-set extraction/aggregation.

Every expectation is written out by hand in the test (unit lists, entry-by-entry loops over indices,
plain advanced indexing), never taken from the code under test.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from synthetic import TinyImageTask

from heterofl.aggregation import aggregate
from heterofl.config import ExperimentConfig
from heterofl.errors import HeteroFLError
from heterofl.layout import FULL, LABELS, Heads, Width
from heterofl.local_training import ClientJob, LocalSettings, TrainMetrics, _nested_forward, train_one_client
from heterofl.methods import make_method
from heterofl.methods.base import ClientSlot
from heterofl.models import build_model
from heterofl.rates import ModelMode
from heterofl.selection import Units, space_sizes, space_widths
from heterofl.submodel import extract, parameters_of

# ------------------------------------------------------------------------------------ FedRolex


def rolex(round_: int, widths: list[int], sizes: dict[str, int]) -> list[dict[str, Units]]:
    slots = [ClientSlot(user, 1.0, {key: w for key in sizes}) for user, w in enumerate(widths)]
    selections, state = make_method("fedrolex").select(round_, slots, sizes, 0, {})
    assert state == {}
    return selections


def test_fedrolex_windows_across_the_wrap_written_by_hand():
    size = 5
    # round j holds units (j - 1 + i) mod 5, i < 3; listed in window order
    by_hand = {4: [3, 4, 0], 5: [4, 0, 1], 6: [0, 1, 2]}
    for round_, order in by_hand.items():
        (selection,) = rolex(round_, [3], {"h": size})
        assert selection["h"].width == 3
        assert selection["h"].as_list() == sorted(order), round_
    # round 6 = round 1: the window is back at the start, a contiguous prefix
    assert rolex(6, [3], {"h": size})[0]["h"].as_list() == [0, 1, 2]
    assert rolex(1, [3], {"h": size})[0]["h"].as_list() == [0, 1, 2]


def test_fedrolex_same_offset_for_every_client_and_smaller_window_is_a_prefix():
    size = 5
    order = {4: [3, 4, 0], 5: [4, 0, 1], 6: [0, 1, 2]}  # width-3 window order, by hand
    for round_, window in order.items():
        selections = rolex(round_, [3, 2, 3, 1, 2], {"h": size})
        # every client of width 3 holds the same window; width 2 / 1 the first 2 / 1 units of its order
        assert selections[0]["h"].as_list() == selections[2]["h"].as_list() == sorted(window)
        assert selections[1]["h"].as_list() == selections[4]["h"].as_list() == sorted(window[:2])
        assert selections[3]["h"].as_list() == [window[0]]


def test_fedrolex_head_wise_space_rolls_within_each_head():
    layout = {"q.weight": (Heads("embed", 2), FULL)}  # 2 heads x 4 units per head, 1 input column
    params = {"q.weight": torch.arange(8.0).reshape(8, 1)}
    sizes = space_sizes(layout, params)
    assert sizes == {"embed/2heads": 4}
    widths = space_widths(layout, {"embed": 4})  # a half-width client: 2 units per head
    assert widths == {"embed/2heads": 2}
    method = make_method("fedrolex")
    # round 4: offset 3, window 3, 0 within each head -> global rows 3, 0 (head 0) and 7, 4 (head 1)
    # round 5: offset 4 -> 0, 1 -> rows 0, 1, 4, 5
    for round_, per_head, rows in ((4, [0, 3], [0, 3, 4, 7]), (5, [0, 1], [0, 1, 4, 5])):
        (selection,), _ = method.select(round_, [ClientSlot(0, 0.5, widths)], sizes, 0, {})
        assert selection["embed/2heads"].as_list() == per_head
        local = extract(params, layout, selection)["q.weight"]
        assert local.flatten().tolist() == [float(r) for r in rows]


# ------------------------------------------------------------------------------------ FedEcover


def ecover_slots(widths: list[dict[str, int]]) -> list[ClientSlot]:
    return [ClientSlot(user, 0.5, w) for user, w in enumerate(widths)]


def test_fedecover_hands_out_every_unit_exactly_once_per_cycle():
    sizes = {"h0": 6, "h1": 12}
    # two clients per round: 2 + 1 of 6 units (2 rounds = 6) and 4 + 2 of 12 units (2 rounds = 12)
    slots = ecover_slots([{"h0": 2, "h1": 4}, {"h0": 1, "h1": 2}])
    method = make_method("fedecover")
    state: dict = {}
    cycles = 4
    rounds = []
    for round_ in range(1, 2 * cycles + 1):
        selections, state = method.select(round_, slots, sizes, 7, state)
        rounds.append(selections)
        for selection, slot in zip(selections, slots, strict=True):
            for key, units in selection.items():
                got = units.as_list()
                assert len(got) == len(set(got)) == slot.widths[key]
                assert all(0 <= u < sizes[key] for u in got)
    for cycle in range(cycles):
        for key, size in sizes.items():
            counts = Counter()
            for selections in rounds[2 * cycle : 2 * cycle + 2]:
                for selection in selections:
                    for unit in selection[key].as_list():
                        counts[unit] += 1
            assert dict(counts) == {u: 1 for u in range(size)}, (cycle, key)
    # the cycles are not all the same draw: the pools are reshuffled
    firsts = {tuple(rounds[2 * c][0]["h1"].as_list()) for c in range(cycles)}
    assert len(firsts) > 1


def test_fedecover_refills_the_pool_when_a_client_needs_more_than_is_left():
    size = 5
    method = make_method("fedecover")
    for seed in range(20):
        (first, second), state = method.select(1, ecover_slots([{"h": 3}, {"h": 4}]), {"h": size}, seed, {})
        a, b = first["h"].as_list(), second["h"].as_list()
        assert len(set(a)) == 3 and len(b) == len(set(b)) == 4
        left = set(range(size)) - set(a)  # the 2 units still in the pool when the second client draws
        assert left <= set(b), (seed, a, b)
        # the new cycle's pool holds every unit; the second client took 2 of a's 3 from it (it holds the others),
        # so the 2 units it took from the old pool stay in the new one, with a's third (FedEcover's refill)
        refill_taken = set(b) - left
        assert len(refill_taken) == 2 and refill_taken <= set(a)
        assert sorted(state["pools"]["h"]) == sorted(set(range(size)) - refill_taken)


def test_fedecover_unit_counts_stay_within_one_over_a_long_stream():
    """2,000 rounds of clients of uneven widths that rarely empty a pool exactly: at every round, every unit
    has been handed out as often as every other, give or take one (FedEcover's refill; the refill without
    the units just handed out drifted about 50 apart)."""
    sizes = {"h": 16}
    widths = [3, 5, 7, 2, 9]
    method = make_method("fedecover")
    state: dict = {}
    counts = Counter({u: 0 for u in range(sizes["h"])})
    for round_ in range(1, 2001):
        slots = ecover_slots([{"h": widths[(round_ + i) % len(widths)]} for i in range(3)])
        selections, state = method.select(round_, slots, sizes, 11, state)
        for selection in selections:
            counts.update(selection["h"].as_list())
        assert max(counts.values()) - min(counts.values()) <= 1, (round_, counts)
    assert sum(counts.values()) == sum(sum(widths[(r + i) % 5] for i in range(3)) for r in range(1, 2001))


def test_fedecover_state_carries_across_rounds_and_seed_reproduces():
    sizes = {"h": 8}
    slot = ecover_slots([{"h": 3}])
    method = make_method("fedecover")
    # round 1 takes 3 of 8, round 2 draws from the 5 left: disjoint from round 1
    (r1,), state1 = method.select(1, slot, sizes, 3, {})
    assert sorted(state1["pools"]["h"]) == sorted(set(range(8)) - set(r1["h"].as_list()))
    (r2,), state2 = method.select(2, slot, sizes, 3, state1)
    assert not set(r1["h"].as_list()) & set(r2["h"].as_list())
    # round 3: 2 left in the pool, then a refill; the 2 leftovers are part of its units
    (r3,), _ = method.select(3, slot, sizes, 3, state2)
    leftovers = set(range(8)) - set(r1["h"].as_list()) - set(r2["h"].as_list())
    assert len(leftovers) == 2 and leftovers <= set(r3["h"].as_list())
    # a fresh state ignores what happened before: round 2 from scratch may hand out round 1's units
    (again,), _ = method.select(1, slot, sizes, 3, {})
    assert again == r1
    (r2_again,), state2_again = method.select(2, slot, sizes, 3, state1)
    assert r2_again == r2 and state2_again == state2
    # another seed gives other draws (over a few rounds, identical draws are vanishingly unlikely)
    other = [method.select(r, ecover_slots([{"h": 3}]), {"h": 1000}, 4, {})[0][0]["h"] for r in (1, 2, 3)]
    mine = [method.select(r, ecover_slots([{"h": 3}]), {"h": 1000}, 3, {})[0][0]["h"] for r in (1, 2, 3)]
    assert other != mine


# ------------------------------------------------------------------------------------ Federated Dropout


def test_federated_dropout_reproducible_per_seed_round_user_and_distinct_units():
    sizes = {"h0": 1000, "h1": 64}
    widths = {"h0": 250, "h1": 16}
    method = make_method("fd")

    def units(seed, round_, users, state=None):
        slots = [ClientSlot(u, 0.25, widths) for u in users]
        selections, out_state = method.select(round_, slots, sizes, seed, state or {})
        assert out_state == (state or {})
        return {u: {k: v.as_list() for k, v in s.items()} for u, s in zip(users, selections, strict=True)}

    base = units(5, 3, [0, 1, 2])
    for user, selection in base.items():
        for key, got in selection.items():
            assert len(got) == len(set(got)) == widths[key], (user, key)
            assert all(0 <= u < sizes[key] for u in got)
    # same (seed, round, user): same units, whatever the other clients of the round or their order
    assert units(5, 3, [2, 0, 1]) == base
    assert units(5, 3, [1])[1] == base[1]
    # another user, round or seed: other units (P(collision) ~ 1 / C(1000, 250))
    assert base[0]["h0"] != base[1]["h0"] != base[2]["h0"] != base[0]["h0"]
    assert units(5, 4, [0])[0]["h0"] != base[0]["h0"]
    assert units(6, 3, [0])[0]["h0"] != base[0]["h0"]


# ------------------------------------------------------------------------------------ aggregation with index sets

LAYOUT = {
    "hidden.weight": (Width("h"), FULL),  # (6, 2)
    "out.weight": (LABELS, Width("h")),  # (3, 6)
    "out.bias": (LABELS,),  # (3,)
    "q.weight": (Heads("e", 2), FULL),  # (2 heads x 4, 2)
    "mix.weight": (Width("g"), Width("h")),  # (5, 6): two index-set axes in one tensor
}
SHAPES = {"hidden.weight": (6, 2), "out.weight": (3, 6), "out.bias": (3,), "q.weight": (8, 2), "mix.weight": (5, 6)}


def local_shape(name: str, h: list[int], e: list[int], g: list[int]) -> tuple[int, ...]:
    return {
        "hidden.weight": (len(h), 2),
        "out.weight": (3, len(h)),
        "out.bias": (3,),
        "q.weight": (2 * len(e), 2),
        "mix.weight": (len(g), len(h)),
    }[name]


def owned(name: str, index: tuple[int, ...], h: list[int], e: list[int], g: list[int], labels: list[bool]):
    """The local index of global entry ``index`` in a client holding sorted units h, e, g; None if not held."""
    if name == "hidden.weight":
        row, col = index
        return (h.index(row), col) if row in h else None
    if name == "out.weight":
        row, col = index
        return (row, h.index(col)) if labels[row] and col in h else None
    if name == "out.bias":
        (row,) = index
        return (row,) if labels[row] else None
    if name == "q.weight":
        row, col = index
        head, unit = divmod(row, 4)
        return (head * len(e) + e.index(unit), col) if unit in e else None
    if name == "mix.weight":
        row, col = index
        return (g.index(row), h.index(col)) if row in g and col in h else None
    raise KeyError(name)


def by_hand(old, clients):
    """Entry by entry: the mean over the clients that hold an entry, the old value where nobody does."""
    expected = {}
    for name, shape in SHAPES.items():
        out = old[name].clone()
        for index in torch.cartesian_prod(*[torch.arange(n) for n in shape]).reshape(-1, len(shape)).tolist():
            index = tuple(index)
            values = []
            for params, (h, e, g), labels in clients:
                local = owned(name, index, h, e, g, labels)
                if local is not None:
                    values.append(params[name][local].item())
            if values:
                out[index] = sum(values) / len(values)
        expected[name] = out
    return expected


@pytest.mark.parametrize(
    "units",
    [
        # both clients with non-contiguous index sets on every space, overlapping
        (([0, 2, 3, 5], [1, 3], [0, 2, 4]), ([2, 3, 4], [0, 3], [1, 2])),
        # one client contiguous (a view) in h, the other an index set; g mixes too
        (([1, 2, 3], [0, 2], [0, 1, 2]), ([0, 3, 5], [1, 2], [1, 3, 4])),
    ],
)
def test_aggregation_of_index_sets_matches_entry_by_entry_mean(units):
    torch.manual_seed(0)
    old = {name: torch.randn(shape) for name, shape in SHAPES.items()}
    labels = ([True, False, True], [True, True, False])
    clients, hand = [], []
    for (h, e, g), held in zip(units, labels, strict=True):
        params = {name: torch.randn(local_shape(name, h, e, g)) for name in SHAPES}
        selection = {"h": Units.subset(h, 6), "e/2heads": Units.subset(e, 4), "g": Units.subset(g, 5)}
        clients.append((params, selection, torch.tensor(held)))
        hand.append((params, (sorted(h), sorted(e), sorted(g)), held))
    assert any(not units.contiguous for _, sel, _ in clients for units in sel.values())  # index-set path
    got = aggregate(old, LAYOUT, clients)
    want = by_hand(old, hand)
    for name in SHAPES:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-6, msg=name)
    # sanity of the hand computation: label row 2 of out is held only by client 0, row 0 by both
    h0, h1 = units[0][0], units[1][0]
    col = 3  # held by both clients in both cases
    assert col in h0 and col in h1
    expected = (clients[0][0]["out.weight"][0, h0.index(col)] + clients[1][0]["out.weight"][0, h1.index(col)]) / 2
    torch.testing.assert_close(got["out.weight"][0, col], expected)
    uncovered = [c for c in range(6) if c not in h0 and c not in h1]
    for c in uncovered:
        assert torch.equal(got["hidden.weight"][c], old["hidden.weight"][c])


def test_aggregation_with_stacked_clients_and_one_selection_per_client():
    """The Aggregator's list-of-selections path (grouping equal selections) against the same hand mean."""
    from heterofl.aggregation import Aggregator

    layout = {"mix.weight": (Width("g"), Width("h"))}
    torch.manual_seed(1)
    old = {"mix.weight": torch.randn(5, 6)}
    sets = [([0, 2, 4], [1, 3, 5]), ([0, 2, 4], [1, 3, 5]), ([1, 3, 4], [0, 1, 5])]
    stacked = torch.randn(3, 3, 3)
    selections = [{"g": Units.subset(g, 5), "h": Units.subset(h, 6)} for g, h in sets]
    aggregator = Aggregator(old, layout)
    aggregator.add({"mix.weight": stacked}, selections, torch.ones(3, 2, dtype=torch.bool))
    got = aggregator.mean()["mix.weight"]
    want = old["mix.weight"].clone()
    for r in range(5):
        for c in range(6):
            values = [stacked[k, g.index(r), h.index(c)].item() for k, (g, h) in enumerate(sets) if r in g and c in h]
            if values:
                want[r, c] = sum(values) / len(values)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------------------ extraction with index sets


def test_extraction_with_index_sets_is_plain_advanced_indexing():
    torch.manual_seed(2)
    params = {name: torch.randn(shape) for name, shape in SHAPES.items()}
    g, h, e = [0, 2, 3], [1, 4, 5], [0, 3]
    selection = {"g": Units.subset(g, 5), "h": Units.subset(h, 6), "e/2heads": Units.subset(e, 4)}
    local = extract(params, LAYOUT, selection)
    gi, hi = torch.tensor(g), torch.tensor(h)
    assert torch.equal(local["mix.weight"], params["mix.weight"][gi][:, hi])
    assert torch.equal(local["hidden.weight"], params["hidden.weight"][hi])
    assert torch.equal(local["out.weight"], params["out.weight"][:, hi])
    assert torch.equal(local["out.bias"], params["out.bias"])
    rows = torch.tensor([head * 4 + u for head in range(2) for u in e])  # rows 0, 3, 4, 7
    assert torch.equal(local["q.weight"], params["q.weight"][rows])
    # a window that wraps is an index set too
    wrapped = {"g": Units.window(4, 3, 5), "h": Units.window(5, 2, 6), "e/2heads": Units.window(3, 2, 4)}
    local = extract(params, LAYOUT, wrapped)
    assert torch.equal(local["mix.weight"], params["mix.weight"][torch.tensor([0, 1, 4])][:, torch.tensor([0, 5])])


# ------------------------------------------------------------------------------------ FjORD


def test_fjord_rate_schedule_draws_only_rates_at_or_below_the_client_rate():
    method = make_method("fjord")
    assert method.step_rates(0.5) == (0.5, 0.25, 0.125, 0.0625)
    assert method.step_rates(1.0) == (1.0, 0.5, 0.25, 0.125, 0.0625)
    assert method.step_rates(0.0625) == (0.0625,)
    job = ClientJob(3, 0.5, torch.arange(10), torch.ones(10, dtype=torch.bool), 12345, None, method.step_rates(0.5))
    schedule = job.rate_schedule(2000)
    assert len(schedule) == 2000
    assert set(schedule) == {0.5, 0.25, 0.125, 0.0625}  # every candidate, nothing above 0.5
    counts = Counter(schedule)
    assert all(400 < counts[r] < 600 for r in counts), counts  # uniform: 500 each expected
    assert job.rate_schedule(2000) == schedule
    other = ClientJob(3, 0.5, torch.arange(10), torch.ones(10, dtype=torch.bool), 54321, None, job.step_rates)
    assert other.rate_schedule(2000) != schedule
    fixed = ClientJob(3, 0.5, torch.arange(10), torch.ones(10, dtype=torch.bool), 12345)
    assert fixed.rate_schedule(10) is None


def prefix_region(name: str, shape: tuple[int, ...], w: dict[str, int]) -> tuple[slice, ...]:
    """The conv model's leading-unit region of parameter ``name``, written out per parameter name."""
    if name == "classifier.weight":
        return (slice(None), slice(0, w["h3"]))
    if name == "classifier.bias":
        return (slice(None),)
    block = int(name.split(".")[1])
    out = slice(0, w[f"h{block}"])
    if name.endswith("conv.weight"):
        cin = slice(0, w[f"h{block - 1}"]) if block else slice(None)
        return (out, cin, slice(None), slice(None))
    return (out,)


def test_fjord_nested_step_puts_gradient_only_on_the_leading_units():
    torch.manual_seed(0)
    model = build_model("conv", 1.0)
    nested = build_model("conv", 0.25)
    widths = {f"h{i}": math.ceil(base * 0.25) for i, base in enumerate((64, 128, 256, 512))}
    assert widths == {"h0": 16, "h1": 32, "h2": 64, "h3": 128}
    x = torch.randn(16, 1, 28, 28)
    y = torch.randint(0, 10, (16,))
    model.zero_grad()
    logits = _nested_forward(model, nested, x)
    assert logits.shape == (16, 10)
    torch.nn.functional.cross_entropy(logits, y).backward()
    for name, param in model.named_parameters():
        grad = param.grad
        assert grad is not None, name
        inside = torch.zeros_like(grad, dtype=torch.bool)
        inside[prefix_region(name, tuple(grad.shape), widths)] = True
        assert torch.count_nonzero(grad[~inside]) == 0, f"{name}: gradient outside the leading units"
        held = grad[prefix_region(name, tuple(grad.shape), widths)]
        if name.endswith("conv.bias"):
            continue  # a bias right before BatchNorm has a mathematically zero gradient (rounding noise only)
        assert torch.count_nonzero(held) == held.numel(), f"{name}: a held entry got no gradient"
    for param in nested.parameters():  # the nested model's own parameters are not used
        assert param.grad is None


def test_fjord_training_at_a_smaller_step_rate_leaves_the_other_units_unchanged():
    torch.manual_seed(1)
    model = build_model("conv", 0.5)
    before = {k: v.clone() for k, v in parameters_of(model).items()}
    job = ClientJob(0, 0.5, torch.arange(32), torch.ones(10, dtype=torch.bool), 77, None, (0.125,))
    settings = LocalSettings(
        lr=0.1, momentum=0.0, weight_decay=0.0, clip_norm=1.0, epochs=1, batch_size=8, use_mask=False
    )
    after = train_one_client(
        model, TinyImageTask(), job, settings, TrainMetrics(), lambda rate: build_model("conv", rate)
    )
    widths = {f"h{i}": math.ceil(base * 0.125) for i, base in enumerate((64, 128, 256, 512))}
    for name, value in after.items():
        region = prefix_region(name, tuple(value.shape), widths)
        inside = torch.zeros_like(value, dtype=torch.bool)
        inside[region] = True
        assert torch.equal(value[~inside], before[name][~inside]), f"{name} changed outside the leading units"
        if not name.endswith("conv.bias"):  # (before BatchNorm its gradient is zero up to rounding)
            assert not torch.equal(value[region], before[name][region]), f"{name} did not train its leading units"


# ------------------------------------------------------------------------------------ model_mode a0-...


def test_zero_global_proportion_gives_no_client_the_global_rate():
    mode = ModelMode.parse("a0-b1-c1")
    assert mode.global_rate == 1.0
    # 10 users, proportions 0:1:1 -> k = 10 // 2 = 5: five at b, five at c, none at a
    assert mode.fixed_rates(10) == [0.5] * 5 + [0.25] * 5
    assert 1.0 not in mode.fixed_rates(7)
    assert mode.probabilities == (0.0, 0.5, 0.5)
    generator = torch.Generator().manual_seed(0)
    assert 1.0 not in mode.draw_dynamic_rates(500, generator)


def test_zero_global_proportion_is_refused_for_heterofl_and_accepted_for_fedrolex():
    control = "1_4_0.5_iid_fix_a0-b1_bn_1_1"
    with pytest.raises(HeteroFLError) as error:
        ExperimentConfig.from_dict({"dataset": "MNIST5k", "control": control, "method": "heterofl"})
    assert error.value.field == "model_mode"
    assert str(error.value).startswith("model_mode:")
    for method in ("fedrolex", "fd", "fedecover"):
        config = ExperimentConfig.from_dict({"dataset": "MNIST5k", "control": control, "method": method})
        assert config.mode.proportions == (0, 1)
    with pytest.raises(HeteroFLError, match="model_mode"):
        ExperimentConfig.from_dict({"dataset": "MNIST5k", "control": control, "method": "fjord"})
