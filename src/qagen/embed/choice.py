"""Which encoder embeds when none is named (``encoder="auto"``, the flow's and CLI's default).

Why: the useful encoder depends on the machine. MERT (LLark's and MU-LLaMA's family) is the
production choice, but qagen never downloads weights, and the only MERT that exists without a
download is a random one whose embeddings carry no music. So:

- real MERT weights in the local Hugging Face cache → that MERT (330M before 95M);
- otherwise → ``qagen/madmom-features``, the embedded encoder that carries music (on a CUDA
  machine with a warning that names the ``hf download`` to run: a GPU build should use MERT,
  as ``configs/full-gpu.yaml`` does by name).

The built-in random MERT (``qagen/mert-tiny-random``) is only ever used when named.
"""

from __future__ import annotations

import logging

from qagen.embed.madmom_features import MADMOM_ENCODER

log = logging.getLogger(__name__)

AUTO_ENCODER = "auto"
#: MERT checkpoints, preferred first.
MERT_IDS = ("m-a-p/MERT-v1-330M", "m-a-p/MERT-v1-95M")


def cached_mert() -> str | None:
    """The first of :data:`MERT_IDS` whose snapshot is in the local HF cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for repo_id in MERT_IDS:
        try:
            hit = try_to_load_from_cache(repo_id, "config.json")
        except (OSError, ValueError):  # a malformed cache is not a MERT
            continue
        if isinstance(hit, str):
            return repo_id
    return None


def choose_encoder(name: str | None = None, *, cuda: bool | None = None) -> str:
    """``name`` unless it is None or ``"auto"``; then the machine's encoder (module doc).

    ``cuda`` overrides detection (tests); None asks torch when it is installed.
    """
    if name and name != AUTO_ENCODER:
        return name
    chosen = cached_mert()
    if chosen is None:
        chosen = MADMOM_ENCODER
        if cuda if cuda is not None else _has_cuda():
            log.warning("encoder auto: no MERT in the local Hugging Face cache, so %s on a GPU;"
                        " for MERT run `hf download %s` once", MADMOM_ENCODER, MERT_IDS[0])
    log.info("encoder auto → %s", chosen)
    return chosen


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
