//! Secrets the server must read back (template signing keys, RSA private keys) are stored
//! sealed with ChaCha20-Poly1305 under a key derived from the server's sealing secret, so a copy
//! of the database alone does not hold them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Seals and opens stored secrets.
pub struct Sealer(ChaCha20Poly1305);

impl Sealer {
    /// A sealer keyed by SHA-256(`"aviary identity" ‖ secret`).
    pub fn new(secret: &[u8]) -> Sealer {
        let key = Sha256::new().chain_update(b"aviary identity").chain_update(secret).finalize();
        Sealer(ChaCha20Poly1305::new(Key::from_slice(&key)))
    }

    /// base64(nonce ‖ ciphertext).
    pub fn seal(&self, secret: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce only fails on absurd lengths.
        let sealed = self.0.encrypt(Nonce::from_slice(&nonce), secret.as_bytes()).unwrap_or_default();
        STANDARD.encode([nonce.as_slice(), &sealed].concat())
    }

    /// The secret back, or an error when the sealing key changed.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let broken = || Error::Internal("a stored secret cannot be opened: was the sealing key changed?".into());
        let bytes = STANDARD.decode(sealed).map_err(|_| broken())?;
        if bytes.len() < 12 {
            return Err(broken());
        }
        let plain = self.0.decrypt(Nonce::from_slice(&bytes[..12]), &bytes[12..]).map_err(|_| broken())?;
        String::from_utf8(plain).map_err(|_| broken())
    }
}
