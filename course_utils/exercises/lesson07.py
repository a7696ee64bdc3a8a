"""Lesson 07 exercises: the checks and references the notebook uses, from three modules by topic.

* :mod:`course_utils.exercises.lesson07_pretext`: a jigsaw puzzle's shuffled tiles (exercise 1)
  and MAE's random masking (exercise 2);
* :mod:`course_utils.exercises.lesson07_contrastive`: SimCLR's NT-Xent loss (exercise 3) and
  DINO's loss (exercise 4);
* :mod:`course_utils.exercises.lesson07_teacher`: the teacher's moving average (exercise 5).
"""

from course_utils.exercises.lesson07_contrastive import (DINO_SLIPS, NT_XENT_SLIPS,
                                                         check_dino_loss, check_nt_xent_loss,
                                                         dino_loss, nt_xent_loss)
from course_utils.exercises.lesson07_teacher import EMA_SLIPS, check_ema_update, ema_update
from course_utils.exercises.lesson07_pretext import (MASKING_SLIPS, SHUFFLE_SLIPS,
                                                     check_random_masking, check_shuffle_tiles,
                                                     random_masking, shuffle_tiles)

__all__ = ["DINO_SLIPS", "EMA_SLIPS", "MASKING_SLIPS", "NT_XENT_SLIPS", "SHUFFLE_SLIPS",
           "check_dino_loss", "check_ema_update", "check_nt_xent_loss", "check_random_masking",
           "check_shuffle_tiles", "dino_loss", "ema_update", "nt_xent_loss", "random_masking",
           "shuffle_tiles"]
