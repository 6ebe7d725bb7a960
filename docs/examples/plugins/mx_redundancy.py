#!/usr/bin/env python3
"""An mxaudit exec plugin: reads the request (JSON) on stdin, prints findings (JSON) on stdout.

See docs/exec-protocol.md. Exit 0 with {"findings": []} when all is well.
"""
import json
import sys

request = json.load(sys.stdin)
minimum = int(request["params"].get("min_hosts", 2))
hosts = {}
for mx in request["mx"]:
    for address in mx["addresses"]:
        hosts.setdefault(address, mx["host"])
findings = []
if request.get("mx_error") is None and 0 < len(hosts) < minimum:
    findings.append({
        "code": "acme.single_mx",
        "subject": request["domain"],
        "evidence": [f"{host} {address}" for address, host in sorted(hosts.items())],
        "vars": {
            "count": len(hosts),
            "expected": minimum,
            "value": ", ".join(sorted(set(hosts.values()))),
        },
    })
json.dump({"findings": findings}, sys.stdout)
