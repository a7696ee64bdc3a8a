import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils import widgets  # noqa: E402

LOGITS = [2.0, 1.0, 0.1, -1.0, 3.0]


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0, 3.0, 20.0])
def test_temperature_figure_over_a_grid(temperature):
    fig = widgets.temperature_figure(LOGITS, temperature, list("abcde"))
    assert len(fig.axes) == 2
    plt.close(fig)


def _bar_heights(ax) -> np.ndarray:
    return np.array([bar.get_height() for bar in ax.patches])


def test_temperature_limits():
    fig = widgets.temperature_figure(LOGITS, 1.0)
    probabilities = _bar_heights(fig.axes[1])
    assert np.allclose(probabilities, np.exp(LOGITS) / np.exp(LOGITS).sum())
    assert np.allclose(_bar_heights(fig.axes[0]), LOGITS)
    cold = _bar_heights(widgets.temperature_figure(LOGITS, 0.01).axes[1])
    hot = widgets.temperature_figure(LOGITS, 1000.0)
    assert cold.argmax() == 4 and cold.max() > 0.999
    assert np.allclose(_bar_heights(hot.axes[1]), 0.2, atol=1e-3)
    assert "entropy 1.61 nats (max 1.61)" in hot.axes[1].get_title()
    assert np.allclose(_bar_heights(hot.axes[0]), np.array(LOGITS) / 1000)
    with pytest.raises(ValueError, match="positive"):
        widgets.temperature_figure(LOGITS, 0.0)
    plt.close("all")


def test_temperature_widget_builds():
    widget = widgets.temperature_widget(LOGITS)
    assert widget.children[0].description == "T"
    plt.close("all")


@pytest.mark.parametrize("kernel", list(widgets.KERNELS))
def test_convolution_figure_for_every_kernel(kernel):
    image = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    fig = widgets.convolution_figure(image, kernel)
    assert len(fig.axes) == 3
    plt.close(fig)


def _feature_map(image, kernel: str) -> np.ndarray:
    fig = widgets.convolution_figure(image, kernel)
    feature_map = np.asarray(fig.axes[2].images[0].get_array())
    plt.close(fig)
    return feature_map


def test_convolution_matches_torch_and_rejects_unknown_kernels():
    import torch

    image = np.arange(25, dtype=np.float32).reshape(5, 5) * 10
    assert np.allclose(_feature_map(image, "identity"), image / 255)
    edges = _feature_map(np.full((5, 5), 100.0), "Laplacian (all edges)")
    assert np.allclose(edges[1:-1, 1:-1], 0) and edges[0, 0] < 0  # zero padding at the border
    colour = np.stack([image, image, image + 30], axis=-1)  # grey = mean of the channels
    sobel = torch.tensor(widgets.KERNELS["Sobel x (vertical edges)"], dtype=torch.float32)
    expected = torch.nn.functional.conv2d(torch.from_numpy((image + 10) / 255)[None, None],
                                          sobel[None, None], padding=1)[0, 0]
    assert np.allclose(_feature_map(colour, "Sobel x (vertical edges)"), expected, atol=1e-6)
    with pytest.raises(ValueError, match="Unknown kernel"):
        widgets.convolution_figure(image, "blur")
    assert widgets.convolution_widget({"a": image}).children[0].description == "photo"
    plt.close("all")


def test_attention_query_figure_and_widget():
    keys = [[1.0, 0.0], [0.0, 1.0], [-1.0, -0.5]]
    for angle, length in ((0, 0.1), (90, 1.0), (200, 20.0)):
        fig = widgets.attention_query_figure(keys, ["a", "b", "c"], angle, length)
        assert len(fig.axes) == 2
        plt.close(fig)
    with pytest.raises(ValueError, match="shape"):
        widgets.attention_query_figure([[1.0, 0.0, 0.0]], ["a"], 0, 1)
    with pytest.raises(ValueError, match="positive"):
        widgets.attention_query_figure(keys, ["a", "b", "c"], 0, 0)
    widget = widgets.attention_query_widget(keys, ["a", "b", "c"])
    assert {child.description for child in widget.children[:2]} == {"angle", "length"}
    plt.close("all")


def test_cross_attention_figure_and_translation_widget():
    weights = np.random.default_rng(0).dirichlet(np.ones(5), size=(2, 3, 4))  # (layers, heads, 4, 5)
    fig = widgets.cross_attention_figure("un b", "one", weights[:, :, :3, :4].copy(), title="t")
    assert len(fig.axes) == 6 + 1  # and the colour bar
    plt.close(fig)
    fig = widgets.cross_attention_figure("un b", "one", weights[:, :, :3, :4], layers=[1])
    assert len(fig.axes) == 3 + 1
    plt.close(fig)
    with pytest.raises(ValueError, match="shape"):
        widgets.cross_attention_figure("un", "one", weights)

    def translate(number):
        return "un b", "one", "one", weights[:, :, :3, :4]

    with pytest.raises(ValueError, match="empty"):
        widgets.cross_attention_figure("un", "", weights[:, :, :0, :2])
    widget = widgets.translation_widget(translate, max_number=9, num_layers=2, value=1)
    assert [child.description for child in widget.children[:3]] == ["number", "layer", "sum into words"]
    assert widget.children[1].options == ("all", 1, 2)
    plt.close("all")


