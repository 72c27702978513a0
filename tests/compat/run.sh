#!/usr/bin/env bash
# Client compatibility: the official Resend SDKs (PyPI `resend`, npm `resend`) and webhook verifiers (PyPI
# `svix`, `standardwebhooks`, npm `svix`), unchanged, against a real
# `opensend serve` on loopback with a fresh SQLite database. Installs the pinned SDK versions first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r "$here/requirements.txt"
(cd "$here/node" && npm ci --silent --no-audit --no-fund)
source "$root/tests/serve.sh"
opensend_start
export RESEND_API_KEY="$OPENSEND_TOKEN"

status=0
RESEND_API_URL="$OPENSEND_URL" python3 "$here/python_sdk.py" || status=1
RESEND_BASE_URL="$OPENSEND_URL" node "$here/node/sdk.mjs" || status=1
RESEND_API_URL="$OPENSEND_URL" python3 "$here/audience.py" || status=1
RESEND_BASE_URL="$OPENSEND_URL" node "$here/node/audience.mjs" || status=1
RESEND_API_URL="$OPENSEND_URL" python3 "$here/webhooks.py" || status=1
RESEND_BASE_URL="$OPENSEND_URL" node "$here/node/webhooks.mjs" || status=1
RESEND_API_URL="$OPENSEND_URL" python3 "$here/templates.py" || status=1
RESEND_BASE_URL="$OPENSEND_URL" node "$here/node/templates.mjs" || status=1
RESEND_API_URL="$OPENSEND_URL" python3 "$here/broadcasts.py" || status=1
RESEND_BASE_URL="$OPENSEND_URL" node "$here/node/broadcasts.mjs" || status=1
if [ "$status" -ne 0 ]; then
  opensend_log_tail
fi
exit "$status"
