"""Client partitions of the real MNIST5k digits and of synthetic data: invariants, reference quirks, files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from heterofl.data import (
    Dataset,
    load_dataset,
    make_partition,
    partition_statistics,
    plot_partition_heatmap,
    read_partition,
    summarize_statistics,
    write_partition,
    write_partition_statistics,
)
from heterofl.errors import HeteroFLError


@pytest.fixture(scope="module")
def mnist5k() -> Dataset:
    return load_dataset("MNIST5k")


def image_dataset(train_counts: list[int], test_counts: list[int], name: str = "MNIST") -> Dataset:
    """Labels only matter for partitions; images are 1x1 placeholders."""
    train_y = torch.from_numpy(np.repeat(np.arange(len(train_counts)), train_counts))
    test_y = torch.from_numpy(np.repeat(np.arange(len(test_counts)), test_counts))
    return Dataset(
        name,
        torch.zeros(len(train_y), 1, 1, 1),
        train_y,
        torch.zeros(len(test_y), 1, 1, 1),
        test_y,
        len(train_counts),
        False,
    )


def text_dataset(rows: int = 100, length: int = 7, vocab: int = 50) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    train = torch.randint(0, vocab, (rows, length), generator=gen)
    test = torch.randint(0, vocab, (10, length), generator=gen)
    return Dataset("WikiText2", train, train, test, test, vocab, False)


def entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def assert_valid(partition, dataset: Dataset, test_within_labels: bool = True) -> None:
    """Disjoint, in range, int64, sorted label sets, and (except IID, as in the reference) test labels
    inside each client's label set."""
    for indices, n in ((partition.train_indices, len(dataset.train_y)), (partition.test_indices, len(dataset.test_y))):
        assert len(indices) == partition.num_users
        flat = np.concatenate(indices)
        assert flat.dtype == np.int64 and len(np.unique(flat)) == len(flat)
        assert flat.size == 0 or (flat.min() >= 0 and flat.max() < n)
    train_y, test_y = dataset.train_y.numpy(), dataset.test_y.numpy()
    for user, labels in enumerate(partition.label_sets):
        assert labels.dtype == np.int64 and np.all(np.diff(labels) > 0)
        assert set(train_y[partition.train_indices[user]]) <= set(labels)
        assert not test_within_labels or set(test_y[partition.test_indices[user]]) <= set(labels)


# ------------------------------------------------------------------------------------------------- IID


def test_iid_equal_shares_and_label_sets(mnist5k):
    p = make_partition(mnist5k, "iid", 100, seed=0)
    assert_valid(p, mnist5k, test_within_labels=False)
    assert [len(t) for t in p.train_indices] == [40] * 100 and [len(t) for t in p.test_indices] == [10] * 100
    y = mnist5k.train_y.numpy()
    assert all(np.array_equal(s, np.unique(y[t])) for s, t in zip(p.label_sets, p.train_indices, strict=True))


def test_iid_drops_only_the_remainder():
    data = image_dataset([7, 7, 9], [3, 3, 3])
    p = make_partition(data, "iid", 4, seed=1)
    assert_valid(p, data, test_within_labels=False)
    assert [len(t) for t in p.train_indices] == [5] * 4 and [len(t) for t in p.test_indices] == [2] * 4


# --------------------------------------------------------------------------------------------- non-IID


def test_non_iid_reference_shards_and_test_split(mnist5k):
    p = make_partition(mnist5k, "non-iid-2", 100, seed=0)
    assert_valid(p, mnist5k)
    y = mnist5k.train_y.numpy()
    for labels, idx in zip(p.label_sets, p.train_indices, strict=True):
        assert 1 <= len(labels) <= 2
        # 20 shards per class of 400 digits: 20 contiguous dataset positions per shard, one shard per label
        assert len(idx) == 20 * len(labels)
        for label in labels:
            part = np.sort(idx[y[idx] == label])
            offset = part - np.flatnonzero(y == label)[0]
            assert len(part) == 20 and offset[0] % 20 == 0 and np.array_equal(offset, offset[0] + np.arange(20))
    for labels, idx in zip(p.label_sets, p.test_indices, strict=True):
        assert len(idx) == 5 * len(labels)  # 100 test digits per class in 20 shards