def test_character_maps_label_words_and_mark_separators():
    source, output = "vingt et un-deux", "twenty-two"
    weights = np.full((1, 1, len(output), len(source)), 1 / len(source))
    ax = widgets.cross_attention_figure(source, output, weights).axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["vingt", "et", "un", "deux"]
    assert list(ax.get_xticks()) == [2.0, 6.5, 9.5, 13.5]  # the middle of each word
    assert list(ax.get_yticks()) == [2.5, 8.0]
    vertical = [line.get_xdata() for line in ax.lines]
    assert sorted(x[0] for x in vertical if x[0] == x[1]) == [5, 8, 11]  # the separators
    plt.close("all")


def test_repeated_separators_belong_to_the_word_before():
    source = "a  bc-d"  # words "a" (with both spaces), "bc" (with the hyphen), "d"
    one_hot = np.zeros((1, len(source)))
    for column, word in ((2, 0), (5, 1), (6, 2)):
        one_hot[:] = 0
        one_hot[0, column] = 1.0
        assert np.argmax(widgets.word_attention(one_hot, source, "x")[0]) == word


def test_word_attention_keeps_rows_summing_to_one():
    source, output = "vingt et un", "twenty-one"
    weights = np.random.default_rng(1).dirichlet(np.ones(len(source)), size=(2, 3, len(output)))
    words = widgets.word_attention(weights, source, output)
    assert words.shape == (2, 3, 2, 3)
    assert np.allclose(words.sum(-1), 1.0)
    one_hot = np.zeros((len(output), len(source)))
    one_hot[:, 9] = 1.0  # every English character reads the "u" of "un"
    assert np.allclose(widgets.word_attention(one_hot, source, output), [[0, 0, 1], [0, 0, 1]])
    fig = widgets.cross_attention_figure(source, output, weights, by_words=True)
    plt.close(fig)


def test_translation_widget_says_when_nothing_was_written(capsys):
    empty = np.zeros((2, 3, 0, 2))
    widget = widgets.translation_widget(lambda number: ("un", "", "one", empty), max_number=9,
                                        num_layers=2, value=1)
    widget.update()  # outside a notebook, the widget's output goes to stdout
    assert "wrote <eos> first" in capsys.readouterr().out
    plt.close("all")


def test_translation_widget_says_when_a_number_is_clamped(capsys):
    weights = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3, 3))
    asked = []

    def translate(number):
        asked.append(number)
        return "un b", "one", "one", weights

    def view(number, max_number):
        message, fig = widgets.translation_view(translate, number, max_number)
        plt.close(fig)
        return asked[-1], message

    assert view(5, 9) == (5, "5: 'un b'\n-> 'one' (correct)")
    shown, message = view(12_345, 9_999)
    assert shown == 9_999 and "12,345 is above 9,999" in message and "showing 9,999" in message
    shown, message = view(0, 9)
    assert shown == 1 and "0 is not a number the model translates: showing 1" in message

    widget = widgets.translation_widget(translate, max_number=9, num_layers=2, value=1)
    widget.children[0].value = 50  # typed above the maximum: translated as 9, and said so
    assert asked[-1] == 9
    assert "50 is above 9" in capsys.readouterr().out
    plt.close("all")


def test_translation_view_draws_the_encoder_self_attention():
    rng = np.random.default_rng(0)
    cross = rng.dirichlet(np.ones(4), size=(2, 3, 3))
    encoder = rng.dirichlet(np.ones(4), size=(2, 3, 4))
    message, fig = widgets.translation_view(lambda n: ("un b", "one", "one", cross, encoder), 1, 9,
                                            layer=2, maps="encoder self-attention")
    assert "(correct)" in message
    assert fig.axes[0].get_title() == "encoder layer 2, head 1"
    assert fig.axes[0].get_ylabel() == "French (query)"
    plt.close(fig)
    message, fig = widgets.translation_view(lambda n: ("un b", "one", "one", cross), 1, 9,
                                            maps="encoder self-attention")
    assert fig is None and "no encoder self-attention" in message


@pytest.mark.parametrize("heads, layers", [(4, 2), (8, 3)])
def test_attention_figures_fit_a_projector(heads, layers):
    source, output = "quatre mille trois cent quatre-vingt-dix-huit", "four thousand three hundred"
    weights = np.random.default_rng(0).dirichlet(np.ones(len(source)), size=(layers, heads, len(output)))
    for by_words in (False, True):
        fig = widgets.cross_attention_figure(source, output, weights, by_words=by_words)
        assert fig.get_size_inches()[0] <= 10
        fig.canvas.draw()
        sizes = [text.get_fontsize() for ax in fig.axes for text in
                 [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts,
                  *ax.get_xticklabels(), *ax.get_yticklabels()] if text.get_text()]
        assert min(sizes) >= 10
        assert sum(ax.get_visible() for ax in fig.axes) == layers * heads + 1  # and the colour bar
        plt.close(fig)
