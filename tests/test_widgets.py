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


def test_temperature_limits():
    cold = widgets.softmax_with_temperature(LOGITS, 0.01)
    hot = widgets.softmax_with_temperature(LOGITS, 1000.0)
    assert cold.argmax() == 4 and cold.max() > 0.999
    assert np.allclose(hot, 0.2, atol=1e-3)
    with pytest.raises(ValueError, match="positive"):
        widgets.softmax_with_temperature(LOGITS, 0.0)


def test_temperature_widget_builds():
    widget = widgets.temperature_widget(LOGITS)
    assert widget.children[0].description == "T"
    plt.close("all")
