#!/usr/bin/env python3
"""SMTP sink for tests, built on aiosmtpd (a real SMTP server we did not write).

Every accepted message is stored as one JSON file in --dir:
    {"mail_from": str, "rcpt_tos": [str], "data_b64": base64 of the exact DATA bytes,
     "mail_options": [str], "auth_user": str | null, "tls": bool}
Files are written under a temporary name and renamed, so a reader never sees half a file.

Recipients can be refused, per address or by magic local part:
    --reject ADDR       refuse ADDR with 550 (repeatable)
    --defer ADDR        refuse ADDR with 450 (repeatable)
    reject-550…@…       any local part starting with `reject-550` gets 550
    defer-450…@…        any local part starting with `defer-450` gets 450
Options: --auth USER:PASS requires AUTH (PLAIN/LOGIN) before MAIL; --starttls-dir DIR makes a throw-away CA
and a certificate for localhost/127.0.0.1, writes DIR/ca.pem for clients to trust, and offers STARTTLS.
"""

import argparse
import asyncio
import base64
import datetime
import ipaddress
import itertools
import json
import os
import signal
import ssl
import sys
import uuid

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, directory, reject, defer):
        self.directory = directory
        self.reject = {a.lower() for a in reject}
        self.defer = {a.lower() for a in defer}
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        lowered = address.lower()
        local = lowered.split("@", 1)[0]
        if lowered in self.reject or local.startswith("reject-550"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if lowered in self.defer or local.startswith("defer-450"):
            return "450 4.2.1 <%s>: Recipient address rejected: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        if data is None:
            data = envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "data_b64": base64.b64encode(data).decode("ascii"),
            "mail_options": list(envelope.mail_options),
            "auth_user": auth_user(session),
            "tls": session.ssl is not None,
        }
        name = "%06d-%s" % (next(self.counter), uuid.uuid4().hex)
        temporary = os.path.join(self.directory, "." + name + ".tmp")
        with open(temporary, "w") as f:
            json.dump(record, f)
        os.rename(temporary, os.path.join(self.directory, name + ".json"))
        return "250 2.0.0 Ok: queued as " + name.split("-", 1)[1][:12].upper()


def auth_user(session):
    data = getattr(session, "auth_data", None)
    if isinstance(data, LoginPassword):
        return data.login.decode("utf-8", "replace")
    return None


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticator


def make_tls_context(directory):
    """A throw-away CA and a server certificate it signed, for localhost and 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "opensend test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    os.makedirs(directory, exist_ok=True)
    pem = serialization.Encoding.PEM
    with open(os.path.join(directory, "server.pem"), "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(os.path.join(directory, "server.key"), "wb") as f:
        f.write(
            key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    # Written last: its presence tells the test the certificates are ready.
    with open(os.path.join(directory, "ca.pem.tmp"), "wb") as f:
        f.write(ca.public_bytes(pem))
    os.rename(os.path.join(directory, "ca.pem.tmp"), os.path.join(directory, "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        os.path.join(directory, "server.pem"), os.path.join(directory, "server.key")
    )
    return context


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="where received messages are stored")
    parser.add_argument("--reject", action="append", default=[], metavar="ADDR")
    parser.add_argument("--defer", action="append", default=[], metavar="ADDR")
    parser.add_argument("--auth", metavar="USER:PASS")
    parser.add_argument("--starttls-dir", metavar="DIR")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    handler = Handler(args.dir, args.reject, args.defer)
    options = {"decode_data": False, "enable_SMTPUTF8": False, "hostname": "sink.test"}
    if args.auth:
        user, _, password = args.auth.partition(":")
        options.update(
            authenticator=make_authenticator(user, password),
            auth_required=True,
            auth_require_tls=bool(args.starttls_dir),
        )
    if args.starttls_dir:
        options.update(tls_context=make_tls_context(args.starttls_dir), require_starttls=True)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **options), host=args.host, port=args.port
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("smtp sink listening on %s:%d" % (args.host, args.port), flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
