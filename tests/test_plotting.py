"""The figures draw the numbers of the result they are given: cell colours, line heights, labels and errors."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lensref import logit_lens, tiny_model  # noqa: E402
from lensref.plotting import plot_grid, plot_trajectory  # noqa: E402
from lensref.tokens import show_token  # noqa: E402

PROMPT = "a tiny lens"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lm():
    return tiny_model("gpt2")


@pytest.fixture(scope="module")
def result(lm):
    return logit_lens(lm, PROMPT, target="e", top_k=3)


@pytest.fixture(scope="module")
def plain(lm):
    return logit_lens(lm, PROMPT)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def cells(fig) -> np.ndarray:
    return np.asarray(fig.axes[0].images[0].get_array())


def colourbar_label(fig) -> str:
    return fig.axes[1].get_ylabel()


@pytest.mark.parametrize(
    "colour_by, expected, label",
    [
        ("prob", lambda r: r.top_probs[..., 0].numpy(), "top-1 probability"),
        ("entropy", lambda r: r.entropy.numpy(), "entropy"),
        ("kl", lambda r: r.kl_to_final.numpy(), "KL"),
        ("rank", lambda r: np.log10(r.target_rank.numpy().astype(float)), "log10(rank)"),
    ],
)
def test_grid_cells_are_coloured_by_the_chosen_statistic(result, colour_by, expected, label):
    fig = plot_grid(result, colour_by=colour_by)
    assert cells(fig).shape == (result.n_layers + 1, result.n_positions)
    assert np.allclose(cells(fig), expected(result), atol=1e-6)
    assert label in colourbar_label(fig)
    assert ("log10(rank)" in colourbar_label(fig)) == (colour_by == "rank")
    low, high = fig.axes[0].images[0].get_clim()
    if colour_by == "prob":
        assert (low, high) == (0.0, 1.0)  # probabilities keep one scale across figures
    else:
        assert (low, high) == pytest.approx((cells(fig).min(), cells(fig).max()))


def test_grid_cells_show_each_layers_top_token(result):
    fig = plot_grid(result)
    texts = fig.axes[0].texts
    assert len(texts) == (result.n_layers + 1) * result.n_positions
    by_place = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in texts}
    for layer in range(result.n_layers + 1):
        for pos in range(result.n_positions):
            shown = show_token(result.top1(layer, pos))
            text = by_place[(layer, pos)]
            assert text == shown or (text.endswith("…") and shown.startswith(text[:-1]))
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == [show_token(t) for t in result.tokens]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [str(i) for i in range(result.n_layers + 1)]
    assert result.model in fig.axes[0].get_title()


def test_grid_subsets_of_layers_and_positions(result):
    fig = plot_grid(result, colour_by="entropy", layers=[3, 1], positions=[0, -1], title="mine")
    assert np.allclose(cells(fig), result.entropy.numpy()[np.ix_([3, 1], [0, result.n_positions - 1])])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["3", "1"]
    assert fig.axes[0].get_title() == "mine"


def test_grid_refuses_what_it_cannot_draw(plain):
    with pytest.raises(ValueError, match="target"):
        plot_grid(plain, colour_by="rank")
    with pytest.raises(ValueError, match="colour_by must be one of prob, entropy, kl, rank, not 'pink'"):
        plot_grid(plain, colour_by="pink")


def test_grid_and_trajectory_save_pngs(result, tmp_path):
    plot_grid(result, path=str(tmp_path / "g.png"))
    plot_trajectory(result, path=str(tmp_path / "t.png"))
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG and (tmp_path / "t.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("position", [-1, 0, 4])
def test_trajectory_draws_probability_and_rank_at_the_position(result, position):
    fig = plot_trajectory(result, position=position)
    left, right = fig.axes
    [prob] = left.get_lines()
    [rank] = right.get_lines()
    layers = list(range(result.n_layers + 1))
    assert list(prob.get_xdata()) == layers and list(rank.get_xdata()) == layers
    assert np.allclose(prob.get_ydata(), result.target_prob[:, position].numpy())
    assert np.allclose(rank.get_ydata(), result.target_rank[:, position].numpy())
    assert right.get_yscale() == "log" and right.yaxis_inverted()  # rank 1 at the top
    assert left.get_ylim() == (0, 1)
    title = left.get_title()
    assert show_token("e") in title and show_token(result.tokens[position]) in title


def test_trajectory_adds_other_lenses_as_lines(lm, result):
    other = logit_lens(lm, PROMPT, target="e", translator=lambda layer, h: 1.5 * h)
    fig = plot_trajectory(result, others={"scaled lens": other})
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["probability (logit lens)", "probability (scaled lens)"]
    assert np.allclose(lines[1].get_ydata(), other.target_prob[:, -1].numpy())
    assert not np.allclose(lines[1].get_ydata()[:-1], lines[0].get_ydata()[:-1])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "probability (scaled lens)" in legend and any(text.startswith("rank") for text in legend)


def test_trajectory_needs_targets(result, plain):
    with pytest.raises(ValueError, match="needs a result computed with a target"):
        plot_trajectory(plain)
    with pytest.raises(ValueError, match="has no target"):
        plot_trajectory(result, others={"plain": plain})


# --- legibility and clear labels, as the lesson's column shows the figures ------------------------------


def _shown_scale(fig) -> tuple[float, float]:
    """(display px per figure px, figure dpi): the saved PNG (tight box) shown at most COLUMN_PX wide."""
    from PIL import Image

    from lensref.plotting.display import COLUMN_PX, DPI, png_bytes

    width_px = Image.open(io.BytesIO(png_bytes(fig, "A figure drawn for a unit test here."))).size[0]
    return min(1.0, COLUMN_PX / width_px), DPI


def _cap_px(text, scale: float, dpi: float) -> float:
    """The height of a capital letter of ``text``'s font, in display px: its ink, not its nominal size."""
    from matplotlib.textpath import TextPath

    cap_pt = TextPath((0, 0), "H", prop=text.get_fontproperties()).get_extents().height
    return cap_pt / 72 * dpi * scale


