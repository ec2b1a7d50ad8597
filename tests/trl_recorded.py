"""TRL's own sft or dpo script, run as its `__main__` runs it, recording which examples each rank trained on.

Test instrumentation, not part of smolkit: `torchrun ... tests/trl_recorded.py sft --config FILE` stands in for
`torchrun ... -m trl.scripts.sft --config FILE`. The only change is the trainer class the script builds: a subclass
whose data collator keeps a digest of every example it batches, and which writes `<output_dir>/../rank{N}.json`
(rank, world size, steps, the digests of the examples of the steps that ran) when training ends.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import trl
from trl.scripts import dpo, sft

SCRIPTS = {"sft": (sft, "SFTTrainer"), "dpo": (dpo, "DPOTrainer")}


def digest(example: dict[str, Any]) -> str:
    """A short digest of an example's token ids (every key that ends in "ids"), as the collator receives it."""
    ids = {k: v for k, v in example.items() if k.endswith("ids")} or example
    text = json.dumps(ids, sort_keys=True, default=lambda v: v.tolist())
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def recording(trainer_class: type) -> type:
    """A subclass of a TRL trainer that records its batches' examples and writes them per rank after training."""

    class Recorded(trainer_class):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.seen: list[str] = []
            collate = self.data_collator

            def record(features: list[dict[str, Any]]) -> Any:
                self.seen.extend(digest(f) for f in features)
                return collate(features)

            self.data_collator = record

        def train(self, *args: Any, **kwargs: Any) -> Any:
            result = super().train(*args, **kwargs)
            # The dataloader collates one batch ahead, so keep only the examples of the steps that ran.
            trained = result.global_step * self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps
            rank = self.accelerator.process_index
            record = {"rank": rank, "world_size": self.accelerator.num_processes, "steps": result.global_step,
                      "examples": self.seen[:trained], "training_loss": result.training_loss}
            path = Path(self.args.output_dir).parent / f"rank{rank}.json"
            path.write_text(json.dumps(record), encoding="utf-8")
            return result

    return Recorded


if __name__ == "__main__":
    script, name = SCRIPTS[sys.argv.pop(1)]
    setattr(trl, name, recording(getattr(trl, name)))  # the script's main imports it from trl when it runs
    # As the script's own `if __name__ == "__main__":` block does:
    parser = script.make_parser()
    script_args, training_args, model_args, dataset_args = parser.parse_args_and_config(fail_with_unknown_args=False)
    script.main(script_args, training_args, model_args, dataset_args)
