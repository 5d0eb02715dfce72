"""The image sides the convolutional networks (dcgan, resnet) build, and their stages (not a plugin)."""

import math

#: the side of the innermost maps: 4 for the powers of two (DCGAN), 7 for MNIST's 28, 6 for 48, ...
BASES = (4, 5, 6, 7)
LARGEST = 1024
CHANNELS = (1, 3)


def base_side(side: int) -> int | None:
    """The innermost side b of an image side = b * 2**k (k >= 1, b in 4..7), the stride-2 stages
    halving it: 32 -> 4, 28 -> 7, 48 -> 6; None where there is none (30, 7) or the side is over LARGEST."""
    if not 2 * min(BASES) <= side <= LARGEST:
        return None
    while side % 2 == 0 and side > max(BASES):
        side //= 2
    return side if side in BASES else None


def buildable_sides() -> list[int]:
    """Every image side the networks build, smallest first."""
    return [side for side in range(LARGEST + 1) if base_side(side)]


def feature_maps(side: int, width: int) -> list[int]:
    """Feature maps of each stride-2 stage, from full resolution inwards to the innermost one.

    There are log2(side / base) stages; each halves the resolution and doubles the maps.
    """
    return [width * 2**i for i in range(int(math.log2(side // base_side(side))))]


def check_image_shape(network: str, shape: tuple[int, ...], any_channels: bool = False) -> tuple[int, ...]:
    """`shape` if a convolutional network can build it, else a ValueError naming what it can;
    `any_channels`: a critic that may judge packs of images stacked along the channels (pac)."""
    channels = "channels" if any_channels else "channels 1 or 3"
    if len(shape) != 3 or not (any_channels or shape[0] in CHANNELS) or shape[1] != shape[2] or base_side(shape[1]) is None:
        common = ", ".join(str(s) for s in buildable_sides() if s in (8, 16, 28, 32, 48, 64, 96, 128, 256))
        raise ValueError(
            f"{network} needs square images ({channels}, side, side) whose side halves down to 4..7, "
            f"e.g. {common}; resize the data with its size= option (e.g. --data NAME:size=32)"
        )
    return shape