def test_grid_cell_labels_are_at_least_9_px_as_the_page_shows_them(lm):
    ten = logit_lens(lm, "abcdefghij")  # ten positions (one token a letter): the widest grid the pages show
    assert ten.n_positions == 10
    fig = plot_grid(ten)
    scale, dpi = _shown_scale(fig)
    labels = fig.axes[0].texts
    smallest = min(_cap_px(t, scale, dpi) for t in labels)
    assert smallest >= 9.0, f"cell labels' capitals are {smallest:.1f} px tall as shown"
    # ...and every label stays inside its own cell
    fig.canvas.draw()
    cell_px = fig.axes[0].get_window_extent().width / ten.n_positions
    widest = max(t.get_window_extent().width for t in labels)
    assert widest <= cell_px, f"a cell label is {widest:.0f} px wide, its cell {cell_px:.0f} px"


def _line_figure(legend_loc: str | None = None, label_xy: tuple[float, float] | None = None):
    fig, ax = plt.subplots(figsize=(6, 3))
    x = np.arange(31)
    ax.plot(x, np.where(x < 5, 0.9, 0.1), label="a line high on the left")
    ax.plot(x, np.full(31, 0.5), ls="--", label="a line across the middle")
    ax.set_ylim(0, 1)
    if legend_loc:
        ax.legend(loc=legend_loc)
    if label_xy:
        ax.annotate("a label", label_xy, fontsize=9)
    fig.tight_layout()
    return fig


def test_covered_data_finds_a_legend_or_label_over_the_lines():
    from lensref.plotting.overlap import covered_data

    assert covered_data(_line_figure("upper left")) == ["the legend covers line 'a line high on the left'"]
    assert covered_data(_line_figure("upper right")) == []
    assert covered_data(_line_figure(label_xy=(12, 0.49))) == [
        "the label 'a label' covers line 'a line across the middle'"
    ]
    assert covered_data(_line_figure(label_xy=(12, 0.7))) == []
    fig, ax = plt.subplots()
    ax.stackplot(range(5), [[0.8] * 5, [0.2] * 5], labels=["a", "b"])
    ax.set_ylim(0, 1)
    ax.legend(loc="lower left")
    assert covered_data(fig) == ["the legend covers area 'a'"]  # a filled area under the legend counts
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    assert covered_data(fig) == []


def test_show_refuses_a_legend_over_the_data():
    from lensref.plotting import show

    with pytest.raises(ValueError, match="text over the data: the legend covers line 'a line high on the left'"):
        show(_line_figure("upper left"), alt="Two lines and a legend that hides one of them.")


def test_logit_diff_label_is_clear_of_every_line(lm):
    from lensref.logitdiff import logit_diff
    from lensref.plotting.logitdiff import plot_logit_diff
    from lensref.plotting.overlap import covered_data

    for target, distractor in (("e", "a"), ("a", "e"), ("n", "l")):
        result = logit_diff(lm, PROMPT, target=target, distractor=distractor)
        fig = plot_logit_diff(result)
        labels = [t for t in fig.axes[0].texts if t.get_text().startswith("positive from layer")]
        first = result.first_positive_layer(-1)
        assert len(labels) == (first is not None)
        assert covered_data(fig) == [], (target, distractor)
