"""Interactive widgets. Each is a thin shell around a pure function that returns a figure,
so the figure can be tested (and shown statically) without a browser."""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_utils.plotting import plot_probabilities


def _interactive(draw, **controls):
    """Like ``ipywidgets.interactive`` over ``draw``, but its output is captured in the kernel.

    ipywidgets captures the output with ``with self.out:``, a protocol in which the front end
    collects the outputs and sends them back to the kernel. Notebook runners play that front end
    (nbclient's OutputWidget, in ``jupyter nbconvert --execute`` and papermill) and send on the
    shell channel while they wait for the cell's reply; that send can swallow the reply's wake-up
    (jupyter_client sends through a blocking shadow of its asyncio socket), and the run then
    stalls until the cell's timeout (jupyter/nbclient#312). Setting the Output widget's
    ``outputs`` from the kernel needs no answer from the front end and shows the same.
    """
    import traceback

    import ipywidgets
    from IPython import get_ipython
    from IPython.utils.capture import capture_output

    class Interactive(ipywidgets.interactive):
        def update(self, *args):
            if get_ipython() is None:  # outside a notebook: print, as ipywidgets does
                return super().update(*args)
            show_figures = ipywidgets.widgets.interaction.show_inline_matplotlib_plots
            show_figures()  # figures drawn before stay out of the widget
            self.kwargs = {control._kwarg: control.get_interact_value()
                           for control in self.kwargs_widgets}
            try:
                with capture_output() as captured:
                    self.result = draw(**self.kwargs)
                    show_figures()
            except Exception:
                self.out.outputs = ({"output_type": "stream", "name": "stderr",
                                     "text": traceback.format_exc()},)
                return
            streams = [{"output_type": "stream", "name": name, "text": text}
                       for name, text in (("stdout", captured.stdout), ("stderr", captured.stderr))
                       if text]
            displays = [{"output_type": "display_data", "data": output.data,
                         "metadata": output.metadata} for output in captured.outputs]
            self.out.outputs = tuple(streams + displays)

    return Interactive(draw, **controls)


