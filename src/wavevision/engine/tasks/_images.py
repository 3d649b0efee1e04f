"""Small PIL helpers for prediction files (PIL is imported only when a prediction is drawn).

Pictures meant for people (detections, segmentation overlays) are drawn at a readable size:
an image smaller than :data:`READABLE_SIZE` is enlarged by an integer factor first, so that
labels of a 64 or 96 px image neither overlap the objects nor fall off the edge.
"""
from __future__ import annotations

import colorsys
import io
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["BACKGROUND", "READABLE_SIZE", "draw_label", "font", "palette", "png_bytes", "readable_scale",
           "side_by_side", "to_pil", "upscale", "with_legend"]

# Index 0 of every palette: the background of segmentation labels (and unused by detection's
# labels 1..N). A neutral black, as in VOC's masks, so the classes stand out against it.
BACKGROUND = (0, 0, 0)
READABLE_SIZE = 384


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` RGB colours (0-255): index 0 the neutral :data:`BACKGROUND`, then distinct hues
    (golden-ratio steps) at alternating brightness."""
    colours = [BACKGROUND][:n]
    for i in range(n - 1):
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0 if i % 2 == 0 else 0.75)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def readable_scale(height: int, width: int, target: int = READABLE_SIZE) -> int:
    """The integer factor that brings the longer side of a small image to about ``target`` px (1 for larger images)."""
    return max(1, target // max(height, width, 1))


def upscale(image: torch.Tensor, factor: int) -> torch.Tensor:
    """``image`` (..., H, W) enlarged ``factor`` times by pixel repetition (no blur, labels stay exact)."""
    if factor == 1:
        return image
    return image.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


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


def font(size: int) -> Any:
    """PIL's bundled font at ``size`` px (Pillow >= 10.1), else its fixed bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def _ink(colour: Sequence[int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``colour``."""
    r, g, b = colour[:3]
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_label(draw: Any, box: Sequence[float], text: str, colour: Sequence[int], size: Any, face: Any,
               taken: list | None = None) -> tuple[float, float, float, float]:
    """``text`` on a filled tag of ``colour`` at the top-left of ``box``: above it where it fits,
    else just inside, shifted left to stay within an image of ``size`` (width, height), and moved
    down past the tags in ``taken`` (to which it is added) when it would cover one."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    w, h = right - left + 4, bottom - top + 4
    x = min(max(0.0, box[0]), max(0.0, size[0] - w))
    y = box[1] - h if box[1] - h >= 0 else min(box[1], max(0.0, size[1] - h))
    taken = [] if taken is None else taken
    for _ in range(len(taken)):
        hit = next((t for t in taken if _overlaps((x, y, x + w, y + h), t)), None)
        if hit is None or hit[3] + h > size[1]:
            break
        y = hit[3]
    rect = (x, y, x + w, y + h)
    taken.append(rect)
    draw.rectangle(rect, fill=tuple(colour))
    draw.text((x + 2 - left, y + 2 - top), text, fill=_ink(colour), font=face)
    return rect


def with_legend(img: Any, entries: Sequence[tuple[Sequence[int], str]], *, title: str = "") -> Any:
    """``img`` with a white legend column on its right: a colour swatch and a text per entry."""
    from PIL import Image, ImageDraw

    face = font(14)
    row, pad, swatch = 20, 8, 14
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    texts = ([title] if title else []) + [text for _, text in entries]
    text_w = max((measure.textlength(t, font=face) for t in texts), default=0)
    width = int(pad + swatch + 6 + text_w + pad)
    height = max(img.height, pad * 2 + row * len(texts))
    canvas = Image.new("RGB", (img.width + width, height), (255, 255, 255))
    canvas.paste(img.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x, y = img.width + pad, pad
    if title:
        draw.text((x, y), title, fill=(0, 0, 0), font=face)
        y += row
    for colour, text in entries:
        draw.rectangle((x, y + 2, x + swatch, y + 2 + swatch), fill=tuple(colour), outline=(128, 128, 128))
        draw.text((x + swatch + 6, y), text, fill=(0, 0, 0), font=face)
        y += row
    return canvas


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
