#!/usr/bin/env python3
"""Generates the benchmark world: N synthetic mail domains with a realistic mix.

Most domains use one of a few providers' MX hosts; some are self-hosted; most
have DMARC, some MTA-STS and TLS-RPT. Addresses are in 198.18.0.0/15 (RFC 2544,
benchmarking). Writes, under OUT:
  bench.zone, reverse.zone      zone files for the authoritative server
  domains.txt                   the domain list, in order
  minimal-N.txt                 for each N, the distinct questions an audit of the
                                first N domains needs (dnsperf format: name type)
The question set is what the DNS-only built-in plugins need (mx, address, ptr,
spf, dmarc, the default blocklists, mta-sts, tlsrpt), each question once: see
docs/performance.md. Also writes one zone per default blocklist (the real zone
names, as the testbed does) with the RFC 5782 test points and a few listed
addresses, and lists.txt naming those zones.
"""
import argparse
import os
import random

PROVIDERS = 5
# The blocklists on by default (plugins/*.toml): IP lists, then the domain list.
IP_LISTS = ["zen.spamhaus.org", "bl.spamcop.net", "ips.backscatterer.org",
            "dnsbl-1.uceprotect.net", "psbl.surriel.com", "bl.mailspike.net"]
DOMAIN_LISTS = ["dbl.spamhaus.org"]
# Self-hosted addresses listed on each list (a few per list).
LISTED_PER_LIST = 5


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
    provider_spf = []
    for p in range(PROVIDERS):
        # Each provider's SPF include has two nested includes of netblocks:
        # 3 DNS-querying terms, shared by every customer (RFC 7208 §4.6.4 counts them).
        zone.append(f'_spf.prov{p} IN TXT "v=spf1 include:_nb1.prov{p}.bench include:_nb2.prov{p}.bench ~all"')
        zone.append(f'_nb1.prov{p} IN TXT "v=spf1 ip4:198.18.{p}.0/24 -all"')
        zone.append(f'_nb2.prov{p} IN TXT "v=spf1 ip4:198.19.{p}.0/24 ip6:2001:db8:{p}::/48 -all"')
        provider_spf.append([f"_spf.prov{p}.bench.", f"_nb1.prov{p}.bench.", f"_nb2.prov{p}.bench."])
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

    # The lists' RFC 5782 §5 self-tests: once per run, by the first domain
    # with an address to ask (every domain has one).
    for z in IP_LISTS:
        need(0, f"2.0.0.127.{z}.", "A")
        need(0, f"1.0.0.127.{z}.", "A")
    for z in DOMAIN_LISTS:
        need(0, f"dbltest.com.{z}.", "A")
        need(0, f"invalid.{z}.", "A")
    self_hosted = []  # (domain index, address)

    for i in range(total):
        d = f"d{i}.bench."
        label = f"d{i}"
        domains.append(d[:-1])
        for q in ("MX", "A", "AAAA"):
            need(i, d, q)
        need(i, d, "TXT")  # SPF
        for z in DOMAIN_LISTS:
            need(i, f"{d}{z}.", "A")
        need(i, f"_dmarc.{d}", "TXT")
        need(i, f"_mta-sts.{d}", "TXT")
        need(i, f"_smtp._tls.{d}", "TXT")
        if rnd.random() < 0.9:
            zone.append(f"{label} IN A {ip(100000 + i % 30000)}")
        if rnd.random() < 0.8:
            prov = rnd.randrange(PROVIDERS)
            hosts = providers[prov]
            # SPF: the provider's include (3 lookups), sometimes mx and a
            # second provider: trees of 3 to 8 lookups.
            terms = [f"include:_spf.prov{prov}.bench"]
            includes = [prov]
            if rnd.random() < 0.5:
                terms.append("mx")
            if rnd.random() < 0.3:
                other = (prov + 1 + rnd.randrange(PROVIDERS - 1)) % PROVIDERS
                terms.append(f"include:_spf.prov{other}.bench")
                includes.append(other)
            if rnd.random() < 0.3:
                terms.append("a")
        else:
            a = ip(next_ip)
            next_ip += 1
            name = f"mail.{d}"
            zone.append(f"mail.{label} IN A {a}")
            if rnd.random() < 0.9:
                reverse.append(f"{rev(a)} IN PTR {name}")
            hosts = [(name, [a])]
            self_hosted.append((i, a))
            terms = ["mx", "a"]
            includes = []
            if rnd.random() < 0.5:
                prov = rnd.randrange(PROVIDERS)
                terms.append(f"include:_spf.prov{prov}.bench")
                includes.append(prov)
        if rnd.random() < 0.95:
            zone.append(f'{label} IN TXT "v=spf1 {" ".join(terms)} -all"')
            for prov in includes:
                for name in provider_spf[prov]:
                    need(i, name, "TXT")
            # `a` asks A and AAAA of the domain, `mx` its MX: already needed above.
        for pref, (host, addrs) in enumerate(hosts):
            for a in addrs:
                for z in IP_LISTS:
                    need(i, f"{rev(a)[:-len('in-addr.arpa.')]}{z}.", "A")
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
    # A few self-hosted addresses listed on every list, with a TXT reason
    # (asked once per listed entry).
    for k, z in enumerate(IP_LISTS):
        lines = [f"$ORIGIN {z}.", "$TTL 300", f"@ IN SOA ns1.bench. hostmaster.bench. 1 3600 600 86400 300",
                 "@ IN NS ns1.bench.", "2.0.0.127 IN A 127.0.0.2", '2.0.0.127 IN TXT "test point"']
        for j in range(LISTED_PER_LIST):
            idx = (k * LISTED_PER_LIST + j) * 7
            if idx >= len(self_hosted):
                break
            i, a = self_hosted[idx]
            owner = rev(a)[:-len(".in-addr.arpa.")]
            lines.append(f"{owner} IN A 127.0.0.2")
            lines.append(f'{owner} IN TXT "listed: see https://{z}/lookup?{a}"')
            first.setdefault((f"{owner}.{z}.", "TXT"), i)
        with open(os.path.join(args.out, f"{z}.zone"), "w") as f:
            f.write("\n".join(lines) + "\n")
    for z in DOMAIN_LISTS:
        lines = [f"$ORIGIN {z}.", "$TTL 300", f"@ IN SOA ns1.bench. hostmaster.bench. 1 3600 600 86400 300",
                 "@ IN NS ns1.bench.", "dbltest.com IN A 127.0.1.2"]
        with open(os.path.join(args.out, f"{z}.zone"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(args.out, "lists.txt"), "w") as f:
        f.write("\n".join(IP_LISTS + DOMAIN_LISTS) + "\n")
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
