"""The WAT fixtures of the runtime tests, compiled with wasmtime's own wat2wasm (no toolchain)."""

from __future__ import annotations

import functools
from pathlib import Path

import wasmtime

WASM_DIR = Path(__file__).parent / "wasm"


@functools.cache
def wasm(name: str, **substitutions: str) -> bytes:
    """``wasm/<name>.wat`` compiled, after replacing each placeholder key with its value."""
    text = (WASM_DIR / f"{name}.wat").read_text()
    for placeholder, value in substitutions.items():
        assert placeholder in text, f"{name}.wat has no {placeholder}"
        text = text.replace(placeholder, value)
    return bytes(wasmtime.wat2wasm(text))


def wat(text: str) -> bytes:
    """Inline WAT compiled."""
    return bytes(wasmtime.wat2wasm(text))
