"""Make ``shared/tests`` importable so test modules can share helpers (``domain_fixtures``).

With ``--import-mode=importlib`` test modules cannot import one another. The port contract
suites live in the library (``tandem.testing.contracts``) so users can run them too.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
