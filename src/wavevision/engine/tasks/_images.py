"""Small PIL helpers for prediction files (PIL is imported only when a prediction is drawn)."""
from __future__ import annotations

import colorsys
import io
from typing import Any, Sequence

import torch

__all__ = ["palette", "png_bytes", "side_by_side", "to_pil"]


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct RGB colours (0-255), evenly spread hues at alternating brightness."""
    colours = []
    for i in range(n):
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0 if i % 2 == 0 else 0.75)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def to_pil(image: torch.Tensor) -> Any:
    """A (1 or 3, H, W) image in [0, 1] as a PIL image (grey or RGB)."""
    from PIL import Image

    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    if array.shape[0] == 1:
        return Image.fromarray(array[0].numpy(), mode="L")
    return Image.fromarray(array.permute(1, 2, 0).numpy(), mode="RGB")


def png_bytes(img: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def side_by_side(images: Sequence[Any], labels: Sequence[str]) -> Any:
    """PIL images in a row, each under its label."""
    from PIL import Image, ImageDraw

    gap, header = 8, 16
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    height = max(im.height for im in images) + header
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for im, label in zip(images, labels):
        canvas.paste(im.convert("RGB"), (x, header))
        draw.text((x + 2, 2), label, fill=(0, 0, 0))
        x += im.width + gap
    return canvas
