"""The cached data path against the course's pipeline (torchvision transforms.v2 on PIL images)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageDraw
from torch.utils.data import Dataset
from torchvision.transforms import v2

from lecture_utils import augment, cached, data, datasets
from lecture_utils.cached import CachedLoader

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def _picture(seed: int, width: int, height: int) -> Image.Image:
    """A colour gradient with a few discs: colour, edges and flat areas, like a photo at a glance."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    image = Image.fromarray(((a + (b - a) * ramp) * np.ones((height, 1, 1))).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 40)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


class _Pictures(Dataset):
    """(PIL image, label) items, landscape and portrait, as ImageFolder gives them."""

    def __init__(self, n: int, size: tuple[int, int] = (160, 120)) -> None:
        self.images = [_picture(i, *(size if i % 2 == 0 else size[::-1])) for i in range(n)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return self.images[index], index % 10


def _loader(dataset: Dataset, resolution: int, **kwargs) -> CachedLoader:
    cache = cached.build_cache(dataset, resolution)
    kwargs.setdefault("device", "cpu")
    return CachedLoader(cache.images, cache.labels, resolution=resolution, **kwargs)


def _cached(*args, **kwargs):
    return data.make_loaders(*args, cached=True, device="cpu", **kwargs)


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A small ImageFolder (3 classes x 4 images per split) copied from the embedded sample."""
    for split in ("train", "val"):
        for cls in ("bag", "coat", "trouser"):
            dst = tmp_path / split / cls
            dst.mkdir(parents=True)
            for f in sorted((SAMPLE / split / cls).iterdir())[:4]:
                shutil.copy2(f, dst / f.name)
    return tmp_path


# --------------------------------------------------------------------------- augmentation parameters


@pytest.mark.parametrize("name", ["course", "light"])
def test_each_named_augmentation_gives_torchvision_and_kornia_the_same_ranges(name):
    steps = {type(t).__name__: t for t in data.define_transform(32, None, augment=name).transforms}
    jitter, affine = steps["ColorJitter"], steps["RandomAffine"]
    k_flip, k_jitter, k_affine = cached.device_augment(name)
    assert steps["RandomHorizontalFlip"].p == k_flip.p == augment.AUGMENTATIONS[name].flip_p
    # kornia's draws of 4000 images fill torchvision's ranges (identity where torchvision has none)
    torch.manual_seed(0)
    drawn = k_jitter.forward_parameters(torch.Size([4000, 3, 8, 8]))
    for field in ("brightness", "contrast", "saturation", "hue"):
        factor = drawn[f"{field}_factor"]
        low, high = getattr(jitter, field) or ((0.0, 0.0) if field == "hue" else (1.0, 1.0))
        assert low - 1e-6 <= factor.min() and factor.max() <= high + 1e-6, field
        assert factor.min() < low + 0.01 and factor.max() > high - 0.01, field
    drawn = k_affine.forward_parameters(torch.Size([4000, 3, 100, 100]))
    assert affine.degrees[0] <= drawn["angle"].min() and drawn["angle"].max() <= affine.degrees[1]
    assert affine.scale[0] <= drawn["scale"].min() and drawn["scale"].max() <= affine.scale[1]
    for axis, fraction in enumerate(affine.translate):  # torchvision's: a fraction of width, then of height
        shift = drawn["translations"][:, axis].abs()
        assert shift.max() <= fraction * 100 and shift.max() > 0.95 * fraction * 100
    assert affine.shear is None and float(drawn["shear_x"].abs().max()) == 0.0
    assert cached.device_augment("none") is None


def test_an_unknown_augmentation_name_is_refused_with_the_allowed_ones():
    for check in (augment.augment_spec, augment.check_augment_name, cached.device_augment):
        with pytest.raises(ValueError, match="course, light, none"):
            check("strong")


def test_identical_images_get_different_augmentations_within_a_batch():
    image = _picture(0, 160, 120)

    class Same(Dataset):
        def __len__(self) -> int:
            return 16

        def __getitem__(self, index: int):
            return image, 0

    x, _ = next(iter(_loader(Same(), 48, batch_size=16, augment=True)))
    flat = x.reshape(16, -1)
    distances = torch.cdist(flat, flat) + torch.eye(16) * 1e9
    assert distances.min() > 1.0  # no two of the 16 copies came out alike
    # transforms.v2 on a batch tensor draws once: the 16 copies would be identical
    batch = torch.stack([TF.to_dtype(TF.to_image(image), torch.float32, scale=True)] * 16)
    once = v2.RandomAffine(degrees=(30, 70), translate=(0.1, 0.3), scale=(0.5, 0.75))(batch)
    assert torch.equal(once[0], once[15])


@pytest.mark.parametrize("name", ["course", "light"])
def test_augmented_statistics_match_the_torchvision_pipeline(name):
    # the same 40 pictures through define_transform(augment=name) and through the cached path, 20
    # times each: per-channel mean and std of all pixels agree within 0.02 (pixel values in [0, 1])
    pictures, reps, r = _Pictures(40, (128, 96)), 20, 48
    course = data.define_transform(r, None, augment=name)
    torch.manual_seed(0)
    expected = torch.stack([course(pictures[i][0]) for _ in range(reps) for i in range(len(pictures))])
    loader = _loader(pictures, r, batch_size=40, augment=name, seed=0)
    got = torch.cat([x for _ in range(reps) for x, _y in loader])
    assert got.shape == expected.shape
    assert torch.allclose(got.mean(dim=(0, 2, 3)), expected.mean(dim=(0, 2, 3)), atol=0.02)
    assert torch.allclose(got.std(dim=(0, 2, 3)), expected.std(dim=(0, 2, 3)), atol=0.02)


@pytest.mark.parametrize("resolution", [28, 32, 12])
def test_validation_batches_equal_the_course_transform(resolution):
    # the sample's 28-px images: kept as they are (28), enlarged (32) or shrunk (12) per batch. PIL rounds
    # its resized pixels to 8 bits, the device path does not: they agree within one grey level
    loaders = _cached("sample", [resolution], batch_size=8, subset=(2, 2))
    course = data.make_loaders("sample", [resolution], batch_size=8, subset=(2, 2))
    got = list(loaders["test"][f"R{resolution}"])
    expected = list(course["test"][f"R{resolution}"])
    assert len(got) == len(expected) == 3
    one_level = 1 / 255 / min(datasets.SAMPLE_STATS["std"])
    for (x, y), (ex, ey) in zip(got, expected):
        assert torch.equal(y, ey) and x.shape == ex.shape
        assert torch.allclose(x, ex, atol=1e-5 if resolution == 28 else one_level + 1e-5)


# --------------------------------------------------------------------------- the cache


def test_cache_is_decoded_once_and_reused_across_epochs(monkeypatch, sample_copy):
    calls = []
    decode = cached._decode

    def counting(dataset, index, size, mode):
        calls.append(index)
        return decode(dataset, index, size, mode)

    monkeypatch.setattr(cached, "_decode", counting)
    loaders = _cached("sample", [32, 48], batch_size=5, root=sample_copy)
    assert len(calls) == 12 + 12  # every train and val image once, for both resolutions together
    assert loaders["train"]["R32"].images is loaders["train"]["R48"].images  # one cache, not one per resolution
    assert tuple(loaders["train"]["R32"].images.shape) == (12, 3, 28, 28)  # at its stored size
    for _epoch in range(3):
        for split in ("train", "test"):
            for loader in loaders[split].values():
                assert sum(len(y) for _x, y in loader) == 12
    assert len(calls) == 24


def test_disk_cache_is_read_back_and_rebuilt_when_a_file_changes(sample_copy, tmp_path):
    dataset = datasets.get_dataset("sample", "train", root=sample_copy)
    first = cached.build_cache(dataset, 32, cache_dir=tmp_path / "cache")
    again = cached.build_cache(dataset, 32, cache_dir=tmp_path / "cache")
    assert (first.decoded, again.decoded) == (12, 0)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    touched = dataset.samples[0][0]
    stat = os.stat(touched)
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cached.build_cache(dataset, 32, cache_dir=tmp_path / "cache").decoded == 12


def test_unreadable_files_are_left_out_of_the_cache(sample_copy):
    (sample_copy / "train" / "bag" / "broken.png").write_bytes(b"not a png")
    dataset = datasets.get_dataset("sample", "train", root=sample_copy)
    assert len(dataset) == 13
    with pytest.warns(datasets.UnreadableImageWarning, match="broken.png"):
        cache = cached.build_cache(dataset, 16, num_threads=1)
    assert len(cache) == 12 and cache.images.shape == (12, 3, 16, 16)  # 28 px is more than needed: shrunk once
    assert cache.labels.tolist() == sorted(cache.labels.tolist())


def test_caches_stay_on_a_16_gb_gpu_only_within_a_quarter_of_it(monkeypatch, capsys):
    # a 16 GiB GPU with 15 GiB free: the budget is 4 GiB, so training keeps three quarters
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (15 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    cuda = torch.device("cuda")
    assert cached.place_caches(4 * 2**30, cuda)
    assert "4096 MiB on cuda (budget 4.00 GiB: 25% of 16.0 GiB" in capsys.readouterr().out
    with pytest.warns(cached.StreamingFallbackWarning, match="over the device's cache budget"):
        assert not cached.place_caches(4 * 2**30 + 1, cuda)
    assert "in host memory" in capsys.readouterr().out
    assert cached.place_caches(2**40, torch.device("cpu"))  # on the CPU the cache is already where it is used


def test_memory_pytorch_holds_unused_counts_as_free(monkeypatch, capsys):
    # the driver sees 1 GiB free, but PyTorch keeps 3 GiB reserved and unused: a 2 GiB cache still fits
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 * 2**30, 16 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 5 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 2 * 2**30)
    assert cached.place_caches(2 * 2**30, torch.device("cuda"))
    assert "4.00 GiB free including what PyTorch holds unused" in capsys.readouterr().out


def test_fashion_mnist_is_cached_at_28_px_grey_without_decoding():
    pixels = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)

    class Raw(Dataset):  # what datasets.FashionMNISTRaw holds: the idx arrays
        images, targets = pixels, [i % 10 for i in range(30)]

        def __len__(self):
            return 30

        def __getitem__(self, index):
            raise AssertionError("decoded an image")

    cache = cached.build_cache(Raw(), 224, indices=[3, 1, 2])
    assert cache.images.shape == (3, 1, 28, 28) and cache.decoded == 0 and cache.nbytes == 3 * 784
    assert torch.equal(cache.images[0, 0], torch.from_numpy(pixels[3])) and cache.labels.tolist() == [3, 1, 2]


def test_one_cache_gives_every_resolution_resized_per_batch():
    grey = torch.arange(4 * 28 * 28, dtype=torch.float32).reshape(4, 1, 28, 28).remainder(256).to(torch.uint8)
    for resolution in (224, 96, 28, 12):
        x, _ = next(iter(CachedLoader(grey, torch.zeros(4), resolution=resolution, batch_size=4, device="cpu")))
        assert x.shape == (4, 3, resolution, resolution)
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])  # grey made 3-channel
    x, _ = next(iter(CachedLoader(grey, torch.zeros(4), resolution=28, batch_size=4, device="cpu")))
    assert torch.equal(x[:, :1], grey.float() / 255)  # at the stored size, the pixels as they are


def test_every_resolution_reads_one_device_copy_of_each_split():
    # on the meta device (shapes only) every .to() makes a new tensor, as on CUDA: five loaders that
    # each moved the cache would hold five copies of it
    loaders = data.make_loaders("sample", [28, 24, 20, 16, 12], batch_size=8, subset=(2, 2), cached=True,
                                device="meta", augment=False)
    for split, by_resolution in loaders.items():
        copies = {id(loader.images) for loader in by_resolution.values()}
        assert len(copies) == 1, f"{split}: {len(copies)} copies of the cache on the device"
        assert next(iter(by_resolution.values())).images.device.type == "meta"


def test_a_cache_kept_in_host_memory_is_pinned_once(monkeypatch):
    # counting mock of pinning (no CUDA here): pin_memory copies, as the real one does for a pageable tensor
    pinned: list[torch.Tensor] = []

    def pin(self):
        copy = self.clone()
        pinned.append(copy)
        return copy

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self, device=None: any(self is t for t in pinned))
    images, labels = torch.zeros(6, 1, 28, 28, dtype=torch.uint8), torch.arange(6)
    cuda = torch.device("cuda")
    placed = cached.place_cache(images, labels, cuda, resident=False)
    assert len(pinned) == 2  # the images and the labels, once each
    for _resolution in (224, 192, 160, 128, 96):  # what every further loader of the split does with it
        again = cached.place_cache(*placed, cuda, resident=False)
        assert again[0] is placed[0] and again[1] is placed[1]
    assert len(pinned) == 2


def test_make_loaders_places_each_split_once_for_all_resolutions(monkeypatch):
    calls = []
    real = data.place_cache
    monkeypatch.setattr(data, "place_cache", lambda *args: calls.append(args[2]) or real(*args))
    data.make_loaders("sample", [28, 20, 12], batch_size=8, subset=(2, 2), cached=True, device="cpu")
    assert len(calls) == 2  # train and val, not one per resolution


def test_batches_from_a_pinned_cache_are_gathered_into_pinned_memory(monkeypatch):
    # index_select from a pinned tensor returns pageable memory, whose non_blocking copy to CUDA waits
    images = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(10)
    expected = list(CachedLoader(images, labels, batch_size=4, shuffle=True, device="cpu"))
    buffers = []

    def pinned_empty(shape, dtype):
        buffers.append(tuple(shape))
        return torch.empty(tuple(shape), dtype=dtype)

    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self, device=None: True)
    monkeypatch.setattr(cached, "_pinned_empty", pinned_empty)
    got = list(CachedLoader(images, labels, batch_size=4, shuffle=True, device="cpu"))
    assert buffers == [(4, 1, 28, 28), (4,), (4, 1, 28, 28), (4,), (2, 1, 28, 28), (2,)]
    for (x, y), (x_ref, y_ref) in zip(got, expected, strict=True):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


# --------------------------------------------------------------------------- the loader


def test_loader_batches_are_normalised_float32():
    pictures = _Pictures(10)
    loader = _loader(pictures, 40, batch_size=4, augment=True, mean=[0.5] * 3, std=[0.25] * 3)
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and loader.batch_size == 4
    assert [len(y) for _x, y in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 3, 40, 40) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    # black fill (0) normalised: (0 - 0.5) / 0.25
    assert x.min().item() == pytest.approx(-2.0)
    dropped = _loader(pictures, 40, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and [len(y) for _x, y in dropped] == [4, 4]
    assert len(loader.dataset) == 10


def test_shuffle_is_seeded_and_changes_every_epoch():
    pictures = _Pictures(12)
    a = _loader(pictures, 16, batch_size=12, shuffle=True, seed=5)
    b = _loader(pictures, 16, batch_size=12, shuffle=True, seed=5)
    first, second = [y for _x, y in a][0], [y for _x, y in a][0]
    assert torch.equal(first, [y for _x, y in b][0])
    assert not torch.equal(first, second)
    a.set_epoch(0)
    assert torch.equal([y for _x, y in a][0], first)


def test_cached_and_plain_loaders_visit_the_images_in_the_same_order_and_augment_by_epoch():
    cached = _cached("sample", [16], batch_size=7, subset=(3, 1), augment="light", seed=4)["train"]["R16"]
    plain = data.make_loaders("sample", [16], batch_size=7, subset=(3, 1), augment="light", seed=4)["train"]["R16"]
    for epoch in (0, 1, 0):
        cached.set_epoch(epoch)
        plain.sampler.set_epoch(epoch)
        assert torch.equal(torch.cat([y for _x, y in cached]), torch.cat([y for _x, y in plain]))
    cached.set_epoch(1)
    torch.manual_seed(0)  # the augmentation of an epoch does not depend on the caller's random state
    first = next(iter(cached))[0]
    cached.set_epoch(1)
    torch.manual_seed(1)
    assert torch.equal(next(iter(cached))[0], first)
    assert not torch.equal(next(iter(cached))[0], first)  # epoch 2 draws again


def test_cached_loaders_have_the_shape_of_the_plain_ones():
    fast = _cached("sample", [32, 48], batch_size=16, subset=(3, 2))
    course = data.make_loaders("sample", [32, 48], batch_size=16, subset=(3, 2))
    assert {s: sorted(d) for s, d in fast.items()} == {s: sorted(d) for s, d in course.items()}
    for split in ("train", "test"):
        for key in ("R32", "R48"):
            assert len(fast[split][key]) == len(course[split][key])
            assert len(fast[split][key].dataset) == len(course[split][key].dataset)
    assert fast["train"]["R32"].augment is not None and fast["test"]["R32"].augment is None


@pytest.mark.parametrize("call", [
    lambda: _cached("imagenet", [32]),
    lambda: _cached("sample", [0]),
    lambda: _cached("sample", [32], batch_size=0),
    lambda: data.make_loaders("sample", [32], cached=True, device="tpu:x"),
    lambda: _cached("sample", [32], num_workers=-1),
    lambda: cached.device_augment(augment.AugmentSpec(hue=0.7)),
    lambda: cached.device_augment(augment.AugmentSpec(degrees=(70, 30))),
    lambda: CachedLoader(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4), augment="yes"),
    lambda: CachedLoader(torch.zeros(4, 3, 8, 8), torch.zeros(4)),
    lambda: CachedLoader(torch.zeros(4, 2, 8, 8, dtype=torch.uint8), torch.zeros(4)),
    lambda: CachedLoader(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(3)),
    lambda: CachedLoader(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4), batch_size=8,
                       drop_last=True),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_model_trainer_trains_on_cached_loaders():
    from lecture_utils.trainer import ModelTrainer

    loaders = _cached("sample", [16], batch_size=10, subset=(2, 1))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 10))
    trainer = ModelTrainer(device="cpu")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    before = [p.detach().clone() for p in model.parameters()]
    trainer.model_train(model, loaders["train"]["R16"], criterion, optimizer, 0)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))  # it took steps
    val_loss, val_acc = trainer.model_evaluate(model, loaders["test"]["R16"], criterion, 0)
    # the trainer's numbers are the plain computation over every validation image the loader yields
    with torch.no_grad():
        batches = list(loaders["test"]["R16"])
        logits = torch.cat([model(x.float()) for x, _ in batches])
        labels = torch.cat([y for _, y in batches])
    assert len(labels) == 10  # one validation image per class
    assert val_loss == pytest.approx(float(criterion(logits, labels)), rel=1e-4)
    assert val_acc == pytest.approx(float((logits.argmax(1) == labels).float().mean()))


# --------------------------------------------------------------------------- train and val class lists


def test_cached_val_labels_keep_training_labels_when_a_class_is_missing(sample_copy):
    shutil.rmtree(sample_copy / "val" / "coat")  # train: bag 0, coat 1, trouser 2 (alphabetical)
    with pytest.warns(datasets.MissingClassWarning, match=r"coat \(1\)"):
        loaders = _cached("sample", [32], batch_size=16, root=sample_copy)
    val_labels = torch.cat([y for _x, y in loaders["test"]["R32"]]).tolist()
    train_labels = torch.cat([y for _x, y in loaders["train"]["R32"]]).tolist()
    assert sorted(val_labels) == [0, 0, 0, 0, 2, 2, 2, 2]  # before: trouser got coat's label 1
    assert sorted(set(train_labels)) == [0, 1, 2]


def test_cached_path_refuses_an_extra_val_class(sample_copy):
    shutil.copytree(sample_copy / "val" / "bag", sample_copy / "val" / "sandal")
    with pytest.raises(ValueError, match=r"\['sandal'\] that .*train lacks"):
        _cached("sample", [32], batch_size=16, root=sample_copy)
