"""``python -m lecture_utils.exercises {student-copies,clean-copies} [--out DIR]``."""

from lecture_utils.exercises import main

raise SystemExit(main())
