"""lm-eval's own minerva_math prompt, answer processing and metrics, re-exported for the local task.

The task YAML next to this file refers to these functions with `!function utils.<name>`; importing
them from lm-eval (rather than copying) keeps the cross-check on exactly lm-eval's implementation.
"""

from lm_eval.tasks.minerva_math.utils import (  # noqa: F401
    doc_to_text,
    list_fewshot_samples,
    process_docs,
    process_results,
)
