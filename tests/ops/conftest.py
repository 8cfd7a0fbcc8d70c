"""Operations tests with real outside programs (Let's Encrypt's pebble ACME test CA, Debian's
nginx): slow and twin-insensitive, so `make test-ops` runs them once, with CENTRIFUGO_FAST_OPS=1
(ordinary runs over `tests/`, on each twin, skip collecting them).

`make ops-deps` installs the programs: pebble with `go install` into build/tools/ (outside
git), nginx with apt-get when run as root. PEBBLE_BIN / CHALLTESTSRV_BIN / NGINX_BIN name
them; with CI=true a missing one fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path

collect_ignore = (
    []
    if os.environ.get("CENTRIFUGO_FAST_OPS")
    else [p.name for p in Path(__file__).parent.glob("test_*.py")]
)
