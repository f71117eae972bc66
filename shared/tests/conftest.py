"""Make ``shared/tests`` importable so test modules can share contract suites.

With ``--import-mode=importlib`` test modules cannot import one another; the contract suites in
``contracts/`` (one per port, subclassed per backend) are imported as ``contracts.<module>``.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
