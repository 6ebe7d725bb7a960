//! Questions to a list: the names asked (reversed octets or nibbles, RFC 5782
//! §2.1, §2.4), pacing, TXT reasons, and the subjects of a domain (its MX and
//! outbound addresses).

use super::*;

impl Dnsbl {
    pub(super) fn test_points(&self, family: Family) -> &SelfTest {
        match family {
            Family::V4 | Family::Domain => &self.self_test,
            Family::V6 => &self.self_test_v6,
        }
    }

    /// The labels asked for an address: reversed octets or nibbles (RFC 5782 §2.1, §2.4).
    pub(super) fn labels_of(ip: IpAddr) -> String {
        reverse_labels(ip)
    }

    /// Asks `labels.<zone>` A (through the run's cache, paced) and classifies the answer.
    pub(super) async fn lookup(&self, labels: &str, cx: &CheckCx) -> Lookup {
        let (dns, deadline) = (&cx.dns, cx.deadline);
        let full = format!("{labels}.{}", self.query_zone);
        let shown_name = self.redact(&full);
        let name = match DomainName::parse_relaxed(&full) {
            Ok(n) => n,
            Err(e) => {
                return Lookup {
                    shown_name,
                    verdict: Verdict::Failed(self.redact(&format!("cannot be asked: {e}"))),
                };
            }
        };
        if let Err(why) = self.pace(&name, deadline, cx.run.rate_limits).await {
            return Lookup {
                shown_name,
                verdict: Verdict::Failed(why),
            };
        }
        let answer = dns.query(&name, RType::A).await;
        let verdict = self.classify(answer.as_ref());
        Lookup {
            shown_name,
            verdict,
        }
    }

    pub(super) async fn pace(
        &self,
        name: &DomainName,
        deadline: Instant,
        honour: bool,
    ) -> Result<(), String> {
        let Some(pacer) = self.pacer.as_ref().filter(|_| honour) else {
            return Ok(());
        };
        let slot = pacer.slot_for(name.as_str());
        if slot > deadline {
            return Err(format!(
                "the rate limit of {} would delay the query past the check's deadline",
                self.zone
            ));
        }
        tokio::time::sleep_until(slot.into()).await;
        Ok(())
    }

    /// The TXT reason of a listed entry, if the list publishes one.
    pub(super) async fn reason(&self, labels: &str, cx: &CheckCx) -> Option<String> {
        let (dns, deadline) = (&cx.dns, cx.deadline);
        if !self.fetch_reason {
            return None;
        }
        let name = DomainName::parse_relaxed(&format!("{labels}.{}", self.query_zone)).ok()?;
        self.pace(&name, deadline, cx.run.rate_limits).await.ok()?;
        let answer = dns.query(&name, RType::Txt).await;
        match answer.as_ref() {
            Answer::Records(set) => {
                let texts: Vec<String> = set
                    .txt_joined()
                    .iter()
                    .map(|t| clean_text(&String::from_utf8_lossy(t)))
                    .filter(|t| !t.is_empty())
                    .collect();
                if texts.is_empty() {
                    None
                } else {
                    Some(self.redact(&truncate(&texts.join(" | "), MAX_REASON_CHARS)))
                }
            }
            Answer::NxDomain { .. } | Answer::NoData { .. } | Answer::Failed(_) => None,
        }
    }

    /// An evidence line when the run's resolver is a public one.
    pub(super) fn resolver_note(&self, dns: &Dns) -> Option<String> {
        let public = public_resolvers(dns.nameservers());
        let (ip, operator) = public.first()?;
        Some(if self.refuses_public_resolvers && self.key.is_none() {
            format!(
                "resolver {ip} is a public resolver ({operator}); {} refuses queries through public resolvers",
                self.zone
            )
        } else {
            format!("resolver {ip} is a public resolver ({operator})")
        })
    }

    pub(super) fn subject_for(&self, queried: &str) -> String {
        format!("{queried} ({})", self.zone)
    }

    /// The addresses to look up for a target: public MX addresses and outbound
    /// addresses, each with who uses it.
    pub(super) async fn subjects(
        &self,
        target: &Target,
        cx: &CheckCx,
        report: &mut CheckReport,
    ) -> Vec<(IpAddr, Vec<String>)> {
        let mut subjects: Vec<(IpAddr, Vec<String>)> = Vec::new();
        let mut add = |ip: IpAddr, who: String| self.add_subject(&mut subjects, ip, who, cx);
        match mx_hosts(&target.domain, cx, self.max_hosts).await {
            Ok(hosts) => {
                for h in hosts {
                    for ip in h.addresses.addresses {
                        add(ip, format!("MX {}", h.host));
                    }
                }
            }
            // NXDOMAIN and MX failures are the mx engine's findings.
            Err(why) if why.ends_with("NXDOMAIN") => {}
            Err(why) => report.error(why),
        }
        for ip in &target.outbound_ips {
            add(*ip, "outbound".to_owned());
        }
        subjects
    }