def test_non_iid_reference_quirk_collapses_some_users(mnist5k):
    singles, unused = [], []
    for seed in range(20):
        p = make_partition(mnist5k, "non-iid-2", 100, seed=seed)
        n_single = sum(len(s) == 1 for s in p.label_sets)
        singles.append(n_single)
        unused.append(4000 - sum(len(t) for t in p.train_indices))
        assert unused[-1] == 20 * n_single  # each collapsed user leaves one 20-digit shard undealt
    # spec: P(collapse) = 19/199 ~ 9.5% per user, so about 9.5 of 100 users
    assert 6 < np.mean(singles) < 13 and min(singles) > 0


def test_non_iid_distinct_gives_exactly_k_labels_and_deals_every_shard(mnist5k):
    p = make_partition(mnist5k, "non-iid-2", 100, seed=0, variant="distinct")
    assert_valid(p, mnist5k)
    assert all(len(s) == 2 for s in p.label_sets)
    assert np.array_equal(np.sort(np.concatenate(p.train_indices)), np.arange(4000))
    assert np.array_equal(np.sort(np.concatenate(p.test_indices)), np.arange(1000))
    assert np.bincount(np.concatenate(p.label_sets)).tolist() == [20] * 10
    pairs = {tuple(s) for s in p.label_sets}
    assert len(pairs) > 15  # not a fixed pairing of classes


def test_non_iid_distinct_when_shards_do_not_divide():
    data = image_dataset([30] * 10, [6] * 10)
    p = make_partition(data, "non-iid-3", 7, seed=3, variant="distinct")
    assert_valid(p, data)
    assert all(len(s) == 3 for s in p.label_sets)
    assert sorted(np.bincount(np.concatenate(p.label_sets), minlength=10)) == [2] * 9 + [3]


def test_non_iid_k_one_and_classes_of_unequal_size():
    data = image_dataset([13, 10, 11, 12], [4, 5, 3, 4])
    p = make_partition(data, "non-iid-1", 8, seed=0)
    assert_valid(p, data)
    y = data.train_y.numpy()
    for labels, idx in zip(p.label_sets, p.train_indices, strict=True):
        (label,) = labels
        assert len(idx) in (len(np.flatnonzero(y == label)) // 2, len(np.flatnonzero(y == label)) // 2 + 1)


# ------------------------------------------------------------------------------------------- Dirichlet


def test_dirichlet_reproducible_and_skew_grows_as_alpha_shrinks(mnist5k):
    a = make_partition(mnist5k, "dirichlet-0.3", 100, seed=4)
    b = make_partition(mnist5k, "dirichlet-0.3", 100, seed=4)
    assert all(np.array_equal(x, z) for x, z in zip(a.train_indices, b.train_indices, strict=True))
    assert a.content_hash == b.content_hash
    y = mnist5k.train_y.numpy()
    mean_entropy = {}
    for alpha in ("0.1", "1", "100"):
        p = make_partition(mnist5k, f"dirichlet-{alpha}", 20, seed=0)
        assert_valid(p, mnist5k)
        assert all(len(t) > 0 for t in p.train_indices)
        assert np.array_equal(np.sort(np.concatenate(p.train_indices)), np.arange(4000))
        mean_entropy[alpha] = np.mean([entropy(np.bincount(y[t], minlength=10)) for t in p.train_indices])
    assert mean_entropy["0.1"] < mean_entropy["1"] < mean_entropy["100"]
    assert mean_entropy["100"] > 0.95 * np.log(10)


def test_dirichlet_test_split_follows_train_proportions(mnist5k):
    p = make_partition(mnist5k, "dirichlet-0.5", 30, seed=2)
    assert_valid(p, mnist5k)
    train_y, test_y = mnist5k.train_y.numpy(), mnist5k.test_y.numpy()
    for tr, te in zip(p.train_indices, p.test_indices, strict=True):
        expected = np.bincount(train_y[tr], minlength=10) * 100 / 400
        assert np.all(np.abs(np.bincount(test_y[te], minlength=10) - expected) < 1)
    assert np.array_equal(np.sort(np.concatenate(p.test_indices)), np.arange(1000))
    assert all(np.array_equal(s, np.unique(train_y[t])) for s, t in zip(p.label_sets, p.train_indices, strict=True))


# ------------------------------------------------------------------------------------- none, WikiText2


def test_none_is_one_client_with_everything(mnist5k):
    p = make_partition(mnist5k, "none", 1, seed=0)
    assert p.num_users == 1
    assert np.array_equal(p.train_indices[0], np.arange(4000)) and np.array_equal(p.test_indices[0], np.arange(1000))
    assert p.label_sets[0].tolist() == list(range(10))


def test_wikitext_rows_per_client():
    data = text_dataset()
    one = make_partition(data, "iid", 100, seed=0)
    assert sorted(int(t[0]) for t in one.train_indices) == list(range(100))
    assert all(len(t) == 1 for t in one.train_indices) and all(len(t) == 0 for t in one.test_indices)
    p = make_partition(data, "iid", 30, seed=1)
    flat = np.concatenate(p.train_indices)
    assert [len(t) for t in p.train_indices] == [3] * 30 and len(np.unique(flat)) == 90 and flat.max() < 100
    for rows, labels in zip(p.train_indices, p.label_sets, strict=True):
        assert labels.tolist() == sorted(set(data.train_x[torch.from_numpy(rows)].reshape(-1).tolist()))
    stats = partition_statistics(p, data)
    assert stats["n_tokens"].tolist() == [21] * 30 and not any(c.startswith("label_") for c in stats.columns)


# ----------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("scheme", "num_users", "variant", "field"),
    [
        ("iid", 4001, "reference", "num_users"),
        ("non-iid-11", 10, "reference", "data_split_mode"),
        ("dirichlet-0", 10, "reference", "data_split_mode"),
        ("dirichlet--1", 10, "reference", "data_split_mode"),
        ("shards", 10, "reference", "data_split_mode"),
        ("iid", 10, "balanced", "variant"),
        ("iid", 0, "reference", "num_users"),
        ("iid", True, "reference", "num_users"),
        ("non-iid-2", 7, "reference", "num_users"),  # 1 shard per class cannot be dealt to 7 users
        ("non-iid-2", 2001, "distinct", "num_users"),
        ("none", 5, "reference", "num_users"),
    ],
)
def test_bad_input_names_its_field(mnist5k, scheme, num_users, variant, field):
    with pytest.raises(HeteroFLError) as exc:
        make_partition(mnist5k, scheme, num_users, seed=0, variant=variant)
    assert str(exc.value).startswith(f"{field}:") and "allowed" in str(exc.value) and "\n" not in str(exc.value)


