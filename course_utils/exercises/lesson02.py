"""Lesson 02 exercises: the checks and references the notebook uses, from two modules by topic.

* :mod:`course_utils.exercises.lesson02_arithmetic`: output size, parameters and multiply-adds,
  receptive field;
* :mod:`course_utils.exercises.lesson02_layers`: normalisation by hand, group norm,
  squeeze-and-excite, the residual block.
"""

from course_utils.exercises.lesson02_arithmetic import (check_conv_cost, check_conv_output_size,
                                                        check_receptive_field, conv_cost,
                                                        conv_output_size, receptive_field)
from course_utils.exercises.lesson02_layers import (check_group_norm, check_normalize,
                                                    check_residual_block, check_squeeze_excite,
                                                    group_norm, normalize)

__all__ = ["check_conv_cost", "check_conv_output_size", "check_group_norm", "check_normalize",
           "check_receptive_field", "check_residual_block", "check_squeeze_excite", "conv_cost",
           "conv_output_size", "group_norm", "normalize", "receptive_field"]
