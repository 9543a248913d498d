"""Client partitions: made once from a seed, written to a hashed JSON file, read back and verified.

Writing the partition to a file (rather than re-deriving it in every process) makes the data split an
artifact of its own: it can be inspected, plotted and checked against the dataset it was made for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from heterofl.data import schemes
from heterofl.data.splits import validate_split_mode
from heterofl.errors import HeteroFLError
from heterofl.io import write_text

if TYPE_CHECKING:  # torch on demand: the pipeline plans (check_shard_counts) without PyTorch
    import torch

    from heterofl.data.datasets import Dataset

PARTITION_VARIANTS = ("reference", "distinct")
FORMAT_VERSION = 1
_CONTENT_KEYS = (
    "dataset",
    "dataset_fingerprint",
    "format",
    "label_sets",
    "num_users",
    "scheme",
    "seed",
    "test_indices",
    "train_indices",
    "variant",
)


@dataclass(frozen=True, eq=False)
class Partition:
    """Per-client train/test indices and label sets; ``content_hash`` covers every other field."""

    dataset: str
    scheme: str
    variant: str
    seed: int
    num_users: int
    dataset_fingerprint: str
    train_indices: tuple[np.ndarray, ...]
    test_indices: tuple[np.ndarray, ...]
    label_sets: tuple[np.ndarray, ...]
    content_hash: str

    def label_mask(self, num_classes: int) -> torch.Tensor:
        """Bool (num_users, num_classes), True where the class is in the client's label set (masked CE)."""
        top = max((int(s.max()) for s in self.label_sets if len(s)), default=-1)
        if top >= num_classes:
            raise HeteroFLError(
                "num_classes",
                f"{num_classes} is below label id {top} of the partition",
                f"an integer > {top}",
            )
        import torch

        mask = torch.zeros(self.num_users, num_classes, dtype=torch.bool)
        for user, labels in enumerate(self.label_sets):
            mask[user, torch.from_numpy(labels)] = True
        return mask


def _content(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": p["dataset"],
        "scheme": p["scheme"],
        "variant": p["variant"],
        "seed": p["seed"],
        "num_users": p["num_users"],
        "dataset_fingerprint": p["dataset_fingerprint"],
        "format": FORMAT_VERSION,
        "train_indices": [a.tolist() for a in p["train_indices"]],
        "test_indices": [a.tolist() for a in p["test_indices"]],
        "label_sets": [a.tolist() for a in p["label_sets"]],
    }


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(_dumps(content).encode()).hexdigest()


def _build(**fields: Any) -> Partition:
    for key in ("train_indices", "test_indices", "label_sets"):
        fields[key] = tuple(np.asarray(a, dtype=np.int64) for a in fields[key])
    return Partition(**fields, content_hash=_hash(_content(fields)))


