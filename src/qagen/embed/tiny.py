"""The built-in encoder: a tiny random-initialised model with MERT-v1's architecture.

Why: tests, the demo build and CPU-only users need an encoder without downloading ~400 MB
(MERT-v1-95M) or 1.3 GB (330M) of weights. This model has MERT-v1's feature encoder (seven
convolutions, kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2: 320 samples per frame, so 75
frames/s at 24 kHz; group norm, no conv bias, layer-normed projection) and a small
post-norm transformer (4 layers, hidden 64). Its weights are random from a fixed seed, so its
embeddings carry **no musical meaning**: it exists so the real loading and pipeline code
runs end to end. It is written once as a plain HF folder (config, safetensors,
preprocessor_config.json) and then loaded exactly like a real checkpoint folder.

The folder appears atomically (``qagen.model_cache.build_once``: built under a temporary name,
then renamed), so a killed build never leaves a folder that looks complete, and two processes
racing keep one copy.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from qagen.model_cache import build_once, model_dir

log = logging.getLogger(__name__)

#: Folder name under ``<cache_root>/models/``; bump the suffix when the recipe changes.
TINY_DIRNAME = "mert-tiny-random-v1"
#: Provenance file written into the folder.
PROVENANCE_FILE = "qagen_model.json"
SEED = 0
#: MERT-v1's feature encoder (m-a-p/MERT-v1-95M config.json), kept; only widths shrink.
MERT_CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
MERT_CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)
SAMPLE_RATE = 24000


def tiny_config_kwargs() -> dict[str, object]:
    """``HubertConfig`` arguments of the tiny model: MERT-v1-95M's layout, small widths."""
    return {
        "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
        "intermediate_size": 128, "hidden_act": "gelu",
        "conv_dim": [32] * len(MERT_CONV_KERNEL), "conv_kernel": list(MERT_CONV_KERNEL),
        "conv_stride": list(MERT_CONV_STRIDE), "conv_bias": False,
        "feat_extract_norm": "group", "feat_extract_activation": "gelu",
        "feat_proj_layer_norm": True, "do_stable_layer_norm": False,
        "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
        "conv_pos_batch_norm": False, "layer_norm_eps": 1e-5, "vocab_size": 32,
    }


def tiny_model_dir(*, cache_root: Path | None = None) -> Path:
    """The built-in model's folder, built on first use (~1 s) and reused afterwards.

    Parameters
    ----------
    cache_root
        Root of qagen's cache (default :func:`qagen.model_cache.default_cache_root`, i.e.
        ``$QAGEN_HOME`` or ``~/.cache/qagen``); the folder is ``<root>/models/…``.
    """
    target = model_dir(TINY_DIRNAME, cache_root=cache_root)

    def build(tmp: Path) -> None:
        write_tiny_model(tmp)
        log.info("built the random-initialised tiny MERT encoder for %s", target)

    return build_once(target, build, done_file=PROVENANCE_FILE)


def write_tiny_model(out_dir: Path) -> None:
    """Write the tiny model (seeded random weights), its feature extractor and provenance.

    The global torch RNG is left as it was (the seed is applied inside ``fork_rng``).
    """
    import torch
    import transformers
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    config = HubertConfig(**tiny_config_kwargs())  # type: ignore[arg-type]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = HubertModel(config)
    model.eval().save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(out_dir)
    provenance = {
        "model": "qagen/mert-tiny-random", "random_init": True, "seed": SEED,
        "note": "random weights with MERT-v1's architecture: embeddings carry no musical "
                "meaning; for tests and the offline demo only",
        "architecture_from": "m-a-p/MERT-v1-95M (feature encoder kept, widths reduced)",
        "transformers": transformers.__version__, "torch": torch.__version__,
    }
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
