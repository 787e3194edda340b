"""Tests of lecture_utils.datasets and .data on tiny data sets written in the test, plus checks of data/sample."""

from __future__ import annotations

import gzip
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lecture_utils import data, datasets
from lecture_utils.data import define_transform, make_loaders, resolution_keys
from lecture_utils.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_STATS,
    SAMPLE_STATS,
    MissingClassWarning,
    UnreadableImageWarning,
    balanced_indices,
    compute_mean_std,
    get_dataset,
    prepare_animals10,
)

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def write_folder(root: Path, per_class: dict[str, int], size: int = 8, split: str = "train") -> None:
    """ImageFolder PNGs: class i's images are filled with the gray value 20 * (i + 1) + k."""
    for i, (name, n) in enumerate(sorted(per_class.items())):
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            Image.new("L", (size, size), 20 * (i + 1) + k).save(folder / f"{k:03d}.png")


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


# --- transforms -------------------------------------------------------------------------------


def test_define_transform_makes_three_channels_from_grayscale():
    out = define_transform(16, None)(Image.new("L", (28, 28), 255))
    assert out.shape == (3, 16, 16)
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.ones_like(out))


def test_define_transform_normalises_with_given_mean_and_std():
    # gray 51 -> 0.2 after scaling; (0.2 - 0.1) / 0.5 = 0.2
    out = define_transform(4, {"mean": [0.1] * 3, "std": [0.5] * 3})(Image.new("L", (4, 4), 51))
    assert torch.allclose(out, torch.full_like(out, 0.2), atol=1e-6)


def test_define_transform_augment_keeps_shape():
    torch.manual_seed(0)
    out = define_transform(32, SAMPLE_STATS, augment=True)(Image.new("L", (28, 28), 128))
    assert out.shape == (3, 32, 32)


def test_define_transform_rejects_stats_without_mean_and_std():
    with pytest.raises(ValueError, match="mean"):
        define_transform(32, {"avg": [0.5]})


def test_resolution_keys_follow_the_course_naming():
    assert resolution_keys([224, 192]) == {"R224": 224, "R192": 192}
    assert resolution_keys(32) == {"R32": 32}
    with pytest.raises(ValueError, match="positive"):
        resolution_keys([0])


# --- statistics -------------------------------------------------------------------------------


def test_compute_mean_std_matches_hand_computed_values(tmp_path):
    # two 8x8 images with gray values 51 and 153: mean 0.4, std 0.2 in every channel
    (tmp_path / "train" / "a").mkdir(parents=True)
    Image.new("L", (8, 8), 51).save(tmp_path / "train" / "a" / "0.png")
    Image.new("L", (8, 8), 153).save(tmp_path / "train" / "a" / "1.png")
    stats = compute_mean_std(get_dataset("animals10", "train", root=tmp_path))
    assert stats == {"mean": [0.4, 0.4, 0.4], "std": [0.2, 0.2, 0.2]}


def test_sample_stats_equal_the_recomputed_value():
    recomputed = compute_mean_std(get_dataset("sample", "train"))
    np.testing.assert_allclose(recomputed["mean"], SAMPLE_STATS["mean"], atol=1e-4)
    np.testing.assert_allclose(recomputed["std"], SAMPLE_STATS["std"], atol=1e-4)