def _validate(dataset: Dataset, scheme: str, num_users: int, seed: int, variant: str) -> None:
    """Every refusal happens here, before any index is drawn."""
    validate_split_mode(scheme)
    if variant not in PARTITION_VARIANTS:
        raise HeteroFLError("variant", f"{variant!r} is unknown", ", ".join(PARTITION_VARIANTS))
    if isinstance(num_users, bool) or not isinstance(num_users, int | np.integer) or num_users < 1:
        raise HeteroFLError("num_users", f"{num_users!r} is not a positive integer", "integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise HeteroFLError("seed", f"{seed!r} is not a non-negative 64-bit integer", f"0..{2**63 - 1}")
    n_train = dataset.train_x.shape[0]
    if scheme == "none":
        if num_users != 1:
            raise HeteroFLError("num_users", f"split mode 'none' is one centralized client, not {num_users}", "1")
        return
    if num_users > n_train:
        unit = "token rows" if dataset.is_text else "training samples"
        raise HeteroFLError(
            "num_users", f"{num_users} clients exceed the {n_train} {unit} of {dataset.name}", f"1..{n_train}"
        )
    if dataset.is_text and scheme != "iid":
        raise HeteroFLError("data_split_mode", f"{scheme!r} is not available for {dataset.name}", "iid, none")
    if scheme.startswith("non-iid-"):
        _validate_shards(dataset, int(scheme.rsplit("-", 1)[1]), num_users, variant)


def check_shard_counts(k: int, num_users: int, classes: int, variant: str, name: str = "the dataset") -> int:
    """Refuse non-iid-K settings the shard scheme cannot deal; returns shards per class.

    Needs only counts, so the pipeline calls it while planning, before any data is loaded.
    """
    if k > classes:
        raise HeteroFLError(
            "data_split_mode",
            f"non-iid-{k} asks for more labels per client than the {classes} classes of {name}",
            f"non-iid-K with 1 <= K <= {classes}",
        )
    if variant != "reference":
        return -(-k * num_users // classes)
    per_class = k * num_users // classes
    if per_class < 1 or (per_class * classes) % num_users:
        raise HeteroFLError(
            "num_users",
            f"non-iid-{k} (reference) cuts int({k}*{num_users}/{classes}) = "
            f"{per_class} shards per class, which cannot be dealt evenly to {num_users} clients",
            f"num_users with int(K*num_users/{classes}) >= 1 and "
            f"{classes}*int(K*num_users/{classes}) divisible by num_users",
        )
    return per_class


def _validate_shards(dataset: Dataset, k: int, num_users: int, variant: str) -> None:
    classes = dataset.num_classes
    per_class = check_shard_counts(k, num_users, classes, variant, dataset.name)
    smallest = int(np.bincount(dataset.train_y.numpy(), minlength=classes).min())
    if per_class > smallest:
        raise HeteroFLError(
            "num_users",
            f"non-iid-{k} with {num_users} clients needs {per_class} shards per "
            f"class but the smallest class of {dataset.name} has {smallest} samples",
            f"num_users <= {smallest * classes // k}",
        )


def make_partition(dataset: Dataset, scheme: str, num_users: int, seed: int, variant: str = "reference") -> Partition:
    """Split ``dataset`` among ``num_users`` clients by ``scheme`` (a data split mode), seeded by ``seed``.

    ``variant`` only changes ``non-iid-K``: "reference" keeps the reference's collapse quirk (spec section 3,
    step 4), "distinct" gives every client exactly K distinct labels (see ``schemes.distinct_label_split``).
    """
    _validate(dataset, scheme, num_users, seed, variant)
    rng = np.random.default_rng(int(seed))
    train_y, test_y = dataset.train_y.numpy(), dataset.test_y.numpy()
    n_train, n_test = dataset.train_x.shape[0], dataset.test_x.shape[0]
    classes = dataset.num_classes
    if scheme == "none":
        train, test = [np.arange(n_train)], [np.arange(n_test)]
    elif dataset.is_text:  # iid over token rows, dealt round-robin from one permutation
        per = n_train // num_users
        perm = rng.permutation(n_train)
        train = [perm[u : per * num_users : num_users] for u in range(num_users)]
        test = [np.empty(0, dtype=np.int64)] * num_users
    elif scheme == "iid":
        train, test = schemes.iid_split(n_train, num_users, rng), schemes.iid_split(n_test, num_users, rng)
    elif scheme.startswith("non-iid-"):
        k = int(scheme.rsplit("-", 1)[1])
        if variant == "reference":
            per_class = k * num_users // classes
            label_split = schemes.reference_label_split(classes, num_users, per_class, rng)
        else:
            per_class = -(-k * num_users // classes)
            label_split = schemes.distinct_label_split(classes, num_users, k, rng)
        train = schemes.deal_shards(schemes.cut_shards(train_y, classes, per_class), label_split, rng)
        test = schemes.deal_shards(schemes.cut_shards(test_y, classes, per_class), label_split, rng)
        return _build(
            dataset=dataset.name,
            scheme=scheme,
            variant=variant,
            seed=int(seed),
            num_users=num_users,
            dataset_fingerprint=dataset.fingerprint(),
            train_indices=train,
            test_indices=test,
            label_sets=label_split,
        )
    else:
        alpha = float(scheme.split("-", 1)[1])
        train, test = schemes.dirichlet_split(train_y, test_y, classes, num_users, alpha, rng)
    source = dataset.train_x if dataset.is_text else dataset.train_y
    labels = [_held(source, idx) for idx in train]
    return _build(
        dataset=dataset.name,
        scheme=scheme,
        variant=variant,
        seed=int(seed),
        num_users=len(train),
        dataset_fingerprint=dataset.fingerprint(),
        train_indices=train,
        test_indices=test,
        label_sets=labels,
    )


def write_partition(partition: Partition, path: str | Path) -> None:
    """Write atomically (``heterofl.io``: temp file, fsync, rename): a crash leaves the old file or the new one."""
    path = Path(path)
    fields = {
        k: getattr(partition, k)
        for k in (
            "dataset",
            "scheme",
            "variant",
            "seed",
            "num_users",
            "dataset_fingerprint",
            "train_indices",
            "test_indices",
            "label_sets",
        )
    }
    content = _content(fields)
    write_text(path, _dumps({**content, "content_hash": _hash(content)}) + "\n")  # mode from the umask, as open()


def _bad(path: Path, problem: str) -> HeteroFLError:
    return HeteroFLError("partition", f"{path} {problem}", "a file written by write_partition; regenerate it")


def _int_lists(raw: Any, key: str, path: Path) -> tuple[np.ndarray, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(row, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in row) for row in raw
    ):
        raise _bad(path, f"has a malformed {key!r} (expected lists of integers)")
    for user, row in enumerate(raw):
        big = next((v for v in row if not -(2**63) <= v < 2**63), None)
        if big is not None:
            raise _bad(path, f"gives client {user} the index {big} in {key!r}, beyond 64-bit integers")
    return tuple(np.asarray(row, dtype=np.int64) for row in raw)


def read_partition(path: str | Path, dataset: Dataset | None = None) -> Partition:
    """Read and verify a partition file; with ``dataset``, also check it was made for that exact data."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"  # UnicodeDecodeError has no strerror
        raise _bad(path, f"cannot be read ({type(exc).__name__}: {why})") from None
    if not text.strip():
        raise _bad(path, "is empty")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise _bad(path, "does not hold a JSON object")
    missing = [k for k in (*_CONTENT_KEYS, "content_hash") if k not in raw]
    if missing:
        raise _bad(path, f"lacks the keys {', '.join(missing)}")
    extra = sorted(set(raw) - {*_CONTENT_KEYS, "content_hash"})
    if extra:
        raise _bad(path, f"has unknown keys {', '.join(extra)}")
    if raw["format"] != FORMAT_VERSION:
        raise _bad(path, f"has format {raw['format']!r}, this version reads {FORMAT_VERSION}")
    content = {k: raw[k] for k in _CONTENT_KEYS}
    if _hash(content) != raw["content_hash"]:
        raise _bad(path, "fails its content hash (edited, truncated or corrupt)")
    arrays = {k: _int_lists(raw[k], k, path) for k in ("train_indices", "test_indices", "label_sets")}
    if not all(len(a) == raw["num_users"] for a in arrays.values()):
        raise _bad(path, f"does not hold {raw['num_users']} clients in every list")
    partition = Partition(
        dataset=raw["dataset"],
        scheme=raw["scheme"],
        variant=raw["variant"],
        seed=raw["seed"],
        num_users=raw["num_users"],
        dataset_fingerprint=raw["dataset_fingerprint"],
        content_hash=raw["content_hash"],
        **arrays,
    )
    if dataset is not None and (
        dataset.name != partition.dataset or dataset.fingerprint() != partition.dataset_fingerprint
    ):
        raise HeteroFLError(
            "partition",
            f"{path} was made for dataset {partition.dataset} "
            f"({partition.dataset_fingerprint}), not {dataset.name} ({dataset.fingerprint()})",
            f"a partition made from {dataset.name} with this data; regenerate it",
        )
    if dataset is not None:
        check_partition_content(partition, dataset, path)
    return partition


def check_partition_content(partition: Partition, dataset: Dataset, path: str | Path) -> None:
    """Refuse a partition whose indices or label sets do not fit ``dataset``, naming the client.

    The content hash only proves the file is as written; a hand-made or edited file with a recomputed hash
    can still hold indices outside the data, negative or repeated ones, clients sharing samples, or label
    sets (the masked loss's classes) that differ from the labels of the training samples a client holds.
    """
    sizes = {"train_indices": dataset.train_x.shape[0], "test_indices": dataset.test_x.shape[0]}
    for key, size in sizes.items():
        owner = np.full(size, -1, dtype=np.int64)
        for user, indices in enumerate(getattr(partition, key)):
            if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= size):
                bad = int(indices.min()) if int(indices.min()) < 0 else int(indices.max())
                raise _bad_client(path, user, f"{key} holds index {bad}, outside 0..{size - 1} of {dataset.name}")
            unique, counts = np.unique(indices, return_counts=True)
            if len(unique) != len(indices):
                raise _bad_client(path, user, f"{key} repeats index {int(unique[counts > 1][0])}")
            shared = owner[indices]
            if (shared >= 0).any():
                first = int(np.flatnonzero(shared >= 0)[0])
                other, index = int(shared[first]), int(indices[first])
                raise _bad_client(path, user, f"{key} shares index {index} with client {other} (must be disjoint)")
            owner[indices] = user
    source = dataset.train_x if dataset.is_text else dataset.train_y
    for user, (indices, labels) in enumerate(zip(partition.train_indices, partition.label_sets, strict=True)):
        held = _held(source, indices)
        listed = np.unique(labels)
        if len(listed) != len(labels) or not np.array_equal(held, listed):
            raise _bad_client(
                path,
                user,
                f"label set {_short(labels)} does not match the labels {_short(held)} of its training samples",
            )


def _held(source: torch.Tensor, indices: np.ndarray) -> np.ndarray:
    """The distinct labels (or tokens) of ``source`` at ``indices``."""
    import torch

    return np.unique(source[torch.from_numpy(np.asarray(indices, dtype=np.int64))].numpy())


def _short(values: np.ndarray, shown: int = 12) -> str:
    items = [str(int(v)) for v in values[:shown]]
    return "[" + ", ".join(items) + (", ...]" if len(values) > shown else "]")


def _bad_client(path: str | Path, user: int, problem: str) -> HeteroFLError:
    return HeteroFLError(
        "partition", f"{path} client {user}: {problem}", "a file written by 'heterofl partition'; regenerate it"
    )
