"""LoRA adapters through peft, shared by the backends that serve them
(:class:`~workers.backends.causal_lm.CausalLM`,
:class:`~workers.backends.vlm_answer.TransformersVlmAnswerer`).

Adapters are loaded into ``self.model`` under immutable refs (``generalist@v3``): a ref names
one version for good, so loading a ref that is already loaded does nothing. The first adapter
wraps the model in a ``PeftModel`` and unloading the last one unwraps it again.
:meth:`PeftAdapters.using` runs a block with one adapter active, or with the bare base model
for ``None``. One re-entrant lock serialises loads, unloads and the blocks run under
:meth:`~PeftAdapters.using`, so a load never runs under a forward pass. peft injects adapter
layers into the module it wraps: the model must be the backend's own copy (``private``), never
one shared with other users.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class PeftAdapters:
    """Mixin: call :meth:`_init_adapters` in ``__init__`` after setting ``model`` and
    ``private``."""

    model: Any
    private: bool
    adapters: set[str]

    def _init_adapters(self) -> None:
        self._adapter_lock = threading.RLock()
        self.adapters = set()

    def load_adapter(self, ref: str, path: Path) -> None:
        """Load a LoRA adapter under an immutable name (``generalist@v3``)."""
        from peft import PeftModel

        if not self.private:
            raise RuntimeError(
                f"adapters need a private model copy: {type(self).__name__}(..., private=True)"
            )
        with self._adapter_lock:
            if ref in self.adapters:
                return
            if not self.adapters and not isinstance(self.model, PeftModel):
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=ref)
            else:
                self.model.load_adapter(str(path), adapter_name=ref)
            self.model.eval()
            self.adapters.add(ref)

    def unload_adapter(self, ref: str) -> None:
        """Drop adapter ``ref``; the last one unwraps the model back to the bare base (peft
        leaves a ``PeftModel`` whose last adapter was deleted unable to run a forward pass)."""
        with self._adapter_lock:
            if ref in self.adapters:
                if self.adapters == {ref}:
                    self.model = self.model.unload()
                else:
                    self.model.delete_adapter(ref)
                self.adapters.discard(ref)

    @contextlib.contextmanager
    def using(self, ref: str | None) -> Iterator[None]:
        """Run with adapter ``ref`` active, or the bare base model for ``None``."""
        with self._adapter_lock:
            if ref is None:
                if self.adapters:
                    with self.model.disable_adapter():
                        yield
                else:
                    yield
                return
            if ref not in self.adapters:
                raise KeyError(f"adapter {ref} is not loaded")
            self.model.set_adapter(ref)
            yield
