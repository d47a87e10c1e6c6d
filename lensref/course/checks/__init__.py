"""Visible checks for the exercise notebooks: instant, one-line feedback for learners.

Each ``check_<name>(fn, ...)`` runs the learner's function on fresh inputs, compares it with the
reference implementation and either prints ``✓ name: ...`` or raises :class:`CheckFailed` whose one line
says what is wrong (wrong shape, forgot the final norm, normalized twice, off-by-one layer, ...) and
gives a hint. Graded test cells call the same checks, so a failure there scores that cell 0.
"""
from ._core import CheckFailed, default_lm
from .reading_the_grid import (
    check_answer_ranks, check_classify, check_first_top_k_layer, check_settled_layer,
)
from .logit_lens import (
    check_capture_states, check_entropy, check_kl_to_final, check_lens_logits, check_target_rank, check_to_probs,
    check_top_k,
)
from .variants import check_attribute, check_fit_translator, check_logit_diff_by_layer, check_patch_readout

__all__ = [
    "CheckFailed", "default_lm",
    "check_capture_states", "check_lens_logits", "check_to_probs", "check_top_k", "check_entropy",
    "check_kl_to_final", "check_target_rank",
    "check_first_top_k_layer", "check_settled_layer", "check_classify", "check_answer_ranks",
    "check_logit_diff_by_layer", "check_attribute", "check_patch_readout", "check_fit_translator",
]
