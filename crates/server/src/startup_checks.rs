//! Checks every role runs before it listens.
//!
//! A deployment whose `APP_URL` host is not `localhost`, `127.0.0.1` or `::1` is *production*: there, weak,
//! missing, repeated or published secrets stop the process (exit code 2) with one message that lists every
//! problem. On a local machine the same findings are warnings, and missing secrets are generated once and
//! kept in `DATA_DIR/secrets.env` (mode 0600) so restarts keep working (keys encrypted under them stay
//! readable).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, RateLimitBackend, SECRET_SLOTS, Secrets};

/// Secret values that are published and therefore worthless: the TypeScript OpenSend's checked-in
/// development values (an existing OpenSend `.env` may still carry them) and the ones our own
/// `.env.example` shows (a test keeps this list and that file in step).
pub const KNOWN_PLACEHOLDERS: &[&str] = &[
    "local-dev-better-auth-secret-replace-before-production",
    "local-dev-ingester-job-token-replace-before-production",
    "local-dev-webhook-secret-replace-before-production",
    "local-dev-tracking-secret-replace-before-production",
    "local-dev-unsubscribe-secret-replace-before-production",
    "local-dev-ingester-inbound-token-replace-before-production",
    "local-dev-integration-secret-replace-before-production",
    "local-dev-cron-auth-token-replace-before-production",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    // .env.example
    "local-dev-auth-secret-replace-before-production",
    "local-dev-webhook-secret-encryption-key-replace-before-production",
];

/// Shortest acceptable `AUTH_SECRET` and ingester tokens.
pub const MIN_SECRET_CHARS: usize = 32;

/// Name of the file under `DATA_DIR` that keeps secrets generated for a local deployment.
pub const GENERATED_SECRETS_FILE: &str = "secrets.env";

