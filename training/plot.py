"""Per-task metrics across adapter versions as a PNG line chart (drawn with Pillow)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
]


def plot_versions(
    results: dict[str, dict[str, float]], path: Path, title: str = "strict metric"
) -> None:
    """``results``: version label -> task -> value in [0, 1], versions in order."""
    width, height, left, right, top, bottom = 900, 520, 70, 170, 50, 60
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=14)
    draw.text((left, 15), title, fill="black", font=ImageFont.load_default(size=18))
    x0, x1, y0, y1 = left, width - right, height - bottom, top
    draw.line((x0, y0, x1, y0), fill="black")
    draw.line((x0, y0, x0, y1), fill="black")
    for i in range(6):
        value = i / 5
        y = y0 - (y0 - y1) * value
        draw.line((x0 - 4, y, x1, y), fill=(225, 225, 225))
        draw.text((x0 - 40, y - 8), f"{value:.1f}", fill="black", font=font)
    versions = list(results)
    step = (x1 - x0) / max(1, len(versions) - 1) if len(versions) > 1 else 0
    xs = [x0 + step * i if len(versions) > 1 else (x0 + x1) / 2 for i in range(len(versions))]
    for x, version in zip(xs, versions, strict=True):
        draw.text((x - 20, y0 + 10), version, fill="black", font=font)
    tasks = sorted({t for scores in results.values() for t in scores})
    for k, task in enumerate(tasks):
        colour = PALETTE[k % len(PALETTE)]
        points = [
            (x, y0 - (y0 - y1) * results[v][task])
            for x, v in zip(xs, versions, strict=True)
            if task in results[v]
        ]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3)
        for x, y in points:
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
        legend_y = top + 22 * k + 8
        draw.line((x1 + 20, legend_y, x1 + 40, legend_y), fill=colour, width=3)
        draw.text((x1 + 46, legend_y - 8), task, fill=colour, font=font)
    img.save(path)
