"""Make ``projector/tests`` importable so test modules share ``projector_helpers``."""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)


# pytest's importlib mode names these modules ``projector.tests...`` after their directory and
# registers a placeholder ``projector`` package for /work/main/projector, which shadows the real
# one; let the placeholder find the real package's modules too.
_SRC = str(Path(__file__).resolve().parents[1] / "src" / "projector")
_placeholder = sys.modules.get("projector")
if _placeholder is not None and _SRC not in list(getattr(_placeholder, "__path__", [_SRC])):
    _placeholder.__path__.append(_SRC)
