//! The certificate of the SMTP listeners: PEM files (`SMTP_TLS_CERT`, `SMTP_TLS_KEY`), or on a local
//! deployment only, a self-signed one made at start. A production deployment without files refuses to
//! start its SMTP listeners (a client would either refuse the certificate or, worse, be taught to accept
//! any).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "the SMTP listeners need a TLS certificate in production: set SMTP_TLS_CERT and SMTP_TLS_KEY \
         (PEM files), or turn them off with SMTP_PORT=0 and SMTPS_PORT=0"
    )]
    Missing,
    #[error("cannot read {what} {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("cannot use the SMTP TLS certificate: {0}")]
    Invalid(String),
}

/// Where the certificate comes from, for the start log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Files,
    SelfSigned,
}

/// The TLS acceptor of the SMTP listeners, or `None` when neither files are configured nor a certificate
/// may be generated and `required` is false (the MX then does not offer STARTTLS).
pub fn acceptor(
    config: &Config,
    required: bool,
) -> Result<Option<(TlsAcceptor, Source)>, TlsError> {
    let (chain, key, source) = match &config.listen.smtp_tls {
        Some((cert, key)) => {
            let (chain, key) = read_files(cert, key)?;
            (chain, key, Source::Files)
        }
        None if !config.is_production() => {
            let (chain, key) = self_signed(config)?;
            (chain, key, Source::SelfSigned)
        }
        None if required => return Err(TlsError::Missing),
        None => return Ok(None),
    };
    let server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid(e.to_string()))?;
    Ok(Some((TlsAcceptor::from(Arc::new(server)), source)))
}

fn read_files(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let file_error = |what: &'static str, path: &Path, reason: String| TlsError::File {
        what,
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error("SMTP_TLS_CERT", cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error("SMTP_TLS_CERT", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(
            "SMTP_TLS_CERT",
            cert,
            "no PEM certificate in it".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error("SMTP_TLS_KEY", key, e.to_string()))?;
    Ok((chain, key))
}

/// A certificate for `localhost`, 127.0.0.1, ::1 and the host of `APP_URL`, made for this process only.
fn self_signed(
    config: &Config,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = config
        .app_url
        .host_str()
        .map(|h| h.trim_matches(['[', ']']))
        && !names.iter().any(|n| n == host)
    {
        names.push(host.to_owned());
    }
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Invalid(e.to_string()))?;
    let key = PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der());
    Ok((vec![generated.cert.der().clone()], key.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vars;

    #[test]
    fn production_needs_files_and_local_gets_a_generated_certificate() {
        let production =
            Config::from_vars(&Vars::from_pairs([("APP_URL", "https://mail.example.com")]))
                .unwrap();
        let error = acceptor(&production, true).err().expect("refused");
        assert!(error.to_string().contains("SMTP_TLS_CERT"), "{error}");
        // The MX alone runs without TLS rather than refusing to start.
        assert!(acceptor(&production, false).unwrap().is_none());
        let local = Config::from_vars(&Vars::default()).unwrap();
        let (_, source) = acceptor(&local, true).unwrap().expect("generated");
        assert_eq!(source, Source::SelfSigned);
    }
}
