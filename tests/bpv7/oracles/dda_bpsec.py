"""Runs in a separate Python environment: dtn-demo-agent's BPSec code (its source tree, named by
the first argument, used in place) verifies the bundles given on stdin.

Input (stdin, JSON): ``{"bundles": [hex, ...], "keys": [hex COSE_Key, ...]}``. Output (stdout,
JSON): per bundle, a list of ``{"type": "bib"|"bcb", "number": n, "failure": null | reason}``
in the order dtn-demo-agent processes them (BCBs, then BIBs), ``failure`` being its status report
reason code or message; or ``{"error": text}`` for a bundle it cannot parse.

Only D-Bus, GLib and certvalidator (X.509 chain checks) are replaced by empty stand-ins: the
agent imports them, the symmetric-key COSE code paths used here never call them.
"""

from __future__ import annotations

import importlib
import json
import sys
import types


def _stub(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


class _Anything:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass


def _decorator(*args: object, **kwargs: object) -> object:
    return lambda function: function


def main() -> int:
    source = sys.argv[1]
    sys.path.insert(0, source)
    dbus = _stub("dbus")
    dbus.service = _stub("dbus.service", Object=_Anything, method=_decorator, signal=_decorator)  # type: ignore[attr-defined]
    dbus.bus = _stub("dbus.bus", BusConnection=_Anything)  # type: ignore[attr-defined]
    gi = _stub("gi")
    gi.repository = _stub("gi.repository", GLib=types.SimpleNamespace())  # type: ignore[attr-defined]
    _stub("certvalidator", CertificateValidator=_Anything, ValidationContext=_Anything)
    # bp.app's __init__ imports every application (zeroconf, ...): load only bp.app.bpsec.
    app = types.ModuleType("bp.app")
    app.__path__ = [f"{source}/bp/app"]
    importlib.import_module("bp")
    sys.modules["bp.app"] = app
    bpsec = importlib.import_module("bp.app.bpsec")
    from bp.config import Config
    from bp.encoding import BlockConfidentialityBlock, BlockIntegrityBlock, Bundle
    from bp.util import BundleContainer
    from pycose.keys import SymmetricKey

    request = json.load(sys.stdin)
    context = bpsec.CoseContext()
    context._config = Config()
    for key_hex in request["keys"]:
        try:
            key = SymmetricKey.decode(bytes.fromhex(key_hex))
        except Exception as exc:  # e.g. PyPI pycose refuses 48-byte keys
            print(f"key not loaded: {exc}", file=sys.stderr)
            continue
        context.sym_key_store[key.kid] = key
    answers = []
    for bundle_hex in request["bundles"]:
        try:
            container = BundleContainer(bundle=Bundle(bytes.fromhex(bundle_hex)))
            bad_crc = container.bundle.check_all_crc()
            if bad_crc:
                answers.append({"error": f"CRC failure in blocks {sorted(bad_crc)}"})
                continue
            found = []
            for kind, block_type, verify in (
                ("bcb", BlockConfidentialityBlock, context.verify_bcb),
                ("bib", BlockIntegrityBlock, context.verify_bib),
            ):
                for block in container.block_type(block_type):
                    failure = verify(container, block)
                    found.append(
                        {
                            "type": kind,
                            "number": int(block.block_num),
                            "failure": None if failure is None else str(int(failure)),
                        }
                    )
            answers.append(found)
        except Exception as exc:  # the oracle's own failure, reported, not raised
            answers.append({"error": f"{type(exc).__name__}: {exc}"})
    json.dump(answers, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
