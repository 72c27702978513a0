#!/usr/bin/env bash
# Installs the Python test peers (aiosmtpd, moto's server). Idempotent: a quick no-op when the pinned
# versions are already present, so CI can call it on every run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

if "$python" - "$here/requirements.txt" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version, PackageNotFoundError
wanted = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, pinned = line.partition("==")
    wanted.append((name.split("[", 1)[0], pinned))
try:
    ok = all(version(name) == pinned for name, pinned in wanted)
    # moto's server needs its [server] extra; importing proves the extra is there too.
    import aiosmtpd.smtp, moto.server, dkim, nacl  # noqa: F401
except (PackageNotFoundError, ImportError):
    ok = False
sys.exit(0 if ok else 1)
PY
    exit 0
fi

"$python" -m pip install -q --disable-pip-version-check --root-user-action=ignore -r "$here/requirements.txt"
