#!/usr/bin/env python3
"""Generates the benchmark world: N synthetic mail domains with a realistic mix.

Most domains use one of a few providers' MX hosts; some are self-hosted; most
have DMARC, some MTA-STS and TLS-RPT. Addresses are in 198.18.0.0/15 (RFC 2544,
benchmarking). Writes, under OUT:
  bench.zone, reverse.zone      zone files for the authoritative server
  domains.txt                   the domain list, in order
  minimal-N.txt                 for each N, the distinct questions an audit of the
                                first N domains needs (dnsperf format: name type)
The question set mirrors what mxaudit's DNS-only built-in plugins ask (mx,
address, ptr, dmarc, mta-sts, tlsrpt): see docs/performance.md.
"""
import argparse
import os
import random

PROVIDERS = 5


def ip(n):
    # 198.18.0.0/15: 131072 addresses.
    return f"198.{18 + (n >> 16) % 2}.{(n >> 8) & 255}.{n & 255}"


def rev(addr):
    return ".".join(reversed(addr.split("."))) + ".in-addr.arpa."


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, nargs="+", required=True)
    args = ap.parse_args()
    total = max(args.n)
    rnd = random.Random(20261125)
    os.makedirs(args.out, exist_ok=True)
    zone = ["$ORIGIN bench.", "$TTL 3600", "@ IN SOA ns1 hostmaster 1 3600 600 86400 300", "@ IN NS ns1", "ns1 IN A 127.0.0.1"]
    reverse = ["$ORIGIN in-addr.arpa.", "$TTL 3600", "@ IN SOA ns1.bench. hostmaster.bench. 1 3600 600 86400 300", "@ IN NS ns1.bench."]
    next_ip = 1
    providers = []
    for p in range(PROVIDERS):
        hosts = []
        for h in range(2):
            name = f"mx{h}.prov{p}.bench."
            addrs = []
            for _ in range(2):
                a = ip(next_ip)
                next_ip += 1
                addrs.append(a)
                zone.append(f"mx{h}.prov{p} IN A {a}")
                reverse.append(f"{rev(a)} IN PTR {name}")
            hosts.append((name, addrs))
        providers.append(hosts)
    domains = []
    # question -> index of the first domain that needs it
    first = {}

    def need(i, name, rtype):
        first.setdefault((name.lower(), rtype), i)

    for i in range(total):
        d = f"d{i}.bench."
        label = f"d{i}"
        domains.append(d[:-1])
        for q in ("MX", "A", "AAAA"):
            need(i, d, q)
        need(i, f"_dmarc.{d}", "TXT")
        need(i, f"_mta-sts.{d}", "TXT")
        need(i, f"_smtp._tls.{d}", "TXT")
        if rnd.random() < 0.9:
            zone.append(f"{label} IN A {ip(100000 + i % 30000)}")
        if rnd.random() < 0.8:
            hosts = providers[rnd.randrange(PROVIDERS)]
        else:
            a = ip(next_ip)
            next_ip += 1
            name = f"mail.{d}"
            zone.append(f"mail.{label} IN A {a}")
            if rnd.random() < 0.9:
                reverse.append(f"{rev(a)} IN PTR {name}")
            hosts = [(name, [a])]
        for pref, (host, addrs) in enumerate(hosts):
            zone.append(f"{label} IN MX {10 * (pref + 1)} {host}")
            need(i, host, "A")
            need(i, host, "AAAA")
            for a in addrs:
                need(i, rev(a), "PTR")
                # forward confirmation of the PTR name (the host itself when it has a PTR)
        if rnd.random() < 0.7:
            zone.append(f'_dmarc.{label} IN TXT "v=DMARC1; p={rnd.choice(["none", "quarantine", "reject"])}"')
        if rnd.random() < 0.1:
            zone.append(f'_mta-sts.{label} IN TXT "v=STSv1; id=2026{i}"')
        if rnd.random() < 0.1:
            zone.append(f'_smtp._tls.{label} IN TXT "v=TLSRPTv1; rua=mailto:tls@{d[:-1]}"')
    with open(os.path.join(args.out, "bench.zone"), "w") as f:
        f.write("\n".join(zone) + "\n")
    with open(os.path.join(args.out, "reverse.zone"), "w") as f:
        f.write("\n".join(reverse) + "\n")
    with open(os.path.join(args.out, "domains.txt"), "w") as f:
        f.write("\n".join(domains) + "\n")
    for n in args.n:
        qs = sorted(q for q, i in first.items() if i < n)
        with open(os.path.join(args.out, f"minimal-{n}.txt"), "w") as f:
            for name, rtype in qs:
                f.write(f"{name} {rtype}\n")
        print(f"N={n}: {len(qs)} distinct questions ({len(qs) / n:.2f} per domain)")


if __name__ == "__main__":
    main()