def test_bad_input_for_text_and_seed():
    with pytest.raises(HeteroFLError, match=r"^num_users: .*1\.\.100"):
        make_partition(text_dataset(), "iid", 101, seed=0)
    with pytest.raises(HeteroFLError, match=r"^data_split_mode: .*iid, none"):
        make_partition(text_dataset(), "non-iid-2", 10, seed=0)
    with pytest.raises(HeteroFLError, match=r"^seed:"):
        make_partition(text_dataset(), "iid", 10, seed=-1)


# ------------------------------------------------------------------------------------------------ files


def test_same_seed_same_bytes_different_seed_different(mnist5k, tmp_path):
    write_partition(make_partition(mnist5k, "non-iid-2", 100, seed=7), tmp_path / "a.json")
    write_partition(make_partition(mnist5k, "non-iid-2", 100, seed=7), tmp_path / "b.json")
    write_partition(make_partition(mnist5k, "non-iid-2", 100, seed=8), tmp_path / "c.json")
    a, b, c = ((tmp_path / f"{n}.json").read_bytes() for n in "abc")
    assert a == b and a != c
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json", "c.json"]  # no temp files left
    raw = json.loads(a)
    assert list(raw) == sorted(raw)
    content = {k: v for k, v in raw.items() if k != "content_hash"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    assert raw["content_hash"] == hashlib.sha256(canonical).hexdigest()


def test_round_trip_and_label_mask(mnist5k, tmp_path):
    p = make_partition(mnist5k, "non-iid-2", 50, seed=1, variant="distinct")
    write_partition(p, tmp_path / "sub" / "p.json")
    q = read_partition(tmp_path / "sub" / "p.json", mnist5k)
    assert q.content_hash == p.content_hash and (q.scheme, q.variant, q.seed, q.num_users) == (
        "non-iid-2",
        "distinct",
        1,
        50,
    )
    for name in ("train_indices", "test_indices", "label_sets"):
        assert all(np.array_equal(x, y) for x, y in zip(getattr(p, name), getattr(q, name), strict=True))
    mask = q.label_mask(10)
    expected = torch.zeros(50, 10, dtype=torch.bool)
    y = mnist5k.train_y.numpy()
    for user, idx in enumerate(q.train_indices):
        expected[user, sorted(set(y[idx].tolist()))] = True
    assert torch.equal(mask, expected) and mask.sum(1).tolist() == [2] * 50


def test_partition_for_other_data_is_refused(mnist5k, tmp_path):
    write_partition(make_partition(mnist5k, "iid", 10, seed=0), tmp_path / "p.json")
    other = image_dataset([400] * 10, [100] * 10, name="MNIST5k")  # same name and labels, other images
    with pytest.raises(HeteroFLError, match=r"^partition: .*was made for dataset MNIST5k"):
        read_partition(tmp_path / "p.json", other)
    with pytest.raises(HeteroFLError, match=r"^partition: .*was made for dataset MNIST5k"):
        read_partition(tmp_path / "p.json", text_dataset())


def _edit_one_index(text: str) -> str:
    raw = json.loads(text)
    raw["train_indices"][0][0] = raw["train_indices"][1][0]
    return json.dumps(raw, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda t: t[: len(t) // 2], "not valid JSON"),
        (lambda t: "", "is empty"),
        (lambda t: "[1, 2]", "JSON object"),
        (_edit_one_index, "content hash"),
        (lambda t: json.dumps({k: v for k, v in json.loads(t).items() if k != "label_sets"}), "label_sets"),
    ],
)
def test_damaged_file_is_one_line_error_naming_it(mnist5k, tmp_path, damage, words):
    path = tmp_path / "p.json"
    write_partition(make_partition(mnist5k, "iid", 10, seed=0), path)
    path.write_text(damage(path.read_text()))
    with pytest.raises(HeteroFLError) as exc:
        read_partition(path)
    message = str(exc.value)
    assert message.startswith("partition:") and str(path) in message and words in message and "\n" not in message


def test_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(HeteroFLError, match=r"^partition: .*cannot be read"):
        read_partition(tmp_path / "nope.json")


# ------------------------------------------------------------------------------------------- statistics


def test_statistics_table_summary_and_heatmap(mnist5k, tmp_path):
    p = make_partition(mnist5k, "dirichlet-0.3", 120, seed=0)
    df = partition_statistics(p, mnist5k)
    y = mnist5k.train_y.numpy()
    counts = np.stack([np.bincount(y[t], minlength=10) for t in p.train_indices])
    assert df["client"].tolist() == list(range(120))
    assert np.array_equal(df[[f"label_{k}" for k in range(10)]].to_numpy(), counts)
    assert df["n_train"].tolist() == counts.sum(1).tolist()
    assert df["n_test"].tolist() == [len(t) for t in p.test_indices]
    assert df["n_labels"].tolist() == (counts > 0).sum(1).tolist()
    np.testing.assert_allclose(df["entropy"], [entropy(c) for c in counts])
    summary = summarize_statistics(df)
    assert summary["clients"] == 120 and summary["mean_train"] == pytest.approx(4000 / 120)
    assert summary["min_train"] == counts.sum(1).min() and summary["max_train"] == counts.sum(1).max()
    assert summary["mean_labels"] == pytest.approx((counts > 0).sum(1).mean())
    write_partition_statistics(df, tmp_path / "stats.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "stats.csv"), df, check_dtype=False)
    plot_partition_heatmap(p, mnist5k, tmp_path / "heat.png")
    plot_partition_heatmap(p, mnist5k, tmp_path / "heat.pdf")
    assert (tmp_path / "heat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "heat.pdf").read_bytes()[:5] == b"%PDF-"
    with pytest.raises(HeteroFLError, match=r"^path:"):
        plot_partition_heatmap(p, mnist5k, tmp_path / "heat.svg")


def test_iid_entropy_is_near_uniform_and_non_iid_two_is_at_most_log_two(mnist5k):
    iid = partition_statistics(make_partition(mnist5k, "iid", 10, seed=0), mnist5k)
    non_iid = partition_statistics(make_partition(mnist5k, "non-iid-2", 10, seed=0, variant="distinct"), mnist5k)
    assert iid["entropy"].min() > 0.97 * np.log(10)
    np.testing.assert_allclose(non_iid["entropy"], np.log(2))


def test_shards_follow_reference_cut_with_leftovers_to_the_first_shards():
    from heterofl.data.schemes import cut_shards

    labels = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1])  # class 1 at positions 0,2,3,5,6,8,9 (7 items)
    shards = cut_shards(labels, num_classes=2, shards_per_class=3)
    assert [s.tolist() for s in shards[0]] == [[1], [4], [7]]
    # 7 % 3 = 1 leftover (the last, position 9) goes to the first shard; the rest in contiguous pairs
    assert [s.tolist() for s in shards[1]] == [[0, 2, 9], [3, 5], [6, 8]]


@pytest.mark.parametrize("seed", range(5))
def test_dirichlet_test_labels_stay_within_train_labels_for_uneven_sizes(seed):
    data = image_dataset([37] * 10, [29] * 10)
    p = make_partition(data, "dirichlet-0.5", 25, seed=seed)
    assert_valid(p, data)
    train_y, test_y = data.train_y.numpy(), data.test_y.numpy()
    for tr, te in zip(p.train_indices, p.test_indices, strict=True):
        expected = np.bincount(train_y[tr], minlength=10) * 29 / 37
        assert np.all(np.abs(np.bincount(test_y[te], minlength=10) - expected) < 1)


def test_partition_file_and_every_atomic_output_get_the_umask_mode_not_0600(mnist5k, tmp_path) -> None:
    """mkstemp creates 0600 files; every writer goes through heterofl.io, which gives them open()'s mode."""
    import os

    from heterofl.io import write_text

    before = os.umask(0o022)
    try:
        write_partition(make_partition(mnist5k, "iid", 4, 0), tmp_path / "partition.json")
        write_text(tmp_path / "other.txt", "x\n")
        os.umask(0o077)
        write_partition(make_partition(mnist5k, "iid", 4, 0), tmp_path / "private.json")
    finally:
        os.umask(before)
    assert (tmp_path / "partition.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "other.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600  # the umask is respected, not overridden
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt", "partition.json", "private.json"]


# -------------------------------------------------------------------------------------------- 100 classes


def test_non_iid_2_and_dirichlet_with_100_classes(tmp_path):
    """CIFAR100's label count: 50 clients x 2 shards use each of the 100 classes exactly once."""
    from heterofl.data.partition import check_shard_counts

    data = image_dataset([4] * 100, [2] * 100, name="CIFAR100")
    assert check_shard_counts(2, 50, 100, "reference", "CIFAR100") == 1  # int(2 * 50 / 100)
    assert check_shard_counts(2, 100, 100, "reference", "CIFAR100") == 2
    partition = make_partition(data, "non-iid-2", 50, seed=3)
    assert_valid(partition, data)
    assert all(len(labels) == 2 for labels in partition.label_sets)  # one shard per class: no collapse
    assert sorted(np.concatenate(partition.label_sets).tolist()) == list(range(100))
    y = data.train_y.numpy()
    for user, labels in enumerate(partition.label_sets):  # a whole class per shard: all 4 + 4 of its images
        assert sorted(y[partition.train_indices[user]].tolist()) == sorted(labels.tolist() * 4)
        assert len(partition.test_indices[user]) == 4
    mask = partition.label_mask(100)
    assert mask.shape == (50, 100) and mask.sum(1).tolist() == [2] * 50 and mask.sum(0).tolist() == [1] * 100
    with pytest.raises(HeteroFLError) as exc:  # 2 x 10 clients cannot cover 100 classes with whole shards
        check_shard_counts(2, 10, 100, "reference", "CIFAR100")
    assert str(exc.value).startswith("num_users: non-iid-2 (reference) cuts int(2*10/100) = 0 shards per class")
    dirichlet = make_partition(data, "dirichlet-0.3", 20, seed=1)
    assert_valid(dirichlet, data)
    assert sorted(np.concatenate(dirichlet.train_indices).tolist()) == list(range(400))  # every image dealt
    counts = partition_statistics(dirichlet, data)[[f"label_{k}" for k in range(100)]].to_numpy()
    assert counts.shape == (20, 100) and counts.sum(0).tolist() == [4] * 100
    plot_partition_heatmap(partition, data, tmp_path / "heat.png")  # 100 label columns draw
    assert (tmp_path / "heat.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_heatmap_colour_scale_starts_at_zero(tmp_path, monkeypatch):
    """An even split (every count 18..22) must look even: the colour scale runs from 0, not from the smallest
    count (issue 24: the IID heatmap looked like a patchwork)."""
    from matplotlib.figure import Figure

    from heterofl.data.stats import plot_label_heatmap

    limits, save = [], Figure.savefig

    def spy(figure, *args, **kwargs):
        limits.append(figure.axes[0].collections[0].get_clim())
        return save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    counts = pd.DataFrame(np.random.default_rng(0).integers(18, 23, size=(20, 10)), columns=[str(k) for k in range(10)])
    plot_label_heatmap(counts, "even", tmp_path / "even.png")
    assert limits == [(0.0, float(counts.to_numpy().max()))]
