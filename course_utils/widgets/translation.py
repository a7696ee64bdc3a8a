"""Lessons 03-04's widget: a translator's attention maps, character by character or word by word.

The maps of the number-words translator (course_utils.numberwords) are drawn with the words of
both texts on the axes; :func:`word_attention` sums character maps into word-to-word maps.
"""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from course_utils.widgets._core import _interactive


def _word_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) for each word of ``text``, split at spaces and hyphens; each span
    also covers the separator after its word, so the spans cover the whole text."""
    spans, start = [], 0
    for position, char in enumerate(text):
        if char in " -":
            if position > start:
                spans.append((start, position + 1, text[start:position]))
            elif spans:  # two separators in a row: the second joins the previous word
                spans[-1] = (spans[-1][0], position + 1, spans[-1][2])
            start = position + 1
    if start < len(text):
        spans.append((start, len(text), text[start:]))
    return spans


def _word_ticks(text: str):
    """Centres and names of the words of ``text``, and the positions of the separators."""
    spans = _word_spans(text)
    centres = [(start + start + len(word) - 1) / 2 for start, _, word in spans]
    separators = [position for position, char in enumerate(text) if char in " -"]
    return centres, [word for _, _, word in spans], separators


def word_attention(weights, source: str, output: str) -> np.ndarray:
    """Character-level maps (..., len(output), len(source)) summed into words: the weight each
    English word (averaged over its characters) gives to each French word (summed over its
    characters). Rows still sum to 1."""
    weights = np.asarray(weights, dtype=np.float64)
    rows = [weights[..., start:end, :].mean(axis=-2) for start, end, _ in _word_spans(output)]
    by_rows = np.stack(rows, axis=-2)
    columns = [by_rows[..., start:end].sum(axis=-1) for start, end, _ in _word_spans(source)]
    return np.stack(columns, axis=-1)


def cross_attention_figure(source: str, output: str, weights, *, layers: Sequence[int] | None = None,
                           by_words: bool = False, title: str = "", kind: str = "cross"):
    """Attention maps of a translation: one panel per (layer, head), at most 4 heads in a row.

    ``weights`` has shape (layers, heads, len(output), len(source)) (row t: where output
    character t looked in the source). Character maps are labelled by words, with thin lines
    at the spaces and hyphens; ``by_words`` sums them into word-to-word maps
    (:func:`word_attention`) and prints the weights. ``layers`` picks the layers to draw.
    ``kind="encoder"`` labels the maps as the encoder's self-attention (``output`` is then the
    source itself, the queries).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if not source or not output:
        raise ValueError("source and output must not be empty: there is no map to draw")
    if weights.ndim != 4 or weights.shape[2:] != (len(output), len(source)):
        raise ValueError(f"weights must have shape (layers, heads, {len(output)}, {len(source)}), "
                         f"got {weights.shape}")
    if kind not in ("cross", "encoder"):
        raise ValueError(f"kind must be 'cross' or 'encoder', got {kind!r}")
    layers = list(range(weights.shape[0])) if layers is None else list(layers)
    heads = weights.shape[1]
    source_words = [word for _, _, word in _word_spans(source)]
    output_words = [word for _, _, word in _word_spans(output)]
    if by_words:
        weights = word_attention(weights, source, output)
        x_ticks, y_ticks = (range(len(source_words)), source_words), (range(len(output_words)), output_words)
        x_lines = y_lines = []
    else:
        x_centres, _, x_lines = _word_ticks(source)
        y_centres, _, y_lines = _word_ticks(output)
        x_ticks, y_ticks = (x_centres, source_words), (y_centres, output_words)
    columns = min(heads, 4)
    rows_per_layer = -(-heads // columns)
    fig, axes = plt.subplots(len(layers) * rows_per_layer, columns, squeeze=False, layout="constrained",
                             figsize=(min(10.0, 2.3 * columns + 1.5),
                                      2.2 * len(layers) * rows_per_layer + 1.4))
    panel_name = "decoder layer" if kind == "cross" else "encoder layer"
    row_label, column_label = (("English, as written", "French source") if kind == "cross"
                               else ("French (query)", "French (key)"))
    cell_points = 72 * 2.3 / max(len(x_ticks[0]), 1)  # the width of a word's column, in points
    for row_of_layer, layer in enumerate(layers):
        for head in range(heads):
            ax = axes[row_of_layer * rows_per_layer + head // columns, head % columns]
            panel = weights[layer, head]
            image = ax.imshow(panel, cmap="viridis", vmin=0, vmax=1, aspect="auto",
                              interpolation="nearest")
            if by_words and cell_points >= 14:  # room for a 10-point ".3"
                for (y, x), value in np.ndenumerate(panel):
                    if value >= 0.1:
                        ax.text(x, y, f"{value:.1f}"[1:] if value < 0.95 else "1", ha="center",
                                va="center", fontsize=10, color="black" if value > 0.6 else "white")
            for position in x_lines:
                ax.axvline(position, color="white", lw=0.4, alpha=0.5)
            for position in y_lines:
                ax.axhline(position, color="white", lw=0.4, alpha=0.5)
            # Every panel has the same words: label them once, on the left and at the bottom.
            bottom = row_of_layer == len(layers) - 1 and head >= heads - columns
            ax.set_xticks(x_ticks[0], x_ticks[1] if bottom else [], rotation=90, fontsize=10)
            ax.set_yticks(y_ticks[0], y_ticks[1] if head % columns == 0 else [], fontsize=10)
            # Short titles (the row says the layer): four share a row, at the presenter's size too.
            ax.set_title(f"head {head + 1}", fontsize=10)
            if head % columns == 0:
                ax.set_ylabel(f"{panel_name} {layer + 1}\n{row_label}", fontsize=10)
            if bottom:
                ax.set_xlabel(column_label, fontsize=10)
    for ax in axes.flat[len(layers) * heads:]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def _clamp_number(number: int, max_number: int) -> tuple[int, str]:
    """The number the translation widget shows for a typed ``number``, and what to tell the
    user about it ("" when it is in the range 1..``max_number``)."""
    if number < 1:
        return 1, f"{number:,} is not a number the model translates: showing 1 instead."
    if number > max_number:
        return max_number, (f"{number:,} is above {max_number:,}, the largest number of this "
                            f"profile's data: showing {max_number:,} instead.")
    return number, ""


def translation_view(translate, number: int, max_number: int, layer="all", by_words: bool = True,
                     maps: str = "cross-attention"):
    """What the translation widget shows: (a message, the figure or None).

    ``translate(number)`` returns (french, english_written, expected_english, cross-attention
    weights (layers, heads, L_y, L_x)[, encoder self-attention weights (layers, heads, L_x, L_x)]).
    """
    number, clamped = _clamp_number(int(number), max_number)
    source, output, expected, weights, *encoder = translate(number)
    lines = [clamped] if clamped else []
    if not output:
        lines.append(f"{number:,}: '{source}' -> nothing (the model wrote <eos> first); "
                     f"expected '{expected}'")
        return "\n".join(lines), None
    verdict = "correct" if output == expected else f"wrong, expected '{expected}'"
    lines.append(f"{number:,}: '{source}'\n-> '{output}' ({verdict})")
    layers = None if layer == "all" else [layer - 1]
    if maps == "encoder self-attention":
        if not encoder:
            lines.append("(no encoder self-attention maps were given for this translator)")
            return "\n".join(lines), None
        fig = cross_attention_figure(source, source, encoder[0], layers=layers, by_words=by_words,
                                     kind="encoder", title="Encoder self-attention")
    else:
        fig = cross_attention_figure(source, output, weights, layers=layers, by_words=by_words,
                                     title="Cross-attention")
    return "\n".join(lines), fig


def translation_widget(translate, max_number: int, num_layers: int, value: int = 97):
    """Type a number: its translation and attention maps (see :func:`translation_view`).

    A number outside 1..``max_number`` is replaced by the nearest one, with a message saying so.
    """
    import ipywidgets

    def draw(number, layer, by_words, maps):
        message, fig = translation_view(translate, number, max_number, layer, by_words, maps)
        print(message)
        if fig is not None:
            plt.show()  # into the widget's output (see _interactive)

    return _interactive(
        draw, number=ipywidgets.IntText(value=value, description="number"),
        layer=ipywidgets.Dropdown(options=["all", *range(1, num_layers + 1)], value="all",
                                  description="layer"),
        by_words=ipywidgets.Checkbox(value=True, description="sum into words"),
        maps=ipywidgets.Dropdown(options=["cross-attention", "encoder self-attention"],
                                 value="cross-attention", description="maps"))
