//! Passwords: Argon2id hashes in PHC strings, the password policy, and the dummy hash that makes
//! an unknown account cost as much time as a known one.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// Argon2id cost. The default is OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 8;

/// Passwords at the top of every published breach list; refused whatever their length.
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password!",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "12345678",
    "123456789",
    "1234567890",
    "12345678910",
    "87654321",
    "11111111",
    "00000000",
    "88888888",
    "11223344",
    "12341234",
    "123123123",
    "112233445566",
    "qwertyuiop",
    "qwerty123",
    "qwerty12",
    "qwertyui",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1qaz2wsx",
    "zaq12wsx",
    "asdfghjkl",
    "asdfasdf",
    "iloveyou",
    "iloveyou1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "superman",
    "batman123",
    "starwars",
    "whatever",
    "trustno1",
    "letmein1",
    "letmein123",
    "welcome1",
    "welcome123",
    "admin123",
    "administrator",
    "abc12345",
    "abcd1234",
    "abcdefgh",
    "monkey123",
    "dragon123",
    "master123",
    "shadow123",
    "michael1",
    "jennifer",
    "computer",
    "internet",
    "changeme",
    "changeme123",
    "secret123",
    "freedom1",
    "charlie1",
    "aa123456",
    "qazwsxedc",
    "1234qwer",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "passpass",
    "test1234",
    "testtest",
    "hello123",
    "loveyou1",
    "lovely12",
    "11112222",
    "123qweasd",
    "zxcvbnm1",
    "zxcvbnm123",
    "default1",
    "security",
];

/// Hashes and verifies passwords with one set of parameters.
pub struct Passwords {
    argon: Argon2<'static>,
    params: PasswordParams,
    /// A hash of a random password, verified against when the account does not exist.
    dummy: String,
}

impl Passwords {
    /// A hasher with `params` (refused when below OWASP's minimum).
    pub fn new(params: PasswordParams) -> Result<Passwords> {
        if params.memory_kib < 19 * 1024 || params.iterations < 2 || params.parallelism < 1 {
            return Err(Error::Internal("Argon2id parameters below 19 MiB, 2 passes, 1 lane are not allowed".into()));
        }
        let p = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| Error::Internal(format!("Argon2id parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let mut passwords = Passwords { argon, params, dummy: String::new() };
        passwords.dummy = passwords.hash(&crate::ids::random_hex(16))?;
        Ok(passwords)
    }

    /// The PHC string of `password` under a fresh salt.
    pub fn hash(&self, password: &str) -> Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("hashing: {e}")))
    }

    /// Whether `password` matches `hash` (the parameters are the hash's own), and whether the
    /// hash should be replaced because it is weaker than the current parameters.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> (bool, bool) {
        let Some(parsed) = hash.and_then(|h| PasswordHash::new(h).ok()) else {
            // Unknown account or no password: spend the same time, then fail.
            let dummy = PasswordHash::new(&self.dummy).ok();
            if let Some(d) = dummy {
                let _ = self.argon.verify_password(password.as_bytes(), &d);
            }
            return (false, false);
        };
        let ok = self.argon.verify_password(password.as_bytes(), &parsed).is_ok();
        let weaker = Params::try_from(&parsed)
            .is_ok_and(|p| p.m_cost() < self.params.memory_kib || p.t_cost() < self.params.iterations)
            || parsed.algorithm.as_str() != "argon2id";
        (ok, ok && weaker)
    }
}

/// Checks `password` against the policy: at least 8 characters, not a common password, not
/// the account's email address or username.
pub fn check_policy(password: &str, identifiers: &[&str]) -> Result<()> {
    if password.chars().count() < MIN_LENGTH {
        return Err(Error::unprocessable(
            "form_password_length_too_short",
            "password",
            "Passwords must be 8 characters or more.",
            "Passwords must be 8 characters or more.",
        ));
    }
    let lower = password.to_lowercase();
    let is_identifier = identifiers.iter().any(|i| !i.is_empty() && i.to_lowercase() == lower);
    let local_part =
        identifiers.iter().any(|i| i.split('@').next().is_some_and(|l| l.len() >= 3 && l.to_lowercase() == lower));
    if COMMON.contains(&lower.as_str()) || is_identifier || local_part {
        return Err(Error::unprocessable(
            "form_password_pwned",
            "password",
            "Password has been found in an online data breach. For account safety, please use a different password.",
            "This password is too common or matches your identifier; please choose another.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_common_and_identifier_passwords() {
        assert!(check_policy("correct horse", &["ana@acme.example"]).is_ok());
        let code = |p: &str| match check_policy(p, &["ana.lopez@acme.example", "analopez"]) {
            Err(Error::Invalid { code, .. }) => code,
            _ => "ok",
        };
        assert_eq!(code("short"), "form_password_length_too_short");
        assert_eq!(code("Password123"), "form_password_pwned");
        assert_eq!(code("ana.lopez@acme.example"), "form_password_pwned");
        assert_eq!(code("ANALOPEZ"), "form_password_pwned");
        assert_eq!(code("ana.lopez"), "form_password_pwned");
        assert_eq!(code("a perfectly fine one"), "ok");
    }

    #[test]
    fn hashes_verify_and_weaker_ones_ask_for_an_upgrade() {
        let p = Passwords::new(PasswordParams::default()).unwrap();
        let h = p.hash("a long passphrase").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(p.verify("a long passphrase", Some(&h)), (true, false));
        assert_eq!(p.verify("another one", Some(&h)), (false, false));
        assert_eq!(p.verify("a long passphrase", None), (false, false));
        let stronger = Passwords::new(PasswordParams { memory_kib: 20 * 1024, iterations: 3, parallelism: 1 }).unwrap();
        assert_eq!(stronger.verify("a long passphrase", Some(&h)), (true, true));
        assert!(Passwords::new(PasswordParams { memory_kib: 4096, iterations: 1, parallelism: 1 }).is_err());
    }
}
