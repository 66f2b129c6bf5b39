from pathlib import Path

from PIL import Image

from training.plot import PALETTE, plot_versions


def test_plot_draws_one_coloured_line_per_task(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    plot_versions({"base": {"SA": 0.1, "AP": 0.5}, "g@v1": {"SA": 0.45, "AP": 0.6}}, path)
    img = Image.open(path).convert("RGB")
    colours = {c for _, c in img.getcolors(maxcolors=100_000) or []}
    assert PALETTE[0] in colours and PALETTE[1] in colours  # AP and SA lines
    assert img.size == (900, 520)
