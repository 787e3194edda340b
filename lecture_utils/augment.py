"""The named training augmentations, defined once: ranges only, no torch.

:func:`lecture_utils.data.define_transform` (torchvision, PIL images in the loader) and
:func:`lecture_utils.cached.device_augment` (kornia, a batch on the training device) both read
them; a sweep condition names one of them (``AUGMENTATIONS``' keys).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AugmentSpec", "AUGMENTATIONS", "augment_spec", "check_augment_name"]


@dataclass(frozen=True)
class AugmentSpec:
    """Ranges of one augmentation (flip, ColorJitter, RandomAffine), with torchvision's meaning.

    torchvision (``define_transform``) and kornia (``device_augment``) check the ranges.
    """

    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    degrees: tuple[float, float] = (30.0, 70.0)
    translate: tuple[float, float] = (0.1, 0.3)
    scale: tuple[float, float] = (0.5, 0.75)


AUGMENTATIONS: dict[str, AugmentSpec | None] = {
    # the course's: every image turned 30-70 degrees the same way, shrunk to 0.5-0.75, shifted up
    # to 10 % across and 30 % down or up; saturation and hue do nothing to a grey image
    "course": AugmentSpec(),
    # flips, mild brightness/contrast, a small affine centred on the identity
    "light": AugmentSpec(brightness=0.2, contrast=0.2, saturation=0.0, hue=0.0, degrees=(-10.0, 10.0),
                         translate=(0.1, 0.1), scale=(0.9, 1.1)),
    "none": None,
}


def check_augment_name(name: object) -> str:
    """`name` when it is one of ``AUGMENTATIONS``' names; else a ValueError listing them."""
    if not isinstance(name, str) or name not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {name!r}")
    return name


def augment_spec(augment: str | bool | AugmentSpec | None) -> AugmentSpec | None:
    """The augmentation named ``augment`` (course, light, none); True means course, False/None none."""
    if augment is None or augment is False:
        return None
    if augment is True:
        return AUGMENTATIONS["course"]
    if isinstance(augment, AugmentSpec):
        return augment
    if isinstance(augment, str) and augment in AUGMENTATIONS:
        return AUGMENTATIONS[augment]
    raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)} (or True/False), got {augment!r}")
