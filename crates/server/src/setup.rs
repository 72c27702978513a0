//! `opensend setup`: a `.env` with fresh secrets.

use std::path::Path;

use crate::config::SECRET_SLOTS;
use crate::startup_checks::write_private_file;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0} already exists; pass --force to replace it (its secrets will be lost)")]
    AlreadyExists(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

/// Writes `path` (mode 0600) with a fresh value for every secret: 32 bytes from the OS CSPRNG, hex-encoded.
/// Refuses to replace an existing file unless `force`.
pub fn write_env_file(path: &Path, force: bool) -> Result<(), SetupError> {
    if path.exists() && !force {
        return Err(SetupError::AlreadyExists(path.display().to_string()));
    }
    let mut body = String::from(
        "# Written by `opensend setup`. Keep this file private: it holds this deployment's secrets.\n\
         # Every setting is described in docs/configuration.md.\n\
         # APP_URL=https://mail.example.com\n\
         # DATABASE_URL=postgres://opensend:password@localhost:5432/opensend\n",
    );
    for slot in &SECRET_SLOTS {
        let value =
            opensend_core::random::hex_secret().map_err(|e| SetupError::Random(e.to_string()))?;
        body.push_str(&format!("{}={value}\n", slot.name));
    }
    write_private_file(path, body.as_bytes(), force).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            SetupError::AlreadyExists(path.display().to_string())
        } else {
            SetupError::Write {
                path: path.display().to_string(),
                source,
            }
        }
    })
}
