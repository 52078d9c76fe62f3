"""common.plots: a figure is written in the format its name asks for, whole or not at all."""

from __future__ import annotations

import pytest

from common.plots import pyplot, save_figure


def _figure():
    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_format_follows_the_suffix_and_the_figure_is_closed(tmp_path):
    plt = pyplot()
    png = save_figure(_figure(), tmp_path / "sub" / "a.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "a.pdf").exists() is False
    assert save_figure(_figure(), tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    assert save_figure(_figure(), tmp_path / "noext").read_bytes()[:4] == b"\x89PNG"
    assert plt.get_fignums() == []


def test_a_failed_render_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    with pytest.raises(ValueError):
        save_figure(_figure(), tmp_path / "a.notaformat")
    fig = _figure()
    fig.axes[0].set_title("$\\notacommand$")  # mathtext fails while drawing
    with pytest.raises(ValueError):
        save_figure(fig, target, tight=False)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
    assert pyplot().get_fignums() == []
