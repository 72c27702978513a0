//! What the SES event route (`POST /events/ses` on the ingester) accepts.

use opensend_mail::sns::{DEFAULT_MAX_AGE, SnsSettings};
use url::Url;

use super::{Reader, names};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SesEventSettings {
    /// `SES_EVENTS_SNS_TOPIC_ARN`: the SNS topics whose messages are accepted. Empty: the route refuses
    /// everything.
    pub topic_arns: Vec<String>,
    /// `SNS_TEST_CERT_URL_PREFIX`: tests only, refused in production. Certificate and subscribe URLs under
    /// this prefix are fetched as if they were Amazon SNS's.
    pub sns_test_cert_url_prefix: Option<String>,
}

/// `arn:<partition>:sns:<region>:<12-digit account>:<topic name>`, comma-separated; at most 20.
fn parse_topic_arns(v: &str) -> Result<Vec<String>, String> {
    let valid = |arn: &str| {
        let parts: Vec<&str> = arn.split(':').collect();
        parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[1]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
            && parts[2] == "sns"
            && !parts[3].is_empty()
            && parts[3]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && (1..=256).contains(&parts[5].len())
            && parts[5]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    let arns: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    match arns.iter().find(|a| !valid(a)) {
        Some(bad) => Err(format!(
            "must be SNS topic ARNs such as arn:aws:sns:eu-west-1:123456789012:opensend-events, comma-separated; `{}` is not one",
            bad.chars().take(300).collect::<String>()
        )),
        None if arns.is_empty() || arns.len() > 20 => {
            Err("must name 1 to 20 SNS topic ARNs, comma-separated".to_owned())
        }
        None => Ok(arns),
    }
}

fn parse_test_prefix(v: &str) -> Result<Option<String>, String> {
    match Url::parse(v) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none() =>
        {
            Ok(Some(u.to_string()))
        }
        _ => Err(format!(
            "must be an http(s) URL without credentials such as http://127.0.0.1:8089/, not `{v}`"
        )),
    }
}

impl SesEventSettings {
    /// What the SNS verifier of `/events/ses` checks against; `None` when no topic is configured (the route
    /// then refuses everything).
    pub fn sns_settings(&self) -> Option<SnsSettings> {
        if self.topic_arns.is_empty() {
            return None;
        }
        Some(SnsSettings {
            topic_arns: self.topic_arns.clone(),
            max_age: DEFAULT_MAX_AGE,
            test_cert_prefix: self.sns_test_cert_url_prefix.clone(),
        })
    }

    pub(super) fn read(r: &mut Reader) -> Self {
        Self {
            topic_arns: r.setting(
                names::SES_EVENTS_SNS_TOPIC_ARN,
                Vec::new(),
                parse_topic_arns,
            ),
            sns_test_cert_url_prefix: r.setting(
                names::SNS_TEST_CERT_URL_PREFIX,
                None,
                parse_test_prefix,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError, Vars};
    use super::*;

    #[test]
    fn ses_event_settings_are_parsed() {
        let config = Config::from_vars(&Vars::default()).unwrap();
        assert_eq!(config.ses_events, SesEventSettings::default());
        let vars = Vars::from_pairs([
            (
                "SES_EVENTS_SNS_TOPIC_ARN",
                " arn:aws:sns:eu-west-1:123456789012:opensend-events , arn:aws-cn:sns:cn-north-1:123456789012:b.fifo",
            ),
            ("SNS_TEST_CERT_URL_PREFIX", "http://127.0.0.1:8089"),
        ]);
        let s = Config::from_vars(&vars).unwrap().ses_events;
        assert_eq!(
            s.topic_arns,
            vec![
                "arn:aws:sns:eu-west-1:123456789012:opensend-events",
                "arn:aws-cn:sns:cn-north-1:123456789012:b.fifo"
            ]
        );
        assert_eq!(
            s.sns_test_cert_url_prefix.as_deref(),
            Some("http://127.0.0.1:8089/")
        );
        for bad in [
            "opensend-events",
            "arn:aws:sqs:eu-west-1:123456789012:q",
            "arn:aws:sns:eu-west-1:1234:t",
            "arn:aws:sns:eu-west-1:123456789012:",
            "arn:aws:sns:eu-west-1:123456789012:a b",
            "arn:aws:sns:eu-west-1:123456789012:t:extra",
            ",",
        ] {
            let vars = Vars::from_pairs([("SES_EVENTS_SNS_TOPIC_ARN", bad)]);
            let ConfigError(problems) = Config::from_vars(&vars).unwrap_err();
            assert!(
                problems[0].starts_with("SES_EVENTS_SNS_TOPIC_ARN:"),
                "{bad}"
            );
        }
        for bad in ["ftp://x", "127.0.0.1:8089", "http://u:p@127.0.0.1/"] {
            let vars = Vars::from_pairs([("SNS_TEST_CERT_URL_PREFIX", bad)]);
            assert!(Config::from_vars(&vars).is_err(), "{bad}");
        }
    }
}
