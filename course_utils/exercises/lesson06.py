"""Lesson 06 exercises (both notebooks): the checks and references, from four modules by topic.

Part 1 (augmentation): k labels per class, Sobel, cutout, per-class accuracy. Part 2
(transfer): the features before the head, a linear probe, an optimiser for fine-tuning,
pseudo-labels.

* :mod:`course_utils.exercises.lesson06_augment`: the Sobel filter and cutout;
* :mod:`course_utils.exercises.lesson06_labels`: k labels per class, a linear probe (freeze the
  backbone, replace the head) and pseudo-labels;
* :mod:`course_utils.exercises.lesson06_recall`: per-class accuracy;
* :mod:`course_utils.exercises.lesson06_transfer`: the features before the head and an optimiser
  for fine-tuning (two learning rates).
"""

from course_utils.exercises.lesson06_augment import (CUTOUT_SLIPS, SOBEL_SLIPS, check_cutout,
                                                     check_sobel, cutout, sobel)
from course_utils.exercises.lesson06_recall import check_per_class_accuracy
from course_utils.exercises.lesson06_transfer import (check_extract_features,
                                                      check_fine_tuning_optimizer)
from course_utils.exercises.lesson06_labels import (LABELS_SLIPS, PROBE_SLIPS, PSEUDO_SLIPS,
                                                    check_freeze_and_replace_head,
                                                    check_labels_per_class,
                                                    check_select_pseudo_labels, labels_per_class,
                                                    prepare_linear_probe, select_pseudo_labels)

__all__ = ["CUTOUT_SLIPS", "LABELS_SLIPS", "PROBE_SLIPS", "PSEUDO_SLIPS", "SOBEL_SLIPS",
           "check_cutout", "check_extract_features", "check_fine_tuning_optimizer",
           "check_freeze_and_replace_head", "check_labels_per_class", "check_per_class_accuracy",
           "check_select_pseudo_labels", "check_sobel", "cutout", "labels_per_class",
           "prepare_linear_probe", "select_pseudo_labels", "sobel"]
