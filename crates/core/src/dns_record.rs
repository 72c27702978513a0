//! The DNS records of a sending domain as OpenSend names them: their type, purpose and check status, one
//! record's stored check result, and a record as the API and `domain.*` webhooks show it.
//!
//! Which records a domain needs is `opensend_mail::records`' business; these are the words for them.

use serde::{Deserialize, Serialize};

use crate::status::vocabulary;

vocabulary! {
    /// A record's DNS type.
    pub enum RecordType ("DNS record type") {
        Txt = "TXT",
        Mx = "MX",
        Cname = "CNAME",
    }
}

vocabulary! {
    /// What a record is for, as Resend's `record` field names it.
    pub enum RecordPurpose ("DNS record purpose") {
        Dkim = "DKIM",
        Spf = "SPF",
        Dmarc = "DMARC",
        Tracking = "Tracking",
    }
}

vocabulary! {
    /// What the last check found for one record.
    pub enum RecordStatus ("DNS record status") {
        NotStarted = "not_started",
        /// Not found (NXDOMAIN or no record of the type).
        Pending = "pending",
        Verified = "verified",
        /// Found, but with another value.
        Failed = "failed",
        /// The lookup itself failed (timeout, SERVFAIL, network).
        TemporaryFailure = "temporary_failure",
    }
}

/// One record's last check, as stored with the domain (`domains.record_checks`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCheck {
    pub record_type: RecordType,
    pub name: String,
    pub value: String,
    pub status: RecordStatus,
    /// What was found instead (`failed`), or what went wrong (`temporary_failure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Time to live shown for every record: the owner's DNS provider decides.
pub const RECORD_TTL: &str = "Auto";

/// One DNS record as Resend's `Domain` shows it (and `domain.*` webhooks carry it), plus what the last check
/// found when it failed and whether the domain's status depends on it (extensions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsRecordView {
    pub record: RecordPurpose,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub ttl: &'static str,
    pub status: RecordStatus,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    /// Extension: what the last check found instead (`failed`) or what went wrong (`temporary_failure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// Extension: `false` for records that do not decide the domain's status (DMARC, a pending rotation).
    pub required: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let types: Vec<&str> = RecordType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(types, ["TXT", "MX", "CNAME"]);
        let purposes: Vec<&str> = RecordPurpose::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(purposes, ["DKIM", "SPF", "DMARC", "Tracking"]);
        for status in RecordStatus::ALL {
            assert_eq!(status.as_str().parse::<RecordStatus>(), Ok(*status));
        }
        assert!("txt".parse::<RecordType>().is_err());
    }

    #[test]
    fn stored_checks_read_as_written_before() {
        // The form `domains.record_checks` has always had.
        let stored = r#"[{"record_type":"TXT","name":"s._domainkey.example.com","value":"v=DKIM1","status":"verified"},
                        {"record_type":"MX","name":"send.example.com","value":"mx","status":"failed","detail":"other.mx"}]"#;
        let checks: Vec<RecordCheck> = serde_json::from_str(stored).unwrap();
        assert_eq!(checks[0].record_type, RecordType::Txt);
        assert_eq!(checks[0].status, RecordStatus::Verified);
        assert_eq!(checks[0].detail, None);
        assert_eq!(checks[1].detail.as_deref(), Some("other.mx"));
        let again: Vec<RecordCheck> =
            serde_json::from_str(&serde_json::to_string(&checks).unwrap()).unwrap();
        assert_eq!(again, checks);
    }

    #[test]
    fn a_record_view_has_resends_fields() {
        let view = DnsRecordView {
            record: RecordPurpose::Spf,
            name: "send.example.com".into(),
            record_type: RecordType::Mx,
            ttl: RECORD_TTL,
            status: RecordStatus::Pending,
            value: "feedback-smtp.us-east-1.amazonses.com".into(),
            priority: Some(10),
            found: None,
            required: true,
        };
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            serde_json::json!({
                "record": "SPF",
                "name": "send.example.com",
                "type": "MX",
                "ttl": "Auto",
                "status": "pending",
                "value": "feedback-smtp.us-east-1.amazonses.com",
                "priority": 10,
                "required": true,
            })
        );
    }
}
