//! `mxaudit dnsbl ADDRESS…` and other engines: what this list says about
//! addresses and names, through the [`Blocklist`] face of the engine.

use super::*;

#[async_trait::async_trait]
impl Blocklist for Dnsbl {
    fn list_name(&self) -> &str {
        &self.list
    }

    async fn check_ips(
        &self,
        addresses: &[IpAddr],
        who: &str,
        cx: &CheckCx,
    ) -> (CheckReport, bool) {
        self.check_addresses_of(addresses, who, cx).await
    }

    async fn lines_for(
        &self,
        input: &BlocklistInput,
        addresses: &[IpAddr],
        host_failure: Option<&str>,
        cx: &CheckCx,
    ) -> Vec<BlocklistLine> {
        self.input_lines(input, addresses, host_failure, cx).await
    }
}

impl Dnsbl {
    fn line(&self, input: &str, queried: &str, status: LineStatus) -> BlocklistLine {
        BlocklistLine {
            input: input.to_owned(),
            queried: queried.to_owned(),
            plugin: self.plugin.clone(),
            list: self.list.clone(),
            zone: self.zone.clone(),
            status,
            return_codes: Vec::new(),
            meaning: None,
            reason: None,
            detail: None,
        }
    }

    async fn input_lines(
        &self,
        parsed: &BlocklistInput,
        addresses: &[IpAddr],
        host_failure: Option<&str>,
        cx: &CheckCx,
    ) -> Vec<BlocklistLine> {
        let input = &parsed.as_text();
        match (self.kind, parsed) {
            (ListKind::Domain, BlocklistInput::Address(ip)) => {
                let mut l = self.line(input, &ip.to_string(), LineStatus::Skipped);
                l.detail = Some("domain list; give a host name".to_owned());
                vec![l]
            }
            (ListKind::Domain, BlocklistInput::Host(name)) => {
                vec![self.line_for(input, name.bare(), Family::Domain, cx).await]
            }
            (ListKind::Ip, _) => {
                if let Some(why) = host_failure {
                    let mut l = self.line(input, input, LineStatus::Failed);
                    l.detail = Some(why.to_owned());
                    return vec![l];
                }
                let mut lines = Vec::new();
                for ip in addresses {
                    let queried = ip.to_string();
                    if let Some(why) = cx.addresses.non_public_reason(*ip) {
                        let mut l = self.line(input, &queried, LineStatus::Skipped);
                        l.detail = Some(format!("{why} address; public lists do not list it"));
                        lines.push(l);
                    } else if ip.is_ipv6() && !self.ipv6 {
                        let mut l = self.line(input, &queried, LineStatus::Skipped);
                        l.detail = Some("the list has no IPv6 data".to_owned());
                        lines.push(l);
                    } else {
                        lines.push(self.line_for(input, &queried, Family::of(*ip), cx).await);
                    }
                }
                lines
            }
        }
    }

    async fn line_for(
        &self,
        input: &str,
        queried: &str,
        family: Family,
        cx: &CheckCx,
    ) -> BlocklistLine {
        let mut line = self.line(input, queried, LineStatus::NotListed);
        match self.health(family, cx).await {
            Health::Usable { .. } => {}
            Health::Unusable {
                test_point,
                return_code,
                meaning,
                cause,
                ..
            } => {
                line.status = LineStatus::Unusable;
                line.return_codes = vec![return_code];
                line.meaning = meaning;
                line.detail = Some(format!("self-test {test_point}: {}", cause.as_str()));
                return line;
            }
            Health::Unanswered {
                test_point,
                failure,
                ..
            } => {
                line.status = LineStatus::Failed;
                line.detail = Some(format!("self-test {test_point}: {failure}"));
                return line;
            }
        }
        let labels = match family {
            Family::Domain => queried.to_owned(),
            Family::V4 | Family::V6 => match queried.parse::<IpAddr>() {
                Ok(ip) => Self::labels_of(ip),
                Err(_) => queried.to_owned(),
            },
        };
        let lookup = self.lookup(&labels, cx).await;
        match lookup.verdict {
            Verdict::NotListed(answer) => line.detail = Some(answer.to_owned()),
            Verdict::Listed(codes) => {
                line.status = LineStatus::Listed;
                line.return_codes = codes.iter().map(|(c, _)| c.to_string()).collect();
                line.meaning = join_meanings(codes.iter().map(|(_, m)| m.as_ref()));
                line.reason = self.reason(&labels, cx).await;
            }
            Verdict::Refused { codes, cause } => {
                line.status = LineStatus::Refused;
                line.return_codes = codes.iter().map(|(c, _)| c.to_string()).collect();
                line.meaning = join_meanings(codes.iter().map(|(_, m)| m.as_ref()));
                line.detail = Some(cause.as_str().to_owned());
            }
            Verdict::Failed(failure) => {
                line.status = LineStatus::Failed;
                line.detail = Some(failure);
            }
        }
        line
    }
}
