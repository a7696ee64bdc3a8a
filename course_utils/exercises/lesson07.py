"""Lesson 07 exercises: the checks and references the notebook uses, from three modules by topic.

Part 1 (pretext tasks):

* :mod:`course_utils.exercises.lesson07_pretext`: a jigsaw puzzle's shuffled tiles (exercise 1)
  and MAE's random masking (exercise 2);
* :mod:`course_utils.exercises.lesson07_generative`: MAE's loss on the removed patches (exercise
  3) and a VAE's KL term (exercise 4).

Part 2 (joint embeddings):

* :mod:`course_utils.exercises.lesson07_contrastive`: SimCLR's NT-Xent loss (exercise 1 of part
  2) and DINO's loss (exercise 3 of part 2);
* :mod:`course_utils.exercises.lesson07_teacher`: the teacher's moving average (exercise 2 of
  part 2) and its center (exercise 4 of part 2).
"""

from course_utils.exercises.lesson07_contrastive import (DINO_SLIPS, NT_XENT_SLIPS,
                                                         check_dino_loss, check_nt_xent_loss,
                                                         dino_loss, nt_xent_loss)
from course_utils.exercises.lesson07_generative import (KL_SLIPS, MASKED_MSE_SLIPS,
                                                        check_gaussian_kl, check_masked_mse,
                                                        gaussian_kl, masked_mse)
from course_utils.exercises.lesson07_teacher import (CENTER_SLIPS, EMA_SLIPS, check_ema_update,
                                                     check_update_center, ema_update,
                                                     update_center)
from course_utils.exercises.lesson07_pretext import (MASKING_SLIPS, SHUFFLE_SLIPS,
                                                     check_random_masking, check_shuffle_tiles,
                                                     random_masking, shuffle_tiles)

__all__ = ["CENTER_SLIPS", "DINO_SLIPS", "EMA_SLIPS", "KL_SLIPS", "MASKED_MSE_SLIPS",
           "MASKING_SLIPS", "NT_XENT_SLIPS", "SHUFFLE_SLIPS", "check_dino_loss",
           "check_ema_update", "check_gaussian_kl", "check_masked_mse", "check_nt_xent_loss",
           "check_random_masking", "check_shuffle_tiles", "check_update_center", "dino_loss",
           "ema_update", "gaussian_kl", "masked_mse", "nt_xent_loss", "random_masking",
           "shuffle_tiles", "update_center"]
