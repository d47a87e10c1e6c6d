"""What the course hands to a learning-management system, in the LMS's own formats.

- :mod:`.qti`: the quiz bank as an IMS QTI 1.2 package (Canvas Classic Quizzes, Brightspace, ...)
- :mod:`.canvas_quiz_report`: reading Canvas's quiz "Student Analysis" CSV (used by ``lensref quiz grade-class``)
- :mod:`.roster`: the instructor's roster (an LMS gradebook export or a plain CSV), matched to student folders
- :mod:`.class_scores`: every student's total for one assignment, read from the gradebook
- :mod:`.canvas`, :mod:`.moodle`, :mod:`.plain_csv`: grade import files
- :mod:`.feedback_package`: the feedback pages as a bulk-upload zip (Moodle, Canvas)
- :mod:`.grade_export`: ``lensref grade export``, tying these together
"""
