#!/usr/bin/env bash
# Conformance: schemathesis against a real `opensend serve` (started as tests/compat does, through
# tests/serve.sh), with two documents:
#   (a) Resend's own (resend-openapi.yaml, MIT, see resend-openapi.LICENSE), cut to the operations we serve:
#       our answers must fit Resend's response schemas;
#   (b) ours, as GET /openapi.json serves it.
# Checks: no 5xx for any input (`not_a_server_error`) and responses that match the documented schemas
# (`response_schema_conformance`). A few examples per operation (CONFORMANCE_MAX_EXAMPLES) keep it short.
# Deleting API keys is left out: the run would revoke its own key. Also checks that docs/api.md lists exactly the Resend operations we serve (UPDATE_DOCS=1 rewrites it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${CONFORMANCE_VENV:-/var/cache/opensend/venv-conformance}"
max_examples="${CONFORMANCE_MAX_EXAMPLES:-5}"

# The virtual environment is made once and reused; reinstalled only when the pins change.
if ! cmp -s "$here/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi

source "$root/tests/serve.sh"
opensend_start

curl -sf "$OPENSEND_URL/openapi.json" -o "$OPENSEND_WORK/opensend.json"
"$venv/bin/python" "$here/operations.py" filter "$here/resend-openapi.yaml" \
  "$OPENSEND_WORK/opensend.json" "$OPENSEND_WORK/resend-served.json"

status=0
docs_mode=--check
[ "${UPDATE_DOCS:-}" = 1 ] && docs_mode=--write
"$venv/bin/python" "$here/operations.py" docs "$here/resend-openapi.yaml" \
  "$OPENSEND_WORK/opensend.json" "$docs_mode" "$root/docs/api.md" || status=1

run_schemathesis() {
  local name="$1" document="$2"
  echo "==> schemathesis: $name"
  "$venv/bin/schemathesis" run "$document" \
    --url "$OPENSEND_URL" \
    --header "Authorization: Bearer $OPENSEND_TOKEN" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$max_examples" \
    --seed "${CONFORMANCE_SEED:-1}" \
    --workers 2 \
    --request-timeout 30 \
    --suppress-health-check all \
    --exclude-operation-id api-keys/remove \
    --exclude-operation-id api_keys.remove \
    --no-color || status=1
}
run_schemathesis "Resend's document, the operations we serve" "$OPENSEND_WORK/resend-served.json"
run_schemathesis "our document (/openapi.json)" "$OPENSEND_WORK/opensend.json"

if [ "$status" -ne 0 ]; then
  opensend_log_tail
fi
exit "$status"