@pytest.mark.skipif(not all(datasets.find_fashion_mnist_raw(s) for s in ("train", "val")),
                    reason="needs the Fashion-MNIST raw files (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_stats_are_those_of_its_training_images():
    images = datasets.get_dataset("fashion_mnist", "train").images.astype(np.float64) / 255.0
    assert FASHION_MNIST_STATS["mean"] == pytest.approx([images.mean()] * 3, abs=1e-4)
    assert FASHION_MNIST_STATS["std"] == pytest.approx([images.std()] * 3, abs=1e-4)


# --- the embedded sample ----------------------------------------------------------------------


def test_sample_has_300_train_and_60_val_images_per_class():
    for split, n in (("train", 300), ("val", 60)):
        counts = {d.name: len(list(d.glob("*.png"))) for d in (SAMPLE / split).iterdir() if d.is_dir()}
        assert counts == {c: n for c in FASHION_MNIST_CLASSES}


def test_sample_labels_follow_fashion_mnist_order():
    ds = get_dataset("sample", "val")
    assert ds.classes == list(FASHION_MNIST_CLASSES)
    assert ds.classes[9] == "ankle_boot" and ds.class_to_idx["t-shirt_top"] == 0


def test_sample_root_follows_lecture_data_root(tmp_path, monkeypatch):
    write_folder(tmp_path / "sample", {"x": 1, "y": 1}, split="val")
    monkeypatch.setenv("LECTURE_DATA_ROOT", str(tmp_path))
    assert len(get_dataset("sample", "val")) == 2


# --- Fashion-MNIST raw files ------------------------------------------------------------------


def test_fashion_mnist_reads_local_gz_idx_files(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST_DIRS", [])
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 4]))
    ds = get_dataset("fashion_mnist", "val", root=tmp_path)
    assert len(ds) == 3
    image, label = ds[2]
    assert label == 4 and image.mode == "RGB" and image.size == (28, 28)
    assert np.array_equal(np.asarray(image)[..., 0], images[2])


def test_fashion_mnist_without_files_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST_DIRS", [])
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*download=True"):
        get_dataset("fashion_mnist", "train", root=tmp_path)


def test_cifar10_without_files_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        get_dataset("cifar10", "train", root=tmp_path)


def test_get_dataset_rejects_unknown_name_and_split():
    with pytest.raises(ValueError, match="sample, fashion_mnist, cifar10, animals10"):
        get_dataset("mnist", "train")
    with pytest.raises(ValueError, match="train, val"):
        get_dataset("sample", "test")


# --- folders and bad files --------------------------------------------------------------------


def test_missing_split_folder_error_names_the_expected_layout(tmp_path):
    write_folder(tmp_path, {"cat": 1, "dog": 1}, split="train")
    with pytest.raises(FileNotFoundError, match=r"no val/ folder.*<root>/val/<class>/"):
        get_dataset("animals10", "val", root=tmp_path)


def test_images_without_class_folders_error_names_the_layout(tmp_path):
    (tmp_path / "train").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "train" / "0.png")
    with pytest.raises(FileNotFoundError, match="one folder per class"):
        get_dataset("animals10", "train", root=tmp_path)


def test_unreadable_image_is_reported_with_its_path_and_skipped(tmp_path):
    write_folder(tmp_path, {"cat": 3, "dog": 3})
    bad = tmp_path / "train" / "dog" / "001.png"
    bad.write_bytes(b"not a png")
    ds = get_dataset("animals10", "train", root=tmp_path, transform=define_transform(8, None))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=datasets.collate_skip_none)
    with pytest.warns(UnreadableImageWarning, match=str(bad)):
        seen = sum(len(y) for x, y in loader)
    assert seen == 5


def test_collate_skip_none_returns_none_for_an_all_bad_batch():
    assert datasets.collate_skip_none([None, None]) is None


# --- subsets and loaders ----------------------------------------------------------------------


def test_balanced_indices_take_n_per_class_and_are_seeded():
    targets = [0] * 10 + [1] * 6 + [2] * 2
    chosen = balanced_indices(targets, 3, seed=1)
    assert [targets[i] for i in chosen] == [0, 0, 0, 1, 1, 1, 2, 2]  # class 2 has only 2
    assert chosen == balanced_indices(targets, 3, seed=1)
    assert chosen != balanced_indices(targets, 3, seed=2)
    with pytest.raises(ValueError, match="positive"):
        balanced_indices(targets, 0)


def test_make_loaders_keys_batch_size_and_subset(tmp_path):
    write_folder(tmp_path, {"a": 5, "b": 5, "c": 5}, size=10, split="train")
    write_folder(tmp_path, {"a": 2, "b": 2, "c": 2}, size=10, split="val")
    loaders = make_loaders("animals10", [16, 12], batch_size=4, root=tmp_path, subset=(3, None), augment=False)
    assert set(loaders) == {"train", "test"}
    assert list(loaders["train"]) == ["R16", "R12"]
    x, y = next(iter(loaders["train"]["R12"]))
    assert x.shape == (4, 3, 12, 12) and y.shape == (4,)
    assert len(loaders["train"]["R16"].dataset) == 9  # 3 per class
    assert len(loaders["test"]["R16"].dataset) == 6
    assert loaders["train"]["R16"].dataset.indices == loaders["train"]["R12"].dataset.indices


