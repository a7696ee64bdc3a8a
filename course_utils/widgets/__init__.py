"""Interactive widgets, one module per topic. Each widget is a thin shell around a pure function
that returns a figure (or data), so the figure can be tested, and shown statically, without a
browser; every widget fills its output through :func:`course_utils.widgets._core._interactive`.

* :mod:`.softmax` (lesson 01): softmax with a temperature;
* :mod:`.convolution` (lesson 02): a photo through a classic 3x3 kernel;
* :mod:`.attention` (lesson 03): one query against 2-D keys;
* :mod:`.translation` (lessons 03-04): a translator's attention maps, character or word level;
* :mod:`.vit` (lesson 05): what a Vision Transformer's class token attends to;
* :mod:`.augment` (lesson 06): data augmentations composed and tuned;
* :mod:`.masking` (lesson 07): a masked auto-encoder painting removed patches back.
"""

from course_utils.widgets.attention import attention_query_figure, attention_query_widget
from course_utils.widgets.augment import augmentation_figure, augmentation_widget
from course_utils.widgets.convolution import KERNELS, convolution_figure, convolution_widget
from course_utils.widgets.masking import masking_figure, masking_widget
from course_utils.widgets.softmax import temperature_figure, temperature_widget
from course_utils.widgets.translation import (cross_attention_figure, translation_view,
                                              translation_widget, word_attention)
from course_utils.widgets.vit import class_token_attention_figure, class_token_attention_widget

__all__ = [
    "KERNELS", "attention_query_figure", "attention_query_widget", "augmentation_figure",
    "augmentation_widget", "class_token_attention_figure",
    "class_token_attention_widget", "convolution_figure", "convolution_widget",
    "cross_attention_figure", "masking_figure", "masking_widget", "temperature_figure", "temperature_widget", "translation_view",
    "translation_widget", "word_attention",
]
