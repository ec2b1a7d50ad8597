"""The performance wing: what makes training fast or fit on a machine, for notebook 04 and `make bench` only.
Nothing in the lesson core imports it; the lessons train with stock TRL, fp32 on a CPU."""

from smolkit.perf.hardware import (
                                   ARCHITECTURES,
                                   TARGETS,
                                   architecture_parameters,
                                   bf16_instructions,
                                   config_code,
                                   describe,
                                   estimate_memory,
                                   precision_probe,
                                   setup_for,
)
from smolkit.perf.runs import in_fresh_process, track, training_run
from smolkit.perf.speed import speed_up
from smolkit.perf.training import (
                                   TrainingClock,
                                   answer_logps,
                                   build_trainer,
                                   eval_steps,
                                   heldout_examples,
                                   heldout_loss,
                                   sequence_lengths,
)

__all__ = ["ARCHITECTURES", "TARGETS", "TrainingClock", "answer_logps", "architecture_parameters",
           "bf16_instructions", "build_trainer", "config_code", "describe", "estimate_memory", "eval_steps",
           "heldout_examples", "heldout_loss", "in_fresh_process", "precision_probe", "sequence_lengths", "setup_for",
           "speed_up", "track", "training_run"]