def test_make_loaders_default_batch_size_is_192(tmp_path):
    write_folder(tmp_path, {"a": 1, "b": 1}, split="train")
    write_folder(tmp_path, {"a": 1, "b": 1}, split="val")
    loaders = make_loaders("animals10", 8, root=tmp_path)
    assert loaders["train"]["R8"].batch_size == 192 and loaders["test"]["R8"].batch_size == 192


def test_train_loader_shuffle_is_seeded(tmp_path):
    write_folder(tmp_path, {"a": 8, "b": 8}, size=4, split="train")
    write_folder(tmp_path, {"a": 1, "b": 1}, size=4, split="val")

    def first_epoch_pixels(seed):
        loader = make_loaders("animals10", 4, batch_size=16, root=tmp_path, augment=False, seed=seed,
                              normal_val={"mean": [0.0] * 3, "std": [1.0] * 3})["train"]["R4"]
        return next(iter(loader))[0][:, 0, 0, 0]

    assert torch.equal(first_epoch_pixels(0), first_epoch_pixels(0))
    assert not torch.equal(first_epoch_pixels(0), first_epoch_pixels(1))


def test_make_loaders_rejects_bad_batch_size_and_subset(tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        make_loaders("sample", 32, batch_size=0)
    with pytest.raises(ValueError, match="subset"):
        make_loaders("sample", 32, subset="all")


# --- Animals-10 -------------------------------------------------------------------------------


def write_raw_animals(src: Path, n: int = 10) -> None:
    for italian in datasets.ANIMALS10_TRANSLATION:
        folder = src / "raw-img" / italian
        folder.mkdir(parents=True)
        for k in range(n):
            Image.new("RGB", (6, 6), (k, 0, 0)).save(folder / f"{italian}_{k}.jpeg")
        (folder / "notes.txt").write_text("not an image")


def test_prepare_animals10_translates_names_and_splits_each_class(tmp_path):
    write_raw_animals(tmp_path / "kaggle")
    counts = prepare_animals10(tmp_path / "kaggle", tmp_path / "out", val_fraction=0.2, seed=0)
    english = ["dog", "horse", "elephant", "butterfly", "chicken", "cat", "cow", "sheep", "spider", "squirrel"]
    assert counts == {"train": {e: 8 for e in english}, "val": {e: 2 for e in english}}
    train = {p.name for p in (tmp_path / "out" / "train" / "dog").iterdir()}
    val = {p.name for p in (tmp_path / "out" / "val" / "dog").iterdir()}
    assert len(train) == 8 and len(val) == 2 and not train & val
    ds = get_dataset("animals10", "val", root=tmp_path / "out")
    assert sorted(ds.classes) == sorted(english) and len(ds) == 20


def test_prepare_animals10_split_is_seeded(tmp_path):
    write_raw_animals(tmp_path / "kaggle")
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        prepare_animals10(tmp_path / "kaggle" / "raw-img", tmp_path / name, seed=seed, link=True)
    names = {n: sorted(p.name for p in (tmp_path / n / "val" / "cat").iterdir()) for n in "abc"}
    assert names["a"] == names["b"] and names["a"] != names["c"]


def test_prepare_animals10_rejects_a_wrong_layout(tmp_path):
    (tmp_path / "raw-img" / "cane").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="missing.*raw-img/<cane"):
        prepare_animals10(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="val_fraction"):
        prepare_animals10(tmp_path, tmp_path / "out", val_fraction=1.0)


