"""Runs tests of the Python module with unittest: `run.py test_attn.py` (numpy alone) or
`run.py test_torch.py torch` (also needs the named module). Exits 77 (a ctest skip) with the
reason when they cannot run: numpy or the named module missing, or a build the interpreter
cannot load. PYTHONPATH must hold the built package (build/python), as ctest's sets it."""
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

for name in sys.argv[2:]:
    try:
        __import__(name)
    except ImportError as e:
        print(f"skip: {name} cannot be imported ({e})")
        sys.exit(77)

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
suite = unittest.defaultTestLoader.discover(here, pattern=sys.argv[1], top_level_dir=here)
result = unittest.TextTestRunner(verbosity=1).run(suite)
sys.exit(0 if result.wasSuccessful() and result.testsRun > 0 else 1)
