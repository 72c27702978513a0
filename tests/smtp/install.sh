#!/usr/bin/env bash
# Installs what the SMTP relay's client tests need beyond Python: swaks (Debian package). Idempotent.
set -euo pipefail
if ! command -v swaks >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends swaks >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends swaks >/dev/null; }
fi
# swaks speaks TLS through these Perl modules (recommended, not required, by the package).
perl -MNet::SSLeay -MIO::Socket::SSL -e1 2>/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libnet-ssleay-perl libio-socket-ssl-perl >/dev/null
command -v swaks