def test_nothing_is_downloaded_by_default(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("download attempted")

    monkeypatch.setattr(datasets.datasets, "FashionMNIST", no_download)
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST_DIRS", [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FileNotFoundError):
            get_dataset("fashion_mnist", "val", root=tmp_path)


# --- train and val share one class list -------------------------------------------------------


def small_sample_copy(root: Path, per_class: int = 2) -> Path:
    """`per_class` images of every class of data/sample, in both splits, copied under `root`."""
    for split in ("train", "val"):
        for folder in sorted((SAMPLE / split).iterdir()):
            dst = root / split / folder.name
            dst.mkdir(parents=True)
            for f in sorted(folder.iterdir())[:per_class]:
                shutil.copy2(f, dst / f.name)
    return root


def test_missing_val_class_keeps_training_labels(tmp_path):
    root = small_sample_copy(tmp_path)
    shutil.rmtree(root / "val" / "coat")
    with pytest.warns(MissingClassWarning, match=r"val has no images of class\(es\) coat \(4\)"):
        val = get_dataset("sample", "val", root=root)
    assert val.classes == list(FASHION_MNIST_CLASSES)  # t-shirt_top=0 ... ankle_boot=9, coat=4 kept
    assert sorted(set(val.targets)) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    for path, label in val.samples:
        assert FASHION_MNIST_CLASSES[label] == Path(path).parent.name


def test_missing_val_class_keeps_training_labels_in_make_loaders(tmp_path):
    root = small_sample_copy(tmp_path)
    shutil.rmtree(root / "val" / "coat")
    with pytest.warns(MissingClassWarning):
        loaders = make_loaders("sample", [28], batch_size=64, root=root)
    labels = torch.cat([y for _x, y in loaders["test"]["R28"]])
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]


def test_missing_val_class_keeps_training_labels_with_generic_folder_names(tmp_path):
    classes = {"cls00_ant": 2, "cls01_bee": 2, "cls02_cat": 2, "cls03_dog": 2}
    write_folder(tmp_path, classes, split="train")
    write_folder(tmp_path, classes, split="val")
    shutil.rmtree(tmp_path / "val" / "cls01_bee")
    for name in ("sample", "animals10"):  # every ImageFolder data set name
        with pytest.warns(MissingClassWarning, match=r"cls01_bee \(1\)"):
            val = get_dataset(name, "val", root=tmp_path)
        assert val.class_to_idx == {"cls00_ant": 0, "cls01_bee": 1, "cls02_cat": 2, "cls03_dog": 3}
        assert val.targets == [0, 0, 2, 2, 3, 3]


def test_empty_val_class_folder_counts_as_a_missing_class(tmp_path):
    root = small_sample_copy(tmp_path)
    for f in (root / "val" / "coat").iterdir():
        f.unlink()
    with pytest.warns(MissingClassWarning, match=r"coat \(4\)"):
        val = get_dataset("sample", "val", root=root)
    assert 4 not in val.targets and len(val.classes) == 10


def test_extra_val_class_is_an_error_naming_the_classes_of_both_splits(tmp_path):
    root = small_sample_copy(tmp_path)
    shutil.copytree(root / "val" / "bag", root / "val" / "hat")
    with pytest.raises(ValueError, match=r"class folder\(s\) \['hat'\] that .*train lacks") as exc:
        make_loaders("sample", [28], root=root)
    message = str(exc.value)
    assert "train classes: ['t-shirt_top', 'trouser'," in message
    assert "val classes: ['ankle_boot', 'bag', 'coat', 'dress', 'hat'," in message


def test_complete_val_split_gives_no_warning(tmp_path):
    root = small_sample_copy(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        val = get_dataset("sample", "val", root=root)
    assert sorted(set(val.targets)) == list(range(10))


def test_fashion_mnist_splits_share_the_official_class_order(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST_DIRS", [])
    images = np.zeros((2, 28, 28))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 9]))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([4, 9]))  # no other class in val
    train = get_dataset("fashion_mnist", "train", root=tmp_path)
    val = get_dataset("fashion_mnist", "val", root=tmp_path)
    assert train.class_to_idx == val.class_to_idx
    assert val.class_to_idx["t-shirt_top"] == 0 and val.class_to_idx["coat"] == 4
    assert [val[i][1] for i in range(2)] == [4, 9]