def softmax_with_temperature(logits, temperature: float) -> np.ndarray:
    """softmax(logits / T) over the last axis, as a NumPy array."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    return torch.softmax(logits / temperature, dim=-1).numpy()


def temperature_figure(logits, temperature: float, class_names: Sequence[str] | None = None):
    """Logits next to softmax(logits / T), with the entropy of the result in the title."""
    probabilities = softmax_with_temperature(logits, temperature)
    entropy = float(-(probabilities * np.log(np.clip(probabilities, 1e-300, None))).sum())
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    plot_probabilities(np.asarray(logits, dtype=float) / temperature, class_names, ax=left,
                       ylim=None, color="tab:gray", ylabel="logit / T",
                       title=f"scaled logits z / T  (T = {temperature:.2f})")
    plot_probabilities(probabilities, class_names, ax=right, color="tab:orange",
                       title=f"softmax(z / T): entropy {entropy:.2f} nats "
                             f"(max {np.log(len(probabilities)):.2f})")
    fig.tight_layout()
    return fig


def temperature_widget(logits, class_names: Sequence[str] | None = None):
    """A slider over the temperature T that redraws :func:`temperature_figure`."""
    import ipywidgets

    slider = ipywidgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1.3, step=0.05,
                                       description="T", continuous_update=True)

    def draw(temperature):
        temperature_figure(logits, temperature, class_names)
        plt.show()  # into the widget's output (see _interactive)

    return _interactive(draw, temperature=slider)


# A few classic 3x3 (and 5x5) kernels: what a first convolutional layer often learns by itself.
KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "Sobel x (vertical edges)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y (horizontal edges)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Laplacian (all edges)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}


def convolve_grey(image: np.ndarray, kernel) -> np.ndarray:
    """Cross-correlate a grey image (H, W) with ``kernel`` (as nn.Conv2d does), same size out."""
    kernel = torch.as_tensor(np.asarray(kernel, dtype=np.float32))
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be a square 2-D array of odd size, got shape {tuple(kernel.shape)}")
    grey = torch.as_tensor(np.asarray(image, dtype=np.float32))[None, None]
    out = torch.nn.functional.conv2d(grey, kernel[None, None], padding=kernel.shape[0] // 2)
    return out[0, 0].numpy()


def convolution_figure(image: np.ndarray, kernel_name: str):
    """A photo (turned grey), the kernel, and the feature map the kernel produces."""
    if kernel_name not in KERNELS:
        raise ValueError(f"Unknown kernel {kernel_name!r}. Choose one of: {', '.join(KERNELS)}.")
    grey = np.asarray(image, dtype=np.float32)
    grey = grey.mean(axis=-1) / 255 if grey.ndim == 3 else grey / 255
    kernel = np.asarray(KERNELS[kernel_name], dtype=np.float32)
    feature_map = convolve_grey(grey, kernel)
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(10, 3.9),
                                              gridspec_kw={"width_ratios": [4, 1.5, 4]})
    left.imshow(grey, cmap="gray")
    left.set_title("input (grey levels)")
    limit = np.abs(kernel).max()
    middle.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (row, col), value in np.ndenumerate(kernel):
        middle.text(col, row, f"{value:.2g}", ha="center", va="center", fontsize=10,
                    color="white" if abs(value) > limit / 2 else "black")
    middle.set_title(f"kernel:\n{kernel_name}", fontsize=10)
    signed = kernel.min() < 0 and kernel_name not in ("sharpen", "identity")
    bound = np.abs(feature_map).max() if signed else None
    right.imshow(feature_map, cmap="RdBu_r" if signed else "gray",
                 vmin=-bound if signed else 0, vmax=bound if signed else 1)
    right.set_title("feature map (red +, blue -)" if signed else "feature map")
    for ax in (left, middle, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def convolution_widget(photos: dict[str, np.ndarray]):
    """Pick a photo and a kernel; see the feature map (see :func:`convolution_figure`)."""
    import ipywidgets

    def draw(photo, kernel):
        convolution_figure(photos[photo], kernel)
        plt.show()  # into the widget's output (see _interactive)

    return _interactive(draw, photo=ipywidgets.Dropdown(options=list(photos)),
                        kernel=ipywidgets.Dropdown(options=list(KERNELS)))


def attention_query_figure(keys, key_names: Sequence[str], angle_degrees: float, length: float):
    """2-D keys and one query (given by its angle and length); the attention weights it gets.

    The weights are softmax(q . k_i / sqrt(2)): turning the query changes *which* keys win,
    lengthening it (like a larger dimension without the 1/sqrt(d) scaling) makes the choice harder.
    """
    keys = np.asarray(keys, dtype=np.float64)
    if keys.ndim != 2 or keys.shape[1] != 2 or len(keys) != len(key_names):
        raise ValueError(f"keys must have shape (n, 2) with one name each, got {keys.shape}")
    if length <= 0:
        raise ValueError(f"the query's length must be positive, got {length}")
    angle = np.deg2rad(angle_degrees)
    query = length * np.array([np.cos(angle), np.sin(angle)])
    weights = softmax_with_temperature(keys @ query / np.sqrt(2), 1.0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 1.3]})
    limit = np.abs(keys).max() * 1.4
    arrow = query / length * limit * 0.8  # the direction only: a long query would leave the plot
    for (x, y), name, weight in zip(keys, key_names, weights):
        left.scatter(x, y, s=60 + 600 * weight, color="tab:blue", alpha=0.4 + 0.6 * weight)
        left.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=10)
    left.annotate("", xy=arrow, xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 2})
    left.text(*(arrow * 1.08), f"query\n(length {length:.3g})", color="tab:red", fontsize=10)
    left.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal",
             title="keys (dot size = attention weight)")
    left.axhline(0, color="grey", lw=0.5)
    left.axvline(0, color="grey", lw=0.5)
    plot_probabilities(weights, list(key_names), ax=right, color="tab:orange",
                       title=f"weights = softmax(q . k / sqrt(2))\nthe largest is {weights.max():.2f}")
    fig.tight_layout()
    return fig


def attention_query_widget(keys, key_names: Sequence[str]):
    """Sliders for the query's direction and length that redraw :func:`attention_query_figure`."""
    import ipywidgets

    def draw(angle, length):
        attention_query_figure(keys, key_names, angle, length)
        plt.show()  # into the widget's output (see _interactive)

    return _interactive(
        draw, angle=ipywidgets.FloatSlider(value=30, min=-180, max=180, step=5, description="angle"),
        length=ipywidgets.FloatLogSlider(value=1.0, base=10, min=-1, max=1.3, step=0.05,
                                         description="length"))


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
            ax.set_title(f"{panel_name} {layer + 1}, head {head + 1}", fontsize=10)
            if head % columns == 0:
                ax.set_ylabel(row_label, fontsize=10)
            if bottom:
                ax.set_xlabel(column_label, fontsize=10)
    for ax in axes.flat[len(layers) * heads:]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def clamp_number(number: int, max_number: int) -> tuple[int, str]:
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
    number, clamped = clamp_number(int(number), max_number)
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
