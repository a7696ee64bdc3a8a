"""Helper package of the course: configuration, data, training, plotting and exercise checks.

Importing the package has no side effects: nothing is seeded, printed or styled until a
notebook calls :func:`course_utils.setup`.
"""

from course_utils.config import CourseConfig, setup

__all__ = ["CourseConfig", "setup"]
