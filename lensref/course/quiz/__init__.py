"""The end-of-lesson quiz: one bank (``quizzes/logit-lens.yaml``) behind the online quiz page, the terminal
quiz, class grading and LMS exports.

- :mod:`.bank`: schema, loading and lookups (:func:`load_bank`)
- :mod:`.scoring`: one learner's answers -> :class:`QuizGrade`
- :mod:`.classgrade`: an LMS responses CSV -> per-learner scores and per-question statistics
- :mod:`.export`: GIFT, Moodle XML, JSON
- :mod:`.web`: the self-contained HTML quiz the book page shows
"""

from .bank import DEFAULT_BANK, SECTIONS, Bank, Option, Question, bank_from_dict, load_bank
from .classgrade import ClassGrade, LearnerScore, QuestionStats, grade_class
from .export import FORMATS
from .export import render as render_export
from .scoring import QuestionResult, QuizGrade, grade, load_answers, resolve_answers
from .web import display_quiz, jupyterquiz_questions, quiz_html

__all__ = [
    "DEFAULT_BANK",
    "SECTIONS",
    "Bank",
    "Option",
    "Question",
    "bank_from_dict",
    "load_bank",
    "ClassGrade",
    "LearnerScore",
    "QuestionStats",
    "grade_class",
    "FORMATS",
    "render_export",
    "QuestionResult",
    "QuizGrade",
    "grade",
    "load_answers",
    "resolve_answers",
    "display_quiz",
    "jupyterquiz_questions",
    "quiz_html",
]
