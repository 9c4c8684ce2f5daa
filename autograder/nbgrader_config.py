"""nbgrader configuration of the course.

Layout (the course root is the repository root):

    solutions/<NN_lesson>/<NN_lesson>.ipynb   the instructor sources (nbgrader's "source" step),
                                              each paired with <NN_lesson>.py, a jupytext percent script
    course/<NN_lesson>/<NN_lesson>.ipynb      the student release (nbgrader's "release" step)

Use it from the repository root with ``--config autograder/nbgrader_config.py``, or through
``python -m autograder.release`` which does that for you.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "chainrule-autodiff"
c.CourseDirectory.root = ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
# The jupytext scripts (with the solutions in them) and notes stay out of the release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py", "*.md"]
# The gradebook lives with the grading tools, outside the course and the sources.
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")

# Grading runs each notebook top to bottom: a lesson takes a few seconds, never minutes.
c.Execute.timeout = 120
c.ExecutePreprocessor.timeout = 120
# Students' notebooks run without the header/footer machinery; cells are locked in the release.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.LockCells.lock_grade_cells = True
c.LockCells.lock_readonly_cells = True
