"""Lesson 06 exercises: the checks and references the notebook uses, from two modules by topic.

* :mod:`course_utils.exercises.lesson06_augment`: the Sobel filter and cutout;
* :mod:`course_utils.exercises.lesson06_labels`: k labels per class, a linear probe (freeze the
  backbone, replace the head) and pseudo-labels.
"""

from course_utils.exercises.lesson06_augment import (CUTOUT_SLIPS, SOBEL_SLIPS, check_cutout,
                                                     check_sobel, cutout, sobel)
from course_utils.exercises.lesson06_labels import (LABELS_SLIPS, PROBE_SLIPS, PSEUDO_SLIPS,
                                                    check_freeze_and_replace_head,
                                                    check_labels_per_class,
                                                    check_select_pseudo_labels, labels_per_class,
                                                    prepare_linear_probe, select_pseudo_labels)

__all__ = ["CUTOUT_SLIPS", "LABELS_SLIPS", "PROBE_SLIPS", "PSEUDO_SLIPS", "SOBEL_SLIPS",
           "check_cutout", "check_freeze_and_replace_head", "check_labels_per_class",
           "check_select_pseudo_labels", "check_sobel", "cutout", "labels_per_class",
           "prepare_linear_probe", "select_pseudo_labels", "sobel"]
