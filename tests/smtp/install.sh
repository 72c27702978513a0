#!/usr/bin/env bash
# Installs what the SMTP relay's client tests need beyond Python: swaks and Postfix (Debian packages).
# Idempotent.
set -euo pipefail
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}
command -v swaks >/dev/null || apt_install swaks
# swaks speaks TLS through these Perl modules (recommended, not required, by the package).
perl -MNet::SSLeay -MIO::Socket::SSL -e1 2>/dev/null || apt_install libnet-ssleay-perl libio-socket-ssl-perl
command -v swaks

# Postfix for tests/smtp/postfix_relay.sh, which runs a private instance of it: the package is installed
# without a configuration, so it is never set up or started as this machine's mail server. Its SMTP client
# authenticates through Cyrus SASL, whose PLAIN and LOGIN mechanisms are in libsasl2-modules.
if [ ! -x /usr/sbin/postfix ]; then
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
  apt_install postfix
fi
ls /usr/lib/*/sasl2/libplain.so >/dev/null 2>&1 ||
  apt_install libsasl2-modules
echo /usr/sbin/postfix
