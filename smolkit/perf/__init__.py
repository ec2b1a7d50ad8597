"""The performance wing (notebook 04 and `make bench` only): what makes training fast, or fit, on a machine."""

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

__all__ = [name for name in dir() if not name.startswith("_") and name not in {"hardware", "runs", "speed", "training"}]
