"""Helper package of the cnn-lectures series.

Submodules are imported on demand (``from lecture_utils.models import create_model``) so that
``import lecture_utils`` stays light.
"""

__version__ = "0.1.0"


class LectureWarning(UserWarning):
    """Base of this package's own warnings (an unreadable image, a missing class, a cut-off results line...).

    ``notebook.setup()`` hides other libraries' warnings in the lessons, never these.
    """
