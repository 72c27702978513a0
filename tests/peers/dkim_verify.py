#!/usr/bin/env python3
"""Verifies every DKIM-Signature of a message with dkimpy (an independent implementation).

    dkim_verify.py MESSAGE_FILE RECORDS_JSON

RECORDS_JSON maps DNS names (`sel._domainkey.example.com`) to TXT values, standing in for DNS. Prints one
line per signature ("pass d=… s=… a=…" or "fail …") and exits 0 only when every signature verifies.
"""

import json
import sys

import dkim

message = open(sys.argv[1], "rb").read()
records = json.load(open(sys.argv[2]))


def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    value = records.get(name.rstrip("."))
    return value.encode() if value is not None else None


d = dkim.DKIM(message)
count = sum(1 for line in message.split(b"\r\n") if line.lower().startswith(b"dkim-signature:"))
if count == 0:
    print("fail: no DKIM-Signature")
    sys.exit(1)
ok = True
for index in range(count):
    passed = d.verify(idx=index, dnsfunc=dnsfunc)
    sig = d.signature_fields if hasattr(d, "signature_fields") else {}
    fields = " ".join(f"{k.decode()}={sig[k].decode()}" for k in (b"d", b"s", b"a") if k in sig)
    print(("pass " if passed else "fail ") + fields)
    ok = ok and passed
sys.exit(0 if ok else 1)
