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
    assert fig.axes[0].get_title() == "head 1"
    assert fig.axes[0].get_ylabel() == "encoder layer 2\nFrench (query)"
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


def _tiny_vit_and_maps(count: int = 3):
    """A tiny random Vision Transformer (4 x 4 patches of 4 x 4 pixels), some images in [0, 1]
    and their attention maps."""
    import torch

    from course_utils.vit import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(image_size=16, patch_size=4, dim=16, depth=2, num_heads=2,
                              num_classes=3).eval()
    images = torch.rand(count, 3, 16, 16)
    return images, model.attention_maps(images)


def _heat_map(fig) -> np.ndarray:
    return np.asarray(fig.axes[1].images[0].get_array())


@pytest.mark.parametrize("head", [1, 2, "mean", "rollout"])
def test_class_token_attention_figure_draws_the_class_tokens_row(head):
    from course_utils.plotting import legibility_problems
    from course_utils.vit import attention_rollout

    images, maps = _tiny_vit_and_maps()
    one_image = [weights[1] for weights in maps]
    fig = widgets.class_token_attention_figure(images[1], one_image, layer=2, head=head,
                                               class_name="B", predicted="C")
    if head == "rollout":
        matrix = attention_rollout(maps)[1]
    elif head == "mean":
        matrix = maps[1][1].mean(dim=0)
    else:
        matrix = maps[1][1, head - 1]
    row = matrix[0].numpy()
    np.testing.assert_allclose(_heat_map(fig), row[1:].reshape(4, 4), rtol=1e-5, atol=1e-7)
    assert f"{row[0]:.0%}" in fig.axes[1].get_xlabel()  # the share the class token keeps
    assert f"largest weight {row[1:].max():.2g}" in fig.axes[1].get_title()
    assert fig.axes[0].get_title() == "label B, predicted C"
    overlay = np.asarray(fig.axes[2].images[1].get_array())
    assert overlay.shape == (16, 16) and overlay[5, 13] == pytest.approx(row[1 + 1 * 4 + 3])
    if head == "rollout":
        assert "ignored" in fig.axes[1].get_title()
    assert fig.get_size_inches()[0] <= 10
    assert legibility_problems(fig) == []
    plt.close(fig)


def test_class_token_attention_figure_accepts_a_numpy_image_and_one_layer():
    images, maps = _tiny_vit_and_maps(count=1)
    fig = widgets.class_token_attention_figure(images[0].permute(1, 2, 0).numpy(),
                                               [maps[0][0]], layer=1, head="mean")
    assert fig.axes[0].get_title() == "image"
    assert np.asarray(fig.axes[0].images[0].get_array()).shape == (16, 16, 3)
    plt.close(fig)


def test_class_token_attention_figure_rejects_bad_choices():
    images, maps = _tiny_vit_and_maps(count=1)
    one_image = [weights[0] for weights in maps]
    with pytest.raises(ValueError, match="layer must be a layer number from 1 to 2"):
        widgets.class_token_attention_figure(images[0], one_image, layer=0, head=1)
    with pytest.raises(ValueError, match="layer must be a layer number from 1 to 2"):
        widgets.class_token_attention_figure(images[0], one_image, layer=3, head="mean")
    with pytest.raises(ValueError, match="head must be a head number from 1 to 2, 'mean' or 'rollout'"):
        widgets.class_token_attention_figure(images[0], one_image, layer=1, head=3)
    with pytest.raises(ValueError, match="head must be"):
        widgets.class_token_attention_figure(images[0], one_image, layer=1, head="max")
    with pytest.raises(ValueError, match=r"\(heads, T, T\).*weights\[i\]"):
        widgets.class_token_attention_figure(images[0], maps, layer=1, head=1)  # a batch's maps
    with pytest.raises(ValueError, match="not a square grid"):
        widgets.class_token_attention_figure(images[0], [w[:, :16, :16] for w in one_image],
                                             layer=1, head=1)
    with pytest.raises(ValueError, match="does not tile"):
        widgets.class_token_attention_figure(images[0, :, :15, :15], one_image, layer=1, head=1)
    plt.close("all")


def test_class_token_attention_widget_builds_and_checks_its_inputs():
    images, maps = _tiny_vit_and_maps()
    widget = widgets.class_token_attention_widget(images, maps, class_names=["A", "B", "C"],
                                                  labels=[0, 1, 2], predictions=[0, 2, 2])
    image, layer, head = widget.children[:3]
    assert [image.description, layer.description, head.description] == ["image", "layer", "head"]
    assert (image.max, layer.min, layer.max) == (2, 1, 2)
    assert list(head.options) == [("mean of heads", "mean"), ("head 1", 1), ("head 2", 2),
                                  ("rollout (all layers)", "rollout")]
    for value in (1, 2, "rollout"):
        head.value = value
    image.value = 2  # each change redraws; outside a notebook the figure stays open
    figure_axes = plt.gcf().axes
    assert figure_axes[0].get_title() == "label C, predicted C"
    assert figure_axes[1].get_title().startswith("rollout over all 2 layers")
    plt.close("all")
    with pytest.raises(ValueError, match="2 images but maps for 3"):
        widgets.class_token_attention_widget(images[:2], maps)
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        widgets.class_token_attention_widget(images, maps, labels=[0, 1])
