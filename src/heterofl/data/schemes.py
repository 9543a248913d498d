"""The client-splitting algorithms, as pure functions of label arrays and a numpy Generator.

Inputs are assumed valid (``partition.make_partition`` checks them first); each function returns per-client
int64 index arrays. All randomness comes from the one Generator, so a seed fixes the whole partition.
"""

from __future__ import annotations

import math

import numpy as np

from heterofl.errors import HeteroFLError

DIRICHLET_ATTEMPTS = 100


def iid_split(n: int, num_users: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Reference IID: ``int(n/num_users)`` items each, drawn without replacement; the ``n % num_users``
    leftovers go unused. Consecutive chunks of one permutation have the reference's distribution in O(n)."""
    per = n // num_users
    perm = rng.permutation(n).astype(np.int64)
    return [perm[u * per : (u + 1) * per] for u in range(num_users)]


def cut_shards(labels: np.ndarray, num_classes: int, shards_per_class: int) -> list[list[np.ndarray]]:
    """Spec section 3 steps 1-3: per class, its indices in dataset order cut into ``shards_per_class``
    contiguous shards; the ``len % shards_per_class`` trailing leftovers are appended one each to the first
    shards (a class smaller than the shard count yields empty shards)."""
    shards = []
    for label in range(num_classes):
        idx = np.flatnonzero(labels == label).astype(np.int64)
        left = len(idx) % shards_per_class
        body = idx[: len(idx) - left].reshape(shards_per_class, -1)
        tail = idx[len(idx) - left :]
        shards.append([np.concatenate([row, tail[i : i + 1]]) for i, row in enumerate(body)])
    return shards


def reference_label_split(
    num_classes: int, num_users: int, shards_per_class: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Spec step 4, quirk included: permute ``range(C) * shards_per_class``, reshape to (num_users, -1) and
    take the unique labels per row, so a row drawing one label twice collapses to a single class."""
    pool = np.tile(np.arange(num_classes, dtype=np.int64), shards_per_class)
    rows = pool[rng.permutation(len(pool))].reshape(num_users, -1)
    return [np.unique(row) for row in rows]


def distinct_label_split(num_classes: int, num_users: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Every client gets exactly ``k`` distinct labels and each label is used by ``ceil(k*U/C)`` or one fewer
    clients (exactly ``k*U/C`` when that divides, so every shard is handed out once).

    Algorithm: label quotas ``c_l`` sum to ``k*U`` (the ``C*ceil(k*U/C) - k*U`` surplus is taken one each from
    randomly chosen classes). Clients are served in order; with ``u`` clients left (this one included) a
    label whose quota equals ``u`` is forced, the remaining picks are drawn without replacement with
    probability proportional to the quotas. This keeps every quota ``<= u-1`` for the ``u-1`` clients after,
    which (quotas summing to ``k*(u-1)``, each at most ``u-1``) is exactly the condition for a distinct
    assignment to exist, so the greedy never gets stuck.
    """
    per_class = math.ceil(k * num_users / num_classes)
    quota = np.full(num_classes, per_class, dtype=np.int64)
    surplus = int(quota.sum()) - k * num_users
    quota[rng.choice(num_classes, size=surplus, replace=False)] -= 1
    splits = []
    for user in range(num_users):
        left = num_users - user
        forced = np.flatnonzero(quota == left)
        free = np.flatnonzero((quota > 0) & (quota < left))
        extra = k - len(forced)
        picked = rng.choice(free, size=extra, replace=False, p=quota[free] / quota[free].sum()) if extra else []
        labels = np.sort(np.concatenate([forced, np.asarray(picked, dtype=np.int64)])).astype(np.int64)
        quota[labels] -= 1
        splits.append(labels)
    return splits


def deal_shards(
    shards: list[list[np.ndarray]], label_split: list[np.ndarray], rng: np.random.Generator
) -> list[np.ndarray]:
    """Spec step 5: each client, for each of its labels, pops one random remaining shard of that label."""
    out = []
    for labels in label_split:
        parts = [shards[label].pop(int(rng.integers(len(shards[label])))) for label in labels]
        out.append(np.concatenate(parts) if parts else np.empty(0, dtype=np.int64))
    return out


def _cut(idx: np.ndarray, fractions: np.ndarray) -> list[np.ndarray]:
    """Split ``idx`` at the cumulative ``fractions`` (one per boundary between consecutive clients)."""
    return np.split(idx, np.minimum((fractions * len(idx)).astype(np.int64), len(idx)))


def dirichlet_split(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
    num_users: int,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per class ``c``, proportions ``p_c ~ Dirichlet(alpha * 1_U)``; the shuffled train indices of ``c`` are
    cut at the cumulative proportions. The shuffled test indices of ``c`` are cut at the cumulative
    fractions of the *realised* train counts, so a client's test label mix follows its train mix (each
    count within one of ``train_count * n_test_c / n_train_c``) and a client never gets test samples of a
    class it has no training data for. The whole draw is repeated (same Generator, so still deterministic)
    until every client has at least one train sample; after ``DIRICHLET_ATTEMPTS`` failures it is refused."""
    for _ in range(DIRICHLET_ATTEMPTS):
        train = [[] for _ in range(num_users)]
        test = [[] for _ in range(num_users)]
        for label in range(num_classes):
            p = rng.dirichlet(np.full(num_users, alpha))
            train_idx = rng.permutation(np.flatnonzero(train_labels == label)).astype(np.int64)
            test_idx = rng.permutation(np.flatnonzero(test_labels == label)).astype(np.int64)
            parts = _cut(train_idx, np.cumsum(p)[:-1])
            realised = np.cumsum([len(part) for part in parts])[:-1] / max(len(train_idx), 1)
            test_parts = _cut(test_idx, realised) if len(train_idx) else [test_idx[:0]] * num_users
            for user, (tr, te) in enumerate(zip(parts, test_parts, strict=True)):
                train[user].append(tr)
                test[user].append(te)
        train_idx = [np.concatenate(parts) for parts in train]
        if min(len(t) for t in train_idx) > 0:
            return train_idx, [np.concatenate(parts) for parts in test]
    raise HeteroFLError(
        "data_split_mode",
        f"dirichlet-{alpha:g} left one of {num_users} clients without training data "
        f"in each of {DIRICHLET_ATTEMPTS} draws",
        "a larger A or fewer clients",
    )
