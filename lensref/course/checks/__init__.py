"""The exercise checks: instant one-line feedback for learners, and the same cases judged for grading.

Each learner function has an :class:`Exercise` (``EXERCISES[name]``): its cases as typed records, the inputs
rebuilt from a case, and a judge that sees only the returned value and computes its own reference. The
visible ``check_<name>(fn, ...)`` runs all three in the learner's kernel and either prints ``✓ name: ...`` or
raises :class:`CheckFailed` whose one line says what is wrong (wrong shape, forgot the final norm, normalized
twice, off-by-one layer, ...) and gives a hint. Grading calls the learner's function in a sandbox on the
hidden cases and judges the returned values outside it (``lensref.course.grading``).
"""

from typing import Any

from . import logit_lens, reading_the_grid, variants
from ._core import Case, CheckFailed, Exercise, ModelRef, Outcome, default_lm, run_check, run_learner, unwrap
from .logit_lens import (
    check_capture_states,
    check_entropy,
    check_kl_to_final,
    check_lens_logits,
    check_target_rank,
    check_to_probs,
    check_top_k,
)
from .reading_the_grid import check_answer_ranks, check_classify, check_first_top_k_layer, check_settled_layer
from .variants import check_attribute, check_fit_translator, check_logit_diff_by_layer, check_patch_readout

EXERCISES: dict[str, Exercise[Any]] = {
    ex.name: ex for module in (logit_lens, reading_the_grid, variants) for ex in module.EXERCISES
}

__all__ = [
    "Case",
    "CheckFailed",
    "Exercise",
    "ModelRef",
    "Outcome",
    "EXERCISES",
    "default_lm",
    "run_check",
    "run_learner",
    "unwrap",
    "check_capture_states",
    "check_lens_logits",
    "check_to_probs",
    "check_top_k",
    "check_entropy",
    "check_kl_to_final",
    "check_target_rank",
    "check_first_top_k_layer",
    "check_settled_layer",
    "check_classify",
    "check_answer_ranks",
    "check_logit_diff_by_layer",
    "check_attribute",
    "check_patch_readout",
    "check_fit_translator",
]