    /// Adds `ip`, used by `who`, to the addresses to look up, unless the list
    /// cannot list it.
    pub(super) fn add_subject(
        &self,
        subjects: &mut Vec<(IpAddr, Vec<String>)>,
        ip: IpAddr,
        who: String,
        cx: &CheckCx,
    ) {
        // Private, loopback and documentation addresses cannot be listed on a
        // public list (mx.target_private reports them), unless the user
        // allowed them as public (labs).
        if cx.addresses.non_public_reason(ip).is_some() {
            return;
        }
        if ip.is_ipv6() && !self.ipv6 {
            return;
        }
        match subjects.iter_mut().find(|(s, _)| *s == ip) {
            Some((_, users)) => {
                if !users.contains(&who) {
                    users.push(who);
                }
            }
            None => subjects.push((ip, vec![who])),
        }
    }

    /// Looks up `addresses`, used by `who` (e.g. `smart host mail.example.com`),
    /// as an audit looks up MX addresses: the self-test first, the same codes,
    /// the same questions through the run's cache. `preflight` asks this about
    /// the smart host. Addresses this list cannot list (private ones, IPv6 on
    /// an IPv4 list) are left out; the bool says whether any was asked.
    pub(super) async fn check_addresses_of(
        &self,
        addresses: &[IpAddr],
        who: &str,
        cx: &CheckCx,
    ) -> (CheckReport, bool) {
        let mut report = CheckReport::default();
        let mut subjects = Vec::new();
        if self.kind == ListKind::Ip {
            for ip in addresses {
                self.add_subject(&mut subjects, *ip, who.to_owned(), cx);
            }
        }
        let asked = !subjects.is_empty();
        self.check_subjects(subjects, cx, &mut report).await;
        (report, asked)
    }

    pub(super) async fn run_ip(&self, target: &Target, cx: &CheckCx, report: &mut CheckReport) {
        let subjects = self.subjects(target, cx, report).await;
        self.check_subjects(subjects, cx, report).await;
    }

    pub(super) async fn check_subjects(
        &self,
        subjects: Vec<(IpAddr, Vec<String>)>,
        cx: &CheckCx,
        report: &mut CheckReport,
    ) {
        if subjects.is_empty() {
            return;
        }
        let note = self.resolver_note(&cx.dns);
        let mut healths: Vec<(Family, Health)> = Vec::new();
        for family in [Family::V4, Family::V6] {
            if subjects.iter().any(|(ip, _)| Family::of(*ip) == family) {
                let health = self.health(family, cx).await;
                if let Some(obs) = self.health_observation(family, &health, note.as_ref()) {
                    report.error(format!(
                        "{}{}: the list is unusable or silent; its answers were not used",
                        self.zone,
                        if family == Family::V6 { " (IPv6)" } else { "" }
                    ));
                    report.push(obs);
                }
                healths.push((family, health));
            }
        }
        let checks = futures::future::join_all(subjects.iter().map(|(ip, users)| {
            let health = healths
                .iter()
                .find(|(f, _)| *f == Family::of(*ip))
                .map(|(_, h)| h);
            async move {
                let Some(Health::Usable { evidence }) = health else {
                    return None;
                };
                let labels = Self::labels_of(*ip);
                let lookup = self.lookup(&labels, cx).await;
                let reason = match lookup.verdict {
                    Verdict::Listed(_) => self.reason(&labels, cx).await,
                    Verdict::NotListed(_) | Verdict::Refused { .. } | Verdict::Failed(_) => None,
                };
                self.lookup_observation(
                    &ip.to_string(),
                    &users.join(", "),
                    &lookup,
                    reason,
                    evidence,
                )
            }
        }))
        .await;
        for obs in checks.into_iter().flatten() {
            if obs.code == LOOKUP_FAILED {
                report.error(format!("{}: {}", obs.subject, self.zone_failure(&obs)));
            }
            report.push(match &note {
                Some(n) => obs.evidence(n.clone()),
                None => obs,
            });
        }
    }

    pub(super) fn zone_failure(&self, obs: &Observation) -> String {
        obs.vars
            .get("failure")
            .and_then(|v| v.as_str())
            .unwrap_or("no answer")
            .to_owned()
    }

    pub(super) async fn run_domain(&self, target: &Target, cx: &CheckCx, report: &mut CheckReport) {
        let note = self.resolver_note(&cx.dns);
        let health = self.health(Family::Domain, cx).await;
        if let Some(obs) = self.health_observation(Family::Domain, &health, note.as_ref()) {
            report.error(format!(
                "{}: the list is unusable or silent; its answers were not used",
                self.zone
            ));
            report.push(obs);
        }
        let Health::Usable { evidence } = &health else {
            return;
        };
        let labels = target.domain.bare().to_owned();
        let lookup = self.lookup(&labels, cx).await;
        let reason = match lookup.verdict {
            Verdict::Listed(_) => self.reason(&labels, cx).await,
            Verdict::NotListed(_) | Verdict::Refused { .. } | Verdict::Failed(_) => None,
        };
        if let Some(obs) =
            self.lookup_observation(target.domain.bare(), "", &lookup, reason, evidence)
        {
            if obs.code == LOOKUP_FAILED {
                report.error(format!("{}: {}", obs.subject, self.zone_failure(&obs)));
            }
            report.push(match &note {
                Some(n) => obs.evidence(n.clone()),
                None => obs,
            });
        }
    }
}
