"""What the course hands to a learning-management system, in the LMS's own formats.

- :mod:`.qti`: the quiz bank as an IMS QTI 1.2 package (Canvas Classic Quizzes, Brightspace, ...)
- :mod:`.canvas_quiz_report`: reading Canvas's quiz "Student Analysis" CSV (used by ``lensref quiz grade-class``)
- :mod:`.class_scores`: every student's total for one assignment, read from the gradebook
- :mod:`.roster`: the instructor's roster (Canvas's or Moodle's gradebook export, or a plain CSV)
- :mod:`.collected`: which LMS identity each student folder was collected from (``submitted/collected.csv``)
- :mod:`.matching`: student folders to roster entries, refusing ambiguity
- :mod:`.grade_rows`, :mod:`.canvas`, :mod:`.moodle`, :mod:`.plain_csv`: the grade import files
- :mod:`.feedback_package`: the feedback pages as a bulk-upload zip (Moodle, Canvas)
- :mod:`.grade_export`: ``lensref grade export``, tying these together
"""
