"""Prompts the lesson, the exercises and the tests share, so a claim and its check read the same text."""

EIFFEL = "The Eiffel Tower is located in the city of"
EIFFEL_TARGET = " Paris"
EIFFEL_DISTRACTOR = " London"
