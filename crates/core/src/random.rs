//! Random bytes from the operating system's CSPRNG.

/// Bytes from the OS CSPRNG. Failure of the OS generator is not recoverable and must not be papered over
/// with a weaker source, so it is reported to the caller.
pub fn os_random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// A fresh secret: 32 bytes from the OS CSPRNG, hex-encoded (64 characters).
pub fn hex_secret() -> Result<String, getrandom::Error> {
    Ok(hex::encode(os_random::<32>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_secrets_are_64_hex_chars_and_differ() {
        let a = hex_secret().unwrap();
        let b = hex_secret().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