/// Why a production process refuses to start.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to start: APP_URL ({app_url}) is not a local address, so these must be fixed first \
     (`opensend setup` writes a .env with fresh secrets):\n{}",
    .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
)]
pub struct StartupRefusal {
    pub app_url: String,
    pub problems: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Refused(#[from] StartupRefusal),
    #[error("cannot keep generated secrets in {path}: {source}")]
    SecretsFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the checks found on a local deployment: problems that would stop a production start, and the
/// secrets generated for this one.
#[derive(Debug, Default)]
pub struct LocalFindings {
    pub warnings: Vec<String>,
    pub generated: Vec<&'static str>,
    /// Findings that never stop a start, local or production (e.g. Redis without TLS across a network).
    pub advisories: Vec<String>,
}

/// Runs the checks on `config`, filling in generated secrets on a local deployment.
pub fn run(config: &mut Config) -> Result<LocalFindings, StartupError> {
    if config.is_production() {
        let mut problems = secret_problems(&config.secrets);
        problems.extend(production_setting_problems(config));
        if problems.is_empty() {
            return Ok(LocalFindings {
                advisories: production_advisories(config),
                ..LocalFindings::default()
            });
        }
        return Err(StartupRefusal {
            app_url: config.app_url.to_string(),
            problems,
        }
        .into());
    }
    let generated = fill_missing_local_secrets(&mut config.secrets, &config.data_dir)?;
    Ok(LocalFindings {
        warnings: secret_problems(&config.secrets),
        generated,
        advisories: local_advisories(config),
    })
}

/// The first words of the warning a local deployment reachable from other machines starts with.
pub const PRODUCTION_UNSAFE: &str = "running production-unsafe";

/// Local settings that work but deserve the operator's attention.
///
/// Decision: with no `APP_URL` the process is a local (development) deployment — generated secrets, the
/// relaxed checks — however it is bound. The default bind (`0.0.0.0`) is kept, so `opensend serve` on a
/// laptop or in a container just works; but when it listens beyond loopback, the process says loudly that
/// it runs production-unsafe and how to fix it, rather than silently serving other machines in that mode.
pub fn local_advisories(config: &Config) -> Vec<String> {
    let mut advisories = Vec::new();
    if !config.app_url_configured && !config.listen.is_loopback() {
        advisories.push(format!(
            "{PRODUCTION_UNSAFE}: APP_URL is not set, so this is a local development deployment (generated \
             secrets, relaxed checks), yet it listens on {} and so is reachable from other machines; set \
             APP_URL to the public URL to run with production checks, or BIND_ADDRESS=127.0.0.1 to keep it on \
             this machine",
            config.listen.bind_address
        ));
    }
    advisories
}

/// Settings that are for local development only and so stop a production start.
pub fn production_setting_problems(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if config.allow_private_webhook_urls {
        problems.push(
            "ALLOW_PRIVATE_WEBHOOK_URLS=true lets users make this server fetch loopback and private \
             addresses (webhooks, attachments by URL); it is for local development and tests only"
                .to_owned(),
        );
    }
    if config.ses_events.sns_test_cert_url_prefix.is_some() {
        problems.push(
            "SNS_TEST_CERT_URL_PREFIX is set: it makes /events/ses trust certificates from a URL that is not \
             Amazon SNS's, so anyone serving it could forge SES events; it is for tests only"
                .to_owned(),
        );
    }
    problems
}

/// Production settings that work but deserve the operator's attention.
pub fn production_advisories(config: &Config) -> Vec<String> {
    let mut advisories = Vec::new();
    if config.rate_limits.backend == RateLimitBackend::Redis
        && let Some(url) = &config.rate_limits.redis_url
        && let Ok(url) = url::Url::parse(url.expose_secret())
        && url.scheme() == "redis"
        && !is_loopback_host(&url)
    {
        advisories.push(format!(
            "REDIS_URL uses redis:// to {}, which is not this machine: rate-limit traffic and the Redis \
             password cross the network without TLS; use rediss:// (Redis over TLS)",
            url.host_str().unwrap_or("another host")
        ));
    }
    if config.delivery.mode == crate::config::Delivery::Capture {
        advisories.push(
            "DELIVERY=capture in production: accepted email is stored and viewable but never sent; set \
             DELIVERY=smtp or DELIVERY=ses to deliver it"
                .to_owned(),
        );
    }
    if config.delivery.mode == crate::config::Delivery::Ses
        && config.ses_events.topic_arns.is_empty()
    {
        advisories.push(
            "DELIVERY=ses without SES_EVENTS_SNS_TOPIC_ARN: deliveries, bounces and complaints reported by SES \
             are refused at /events/ses, so bounced addresses are never suppressed"
                .to_owned(),
        );
    }
    advisories
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        // `redis:` is not a scheme the URL standard knows, so its hosts arrive as names, addresses included.
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Every problem with the configured secrets, in a stable order.
pub fn secret_problems(secrets: &Secrets) -> Vec<String> {
    let mut problems = Vec::new();
    let value = |name: &str| {
        SECRET_SLOTS
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| (s.get)(secrets))
            .map(|v| v.expose_secret())
    };

    for slot in &SECRET_SLOTS {
        if let Some(v) = (slot.get)(secrets).map(|v| v.expose_secret())
            && KNOWN_PLACEHOLDERS.contains(&v)
        {
            problems.push(format!(
                "{} is a published placeholder value, not a secret",
                slot.name
            ));
        }
    }

    match value("AUTH_SECRET") {
        None => problems.push("AUTH_SECRET is not set".to_owned()),
        Some(v) if v.chars().count() < MIN_SECRET_CHARS => problems.push(format!(
            "AUTH_SECRET is shorter than {MIN_SECRET_CHARS} characters"
        )),
        Some(_) => {}
    }

    match value("WEBHOOK_SECRET_ENCRYPTION_KEY") {
        None => problems.push("WEBHOOK_SECRET_ENCRYPTION_KEY is not set".to_owned()),
        Some(v) if !is_32_bytes_of_hex(v) => problems.push(
            "WEBHOOK_SECRET_ENCRYPTION_KEY must be 32 bytes written as 64 hex characters"
                .to_owned(),
        ),
        Some(_) => {}
    }

    // The job token guards /jobs/*, which every ingester serves. The inbound token may be left unset: the
    // inbound route then refuses every request.
    for (name, required) in [
        ("INGESTER_JOB_TOKEN", true),
        ("INGESTER_INBOUND_TOKEN", false),
    ] {
        match value(name) {
            None if required => problems.push(format!("{name} is not set")),
            Some(v) if v.chars().count() < MIN_SECRET_CHARS => problems.push(format!(
                "{name} is shorter than {MIN_SECRET_CHARS} characters"
            )),
            _ => {}
        }
    }

    for (i, a) in SECRET_SLOTS.iter().enumerate() {
        for b in &SECRET_SLOTS[i + 1..] {
            if let (Some(x), Some(y)) = ((a.get)(secrets), (b.get)(secrets))
                && x.expose_secret() == y.expose_secret()
            {
                problems.push(format!(
                    "{} and {} have the same value; every secret must be different",
                    a.name, b.name
                ));
            }
        }
    }
    problems
}

fn is_32_bytes_of_hex(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Fills every unset secret from `DATA_DIR/secrets.env`, generating and recording the ones not there yet.
/// Returns the names generated now.
fn fill_missing_local_secrets(
    secrets: &mut Secrets,
    data_dir: &Path,
) -> Result<Vec<&'static str>, StartupError> {
    let path = data_dir.join(GENERATED_SECRETS_FILE);
    let file_error = |source| StartupError::SecretsFile {
        path: path.clone(),
        source,
    };
    let mut kept = read_env_file(&path).map_err(file_error)?;
    let mut generated = Vec::new();
    for slot in &SECRET_SLOTS {
        if (slot.get)(secrets).is_some() {
            continue;
        }
        let value = match kept.get(slot.name) {
            Some(v) => v.clone(),
            None => {
                let fresh = opensend_core::random::hex_secret()
                    .map_err(|e| file_error(std::io::Error::other(e.to_string())))?;
                kept.insert(slot.name.to_owned(), fresh.clone());
                generated.push(slot.name);
                fresh
            }
        };
        (slot.set)(secrets, SecretString::from(value));
    }
    if !generated.is_empty() {
        std::fs::create_dir_all(data_dir).map_err(file_error)?;
        let body: String = kept.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        write_private_file(&path, body.as_bytes(), true).map_err(file_error)?;
    }
    Ok(generated)
}

/// `KEY=VALUE` lines; a missing file is empty.
fn read_env_file(path: &Path) -> std::io::Result<BTreeMap<String, String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to `path` readable by the owner only. Without `replace`, an existing file is an error
/// (`AlreadyExists`). The file is written beside its destination and renamed over it, so a crash never leaves
/// a half-written secret file.
pub fn write_private_file(path: &Path, contents: &[u8], replace: bool) -> std::io::Result<()> {
    if !replace && path.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", path.display()),
        ));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("secrets"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    #[cfg(unix)]
    {
        // The mode above only applies when the file is new; make sure a leftover temp file is private too.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    if !replace && path.exists() {
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", path.display()),
        ));
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vars;

