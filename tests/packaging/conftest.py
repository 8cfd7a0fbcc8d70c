"""The packaging tests check build outputs, so ordinary test runs do not collect them.

`make test-packaging` builds the wheels, the binary and the .deb/.rpm into dist/ and runs
these tests with CENTRIFUGO_FAST_DIST naming that folder. `test_installed.py` runs instead
inside the fresh venv that dev/run_wheel_tests.py installs a wheel into; it sets
CENTRIFUGO_FAST_EXPECT_TWINS (compiled or pure).
"""

from __future__ import annotations

import os
from pathlib import Path

_HERE = Path(__file__).parent
_ARTIFACTS = bool(os.environ.get("CENTRIFUGO_FAST_DIST"))
_INSTALLED = bool(os.environ.get("CENTRIFUGO_FAST_EXPECT_TWINS"))

collect_ignore = [
    path.name
    for path in _HERE.glob("test_*.py")
    if not (_INSTALLED if path.name == "test_installed.py" else _ARTIFACTS)
]
