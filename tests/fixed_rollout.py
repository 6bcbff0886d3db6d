"""`python -m lens.train`, with every sampled completion replaced by a fixed text.

    python tests/fixed_rollout.py --config FILE --out DIR                      # one process
    python -m torch.distributed.run --nproc_per_node 2 tests/fixed_rollout.py --config FILE --out DIR

Why: a run on 1 process and the same run on 2 processes draw different samples (each process has
its own sampling RNG stream), so their advantages could not be compared. Only sampling is mocked:
the completion of global sample j (j = process index x local batch + i, accelerate's gather order)
is FIXED_COMPLETION(j), whatever the process count. Everything after it is the real trainer:
grading, confidences from the model, the advantage rule on the gathered rollout, the slice back to
each process, the loss and the DDP update (so step 2's confidences come from step 1's update).
"""

from __future__ import annotations

import sys

# With G = 4 samples per group, a group sees 4 of the 5 answers 0..4, and neighbouring groups see
# different ones: a sample put in the wrong group or order changes its reward.
MODULUS = 5


def fixed_completion(j: int) -> str:
    """The completion of the rollout's sample j (0-based, gather order over all processes)."""
    return f"\\boxed{{{j % MODULUS}}}"


def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
    # TRL 1.16's lowest generation step (its transformers/vLLM branch): this process's prompts (one row
    # per sample) -> completion token ids ending in EOS, as a finished sample ends, and no sampling
    # log-probs (as transformers' generate, so the trainer computes the confidences itself).
    tokenizer = self.processing_class
    first = self.accelerator.process_index * len(prompt_ids)
    completion_ids = [tokenizer(fixed_completion(first + i), add_special_tokens=False).input_ids
                      + [tokenizer.eos_token_id] for i in range(len(prompt_ids))]
    return completion_ids, None


def main() -> int:
    # Patched here, not on import: tests import fixed_completion into the pytest process, whose other
    # tests use the real trainer.
    from lens import train
    from lens.trainer import LensGRPOTrainer

    LensGRPOTrainer._generate_single_turn = _generate_single_turn
    return train.main()


if __name__ == "__main__":
    sys.exit(main())
