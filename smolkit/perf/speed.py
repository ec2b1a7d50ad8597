"""CPU speed-ups that no config field reaches; `speed_up` applies them (notebook 04 and `make bench` only).
None changes what is computed (the same loss and gradients up to float rounding), only how fast:
- `use_packed_attention`: padding-free rows hold several conversations, and SDPA needs a row-long block mask and
  computes attention across them; this runs each document on its own, as FlashAttention's varlen kernel does.
- `compact_lm_head`: TRL 1.16's fused LM head projects only labelled positions (the answers) on Triton devices and
  every position elsewhere, about a fifth of a CPU step; this makes it compact on CPUs. It replaces two private
  names of `trl.trainer.utils` and raises, naming them, if TRL drops either (never a silent no-op).
- `keep_freed_memory`: glibc returns big freed blocks to the OS and the next step faults them in again page by
  page, slow in a virtual machine; keeping them for reuse saves those faults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from typing import Any

import torch

PACKED_ATTENTION = "smolkit_packed_sdpa"
TRL_NAMES = ("_use_triton", "_CHUNKED_LOGPROB_CHUNK_SIZE")  # what compact_lm_head replaces in trl.trainer.utils
CPU_VOCAB_TILE = 8192  # vocabulary columns per LM-head tile on a CPU (TRL: 32768)
_TRL_ORIGINAL: dict[str, Any] = {}  # what compact_lm_head replaced, to put back


def document_sizes(position_ids: torch.Tensor | None, length: int) -> list[int] | None:
    """Lengths of the documents in one padding-free row (its position ids restart at 0 for each); else None."""
    if position_ids is None or position_ids.dim() != 2 or position_ids.shape[0] != 1:
        return None
    row = position_ids[0]
    if row.numel() != length or length < 2 or int(row[0]) != 0:
        return None
    starts = torch.nonzero(row == 0).flatten().tolist()
    if len(starts) < 2:
        return None
    return [b - a for a, b in zip(starts, starts[1:] + [length])]


def packed_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                     **kwargs: Any) -> tuple[torch.Tensor, None]:
    """SDPA on each document of a padding-free row, causal and unmasked; any other input goes to plain SDPA."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    length = query.shape[2]
    sizes = None
    if key.shape[2] == length and kwargs.get("softcap") is None:
        sizes = document_sizes(kwargs.get("position_ids"), length)
    if sizes is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    gqa = query.shape[1] != key.shape[1]
    outputs = [torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling,
                                                                is_causal=True, enable_gqa=gqa)
               for q, k, v in zip(query.split(sizes, 2), key.split(sizes, 2), value.split(sizes, 2))]
    return torch.cat(outputs, 2).transpose(1, 2), None  # the caller reshapes it into a contiguous tensor


def use_packed_attention(model: Any) -> bool:
    """Switch a model that uses SDPA to `packed_attention`; False, model unchanged, for any other attention."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    current = getattr(model.config, "_attn_implementation", None)
    if current == PACKED_ATTENTION:
        return True
    if current != "sdpa":
        return False
    AttentionInterface.register(PACKED_ATTENTION, packed_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PACKED_ATTENTION, sdpa_mask)  # padded batches keep their masks
    model.set_attn_implementation(PACKED_ATTENTION)
    return True


def trl_utils() -> Any:
    """`trl.trainer.utils`, checked to hold every name `compact_lm_head` replaces; a RuntimeError names any gone."""
    import trl
    import trl.trainer.utils as utils

    missing = [name for name in TRL_NAMES if not hasattr(utils, name)]
    if missing:
        raise RuntimeError(f"smolkit.perf.speed.compact_lm_head replaces trl.trainer.utils.{' and '.join(missing)}, "
                           f"which TRL {trl.__version__} does not have (written for TRL 1.16). Install the TRL "
                           "version requirements.txt pins, or pass lm_head=False to speed_up.")
    return utils


def compact_lm_head(on: bool = True) -> bool:
    """On a CPU, make TRL's fused LM head score only labelled positions, in smaller tiles; `on=False` undoes it."""
    utils = trl_utils()
    for name in TRL_NAMES:
        _TRL_ORIGINAL.setdefault(name, getattr(utils, name))
    if not on:
        for name, value in _TRL_ORIGINAL.items():
            setattr(utils, name, value)
        return False
    original = _TRL_ORIGINAL["_use_triton"]

    def compact_on_cpu(device: torch.device) -> bool:
        """TRL asks this whether to score only labelled positions: yes on CPUs (eager, nothing to recompile)."""
        return device.type == "cpu" or original(device)

    utils._use_triton = compact_on_cpu
    # A tile of n tokens x 8192 fp32 logits stays under glibc's 32 MiB mmap threshold up to 1024 tokens, so
    # keep_freed_memory can reuse it; TRL's 32768 columns would be mapped and faulted in again for every tile.
    utils._CHUNKED_LOGPROB_CHUNK_SIZE = CPU_VOCAB_TILE
    return True


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks under 32 MiB and up to 1 GiB of free heap for reuse; False where not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30)
                and libc.mallopt(m_top_pad, 64 << 20))


def speed_up(model: Any, device: str, lm_head: bool = True) -> list[str]:
    """Apply the speed-ups that suit `device` to this process and `model`; one line per change, to print."""
    if not str(device).startswith("cpu"):
        return []  # measured on CPUs only; on GPUs TRL already scores compactly and FlashAttention packs
    done = []
    if use_packed_attention(model):
        done.append("attention: each document of a padding-free row on its own (no row-long mask)")
    if lm_head and compact_lm_head():
        done.append("LM head: only positions with a label are projected onto the vocabulary")
    if keep_freed_memory():
        done.append("memory: freed blocks kept for reuse instead of returned to the OS")
    return done
