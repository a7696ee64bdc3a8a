"""Lesson 05 exercises: the checks and references the notebook uses, from two modules by topic.

* :mod:`course_utils.exercises.lesson05_patches`: patchify, unpatchify, the patch embedding as a
  convolution;
* :mod:`course_utils.exercises.lesson05_tokens`: the class token and position embeddings,
  attention rollout.
"""

from course_utils.exercises.lesson05_patches import (CONV_SLIPS, PATCHIFY_SLIPS, UNPATCHIFY_SLIPS,
                                                     check_conv_from_linear, check_patchify,
                                                     check_unpatchify, conv_from_linear, patchify,
                                                     unpatchify)
from course_utils.exercises.lesson05_tokens import (ROLLOUT_SLIPS, TOKEN_SLIPS,
                                                    add_class_token_and_positions,
                                                    attention_rollout, check_attention_rollout,
                                                    check_class_token_and_positions)

__all__ = ["CONV_SLIPS", "PATCHIFY_SLIPS", "ROLLOUT_SLIPS", "TOKEN_SLIPS", "UNPATCHIFY_SLIPS",
           "add_class_token_and_positions", "attention_rollout", "check_attention_rollout",
           "check_class_token_and_positions", "check_conv_from_linear", "check_patchify",
           "check_unpatchify", "conv_from_linear", "patchify", "unpatchify"]