    const GOOD_AUTH: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
    const GOOD_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const GOOD_JOB: &str = "job-token-job-token-job-token-job-token-1";
    const GOOD_INBOUND: &str = "inbound-token-inbound-token-inbound-token";

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_vars(&Vars::from_pairs(pairs.iter().copied())).unwrap()
    }

    fn production(overrides: &[(&str, &str)]) -> Config {
        let mut pairs = vec![
            ("APP_URL", "https://mail.example.com"),
            ("AUTH_SECRET", GOOD_AUTH),
            ("WEBHOOK_SECRET_ENCRYPTION_KEY", GOOD_KEY),
            ("INGESTER_JOB_TOKEN", GOOD_JOB),
            ("INGESTER_INBOUND_TOKEN", GOOD_INBOUND),
            ("DELIVERY", "smtp"),
            ("SMTP_URL", "smtp://relay.example.com:587"),
        ];
        for (k, v) in overrides {
            pairs.retain(|(name, _)| name != k);
            pairs.push((k, v));
        }
        config(&pairs)
    }

    fn refusal(mut config: Config) -> Vec<String> {
        match run(&mut config) {
            Err(StartupError::Refused(r)) => r.problems,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn good_production_secrets_start() {
        let mut config = production(&[]);
        let findings = run(&mut config).unwrap();
        assert!(findings.warnings.is_empty());
        assert!(findings.generated.is_empty());
    }

    #[test]
    fn plaintext_redis_across_the_network_is_a_production_warning() {
        let findings = |url: &str| {
            let mut config = production(&[("RATE_LIMIT_BACKEND", "redis"), ("REDIS_URL", url)]);
            run(&mut config).unwrap().advisories
        };
        let warned = findings("redis://:hunter2@cache.internal:6379");
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("TLS") && warned[0].contains("cache.internal"));
        assert!(!warned[0].contains("hunter2"));
        assert!(findings("rediss://cache.internal:6379").is_empty());
        assert!(findings("redis://127.0.0.1:6379").is_empty());
        assert!(findings("redis://localhost:6379").is_empty());
        assert!(findings("redis://[::1]:6379").is_empty());
        assert_eq!(findings("redis://10.0.0.5:6379").len(), 1);
        // A local deployment talks to whatever Redis the developer runs: no warning.
        let mut local = config(&[
            ("RATE_LIMIT_BACKEND", "redis"),
            ("REDIS_URL", "redis://cache.internal:6379"),
            ("BIND_ADDRESS", "127.0.0.1"),
            (
                "DATA_DIR",
                tempfile::tempdir().unwrap().path().to_str().unwrap(),
            ),
        ]);
        assert!(run(&mut local).unwrap().advisories.is_empty());
    }

    #[test]
    fn private_outbound_urls_are_refused_in_production_only() {
        let problems = refusal(production(&[("ALLOW_PRIVATE_WEBHOOK_URLS", "true")]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("ALLOW_PRIVATE_WEBHOOK_URLS=true"));
        assert!(run(&mut production(&[("ALLOW_PRIVATE_WEBHOOK_URLS", "false")])).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let mut local = config(&[
            ("ALLOW_PRIVATE_WEBHOOK_URLS", "true"),
            ("DATA_DIR", dir.path().to_str().unwrap()),
        ]);
        assert!(run(&mut local).is_ok());
    }

    #[test]
    fn sns_test_prefix_is_refused_in_production_only() {
        let problems = refusal(production(&[(
            "SNS_TEST_CERT_URL_PREFIX",
            "http://127.0.0.1:8089/",
        )]));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("SNS_TEST_CERT_URL_PREFIX is set"));
        let dir = tempfile::tempdir().unwrap();
        let mut local = config(&[
            ("SNS_TEST_CERT_URL_PREFIX", "http://127.0.0.1:8089/"),
            ("DATA_DIR", dir.path().to_str().unwrap()),
        ]);
        assert!(run(&mut local).is_ok());
    }

    #[test]
    fn ses_delivery_without_an_event_topic_is_a_production_warning() {
        let ses = [
            ("DELIVERY", "ses"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ];
        let advisories = run(&mut production(&ses)).unwrap().advisories;
        assert_eq!(advisories.len(), 1, "{advisories:?}");
        assert!(advisories[0].contains("SES_EVENTS_SNS_TOPIC_ARN"));
        let mut with_topic = ses.to_vec();
        with_topic.push((
            "SES_EVENTS_SNS_TOPIC_ARN",
            "arn:aws:sns:eu-west-1:123456789012:opensend-events",
        ));
        assert!(
            run(&mut production(&with_topic))
                .unwrap()
                .advisories
                .is_empty()
        );
    }

    #[test]
    fn capture_delivery_is_a_production_warning() {
        let advisories = run(&mut production(&[("DELIVERY", "capture")]))
            .unwrap()
            .advisories;
        assert_eq!(advisories.len(), 1, "{advisories:?}");
        assert!(advisories[0].starts_with("DELIVERY=capture in production"));
        assert!(run(&mut production(&[])).unwrap().advisories.is_empty());
    }

    #[test]
    fn a_local_deployment_reachable_from_other_machines_says_it_is_production_unsafe() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_str().unwrap();
        let advisories = |bind: &str, app_url: &str| {
            let mut pairs = vec![("DATA_DIR", data_dir), ("BIND_ADDRESS", bind)];
            if !app_url.is_empty() {
                pairs.push(("APP_URL", app_url));
            }
            run(&mut config(&pairs)).unwrap().advisories
        };
        let warned = advisories("0.0.0.0", "");
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].starts_with(PRODUCTION_UNSAFE) && warned[0].contains("0.0.0.0"));
        assert_eq!(advisories("::", "").len(), 1);
        assert!(advisories("127.0.0.1", "").is_empty());
        assert!(advisories("::1", "").is_empty());
        // An explicit local APP_URL says the operator means a local deployment.
        assert!(advisories("0.0.0.0", "http://localhost:3015").is_empty());
    }

    #[test]
    fn inbound_token_may_be_unset_in_production() {
        let mut config = production(&[("INGESTER_INBOUND_TOKEN", "")]);
        assert!(run(&mut config).is_ok());
    }

    #[test]
    fn every_placeholder_is_refused_in_production() {
        for placeholder in KNOWN_PLACEHOLDERS {
            for slot in &SECRET_SLOTS {
                let problems = refusal(production(&[(slot.name, placeholder)]));
                assert!(
                    problems.iter().any(|p| p
                        == &format!(
                            "{} is a published placeholder value, not a secret",
                            slot.name
                        )),
                    "{} = {placeholder}: {problems:?}",
                    slot.name
                );
            }
        }
    }

    #[test]
    fn original_names_with_placeholders_are_refused() {
        let mut config = config(&[
            ("BETTER_AUTH_URL", "https://mail.example.com"),
            (
                "BETTER_AUTH_SECRET",
                "local-dev-better-auth-secret-replace-before-production",
            ),
            (
                "WEBHOOK_SECRET_ENCRYPTION_KEY",
                "local-dev-webhook-secret-replace-before-production",
            ),
            (
                "INGESTER_JOB_TOKEN",
                "local-dev-ingester-job-token-replace-before-production",
            ),
        ]);
        let problems = match run(&mut config) {
            Err(StartupError::Refused(r)) => r.problems,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problems,
            vec![
                "AUTH_SECRET is a published placeholder value, not a secret",
                "WEBHOOK_SECRET_ENCRYPTION_KEY is a published placeholder value, not a secret",
                "INGESTER_JOB_TOKEN is a published placeholder value, not a secret",
                "WEBHOOK_SECRET_ENCRYPTION_KEY must be 32 bytes written as 64 hex characters",
            ]
        );
    }

    #[test]
    fn short_and_missing_secrets_are_refused() {
        let problems = refusal(production(&[
            ("AUTH_SECRET", "short"),
            ("INGESTER_JOB_TOKEN", "0123456789012345678901234567890"),
            ("INGESTER_INBOUND_TOKEN", "tiny"),
        ]));
        assert_eq!(
            problems,
            vec![
                "AUTH_SECRET is shorter than 32 characters",
                "INGESTER_JOB_TOKEN is shorter than 32 characters",
                "INGESTER_INBOUND_TOKEN is shorter than 32 characters",
            ]
        );
        let problems = refusal(config(&[("APP_URL", "https://mail.example.com")]));
        assert_eq!(
            problems,
            vec![
                "AUTH_SECRET is not set",
                "WEBHOOK_SECRET_ENCRYPTION_KEY is not set",
                "INGESTER_JOB_TOKEN is not set",
            ]
        );
    }

    #[test]
    fn encryption_key_must_be_32_bytes_of_hex() {
        for bad in [
            &GOOD_KEY[..62],
            &format!("{GOOD_KEY}00"),
            &GOOD_KEY.replace('a', "g"),
        ] {
            let problems = refusal(production(&[("WEBHOOK_SECRET_ENCRYPTION_KEY", bad)]));
            assert_eq!(
                problems,
                vec!["WEBHOOK_SECRET_ENCRYPTION_KEY must be 32 bytes written as 64 hex characters"]
            );
        }
    }

    #[test]
    fn repeated_secrets_are_refused() {
        let problems = refusal(production(&[("INGESTER_INBOUND_TOKEN", GOOD_JOB)]));
        assert_eq!(
            problems,
            vec![
                "INGESTER_JOB_TOKEN and INGESTER_INBOUND_TOKEN have the same value; every secret must be different"
            ]
        );
        let problems = refusal(production(&[("INGESTER_JOB_TOKEN", GOOD_AUTH)]));
        assert_eq!(
            problems,
            vec![
                "AUTH_SECRET and INGESTER_JOB_TOKEN have the same value; every secret must be different"
            ]
        );
    }

    #[test]
    fn local_problems_are_warnings_and_missing_secrets_are_generated_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let data = data_dir.to_str().unwrap();
        let mut first = config(&[("DATA_DIR", data), ("AUTH_SECRET", "short")]);
        let findings = run(&mut first).unwrap();
        assert_eq!(
            findings.warnings,
            vec!["AUTH_SECRET is shorter than 32 characters"]
        );
        assert_eq!(
            findings.generated,
            vec![
                "WEBHOOK_SECRET_ENCRYPTION_KEY",
                "INGESTER_JOB_TOKEN",
                "INGESTER_INBOUND_TOKEN"
            ]
        );
        let file = data_dir.join(GENERATED_SECRETS_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("AUTH_SECRET"),
            "a configured secret is not copied"
        );

        // A restart reuses the kept values instead of generating new ones.
        let mut second = config(&[("DATA_DIR", data), ("AUTH_SECRET", "short")]);
        let findings = run(&mut second).unwrap();
        assert!(findings.generated.is_empty());
        let key = |c: &Config| {
            c.secrets
                .webhook_secret_encryption_key
                .as_ref()
                .unwrap()
                .expose_secret()
                .to_owned()
        };
        assert_eq!(key(&first), key(&second));
        assert!(is_32_bytes_of_hex(&key(&second)));
    }

    #[test]
    fn private_files_are_not_overwritten_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        write_private_file(&path, b"A=1\n", false).unwrap();
        let err = write_private_file(&path, b"A=2\n", false).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=1\n");
        write_private_file(&path, b"A=3\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "A=3\n");
    }
}

#[cfg(test)]
mod env_example {
    use super::KNOWN_PLACEHOLDERS;
    use crate::config::SECRET_SLOTS;

    /// Every secret value `.env.example` shows is refused in production, and every secret is shown.
    #[test]
    fn env_example_placeholders_are_known() {
        let text = include_str!("../../../.env.example");
        for slot in &SECRET_SLOTS {
            let line = text
                .lines()
                .map(|l| l.trim_start_matches('#').trim())
                .find(|l| l.starts_with(&format!("{}=", slot.name)))
                .unwrap_or_else(|| panic!("{} missing from .env.example", slot.name));
            let value = line.split_once('=').map(|(_, v)| v).unwrap_or_default();
            assert!(
                KNOWN_PLACEHOLDERS.contains(&value),
                "{} placeholder `{value}` is not in KNOWN_PLACEHOLDERS",
                slot.name
            );
        }
    }
}
