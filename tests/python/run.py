"""Runs the Python module's tests (tests/python/test_*.py) with unittest; exits 77 (a ctest
skip) with the reason when they cannot run: no numpy, or a build the interpreter cannot load.
PYTHONPATH must hold the built package (build/python), as ctest's environment sets it."""
import os
import sys
import unittest

if os.environ.get("ATTN_PY_SKIP"):
    print("skip:", os.environ["ATTN_PY_SKIP"])
    sys.exit(77)
try:
    import numpy  # noqa: F401
except ImportError:
    print("skip: numpy is not installed (python3-numpy)")
    sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
result = unittest.TextTestRunner(verbosity=1).run(suite)
sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
