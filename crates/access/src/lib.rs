//! Access: turns the credential of a request into a [`Grant`] — which pipes and data sources it
//! may use, with which fixed params and row filters, under which rate-limit key — and keeps the
//! limiters. Static tokens (`p.…`) are stored only as SHA-256 digests ([`tokens`]); JWTs are
//! HS256-signed with the workspace admin token ([`jwt`]). This crate knows nothing of storage
//! internals or HTTP: the server maps its errors onto responses and the engine enforces the
//! row-level part of a grant.

pub mod grant;
pub mod jwt;
pub mod limits;
pub mod scope;
pub mod tokens;

pub use grant::{Credential, Grant};
pub use scope::{FixedParams, Scope};

/// Why a credential was refused (spec `analytics-api.md` §3.3); every case answers 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the request.
    #[error("invalid authentication token. Token is required")]
    Missing,
    /// A static token that is unknown, revoked or malformed.
    #[error("invalid authentication token. Token not found")]
    NotFound,
    /// A JWT with fewer than three parts.
    #[error("invalid authentication token. Not enough segments")]
    NotEnoughSegments,
    /// A JWT that does not decode.
    #[error("invalid authentication token. Invalid token")]
    Malformed,
    /// A JWT header `alg` other than HS256.
    #[error("invalid authentication token. The specified alg value is not allowed")]
    AlgorithmNotAllowed,
    /// A JWT for another (or no) workspace.
    #[error("invalid authentication token. Invalid workspace")]
    InvalidWorkspace,
    /// A JWT whose signature does not match.
    #[error("invalid authentication token. Signature verification failed")]
    BadSignature,
    /// A JWT without `exp`.
    #[error("JWT tokens is missing the 'exp' claim")]
    MissingExpiry,
    /// A JWT past its `exp`.
    #[error("invalid authentication token. Signature has expired")]
    Expired,
    /// A JWT whose `nbf` is in the future.
    #[error("invalid authentication token. The token is not yet valid (nbf)")]
    NotYetValid,
    /// A JWT whose `iat` is in the future.
    #[error("invalid authentication token. The token is not yet valid (iat)")]
    IssuedInFuture,
    /// A JWT whose expiry is further away than the server allows.
    #[error("invalid authentication token. Token lifetime exceeds the allowed maximum")]
    TooLong,
    /// A JWT claim of the wrong type.
    #[error("invalid authentication token. Invalid JWT payload: {0}")]
    InvalidPayload(&'static str),
    /// A JWT scope type that JWTs may not carry.
    #[error("invalid authentication token. Invalid scope '{0}' in JWT")]
    InvalidScope(String),
    /// A JWT row filter that is not a valid expression over its data source.
    #[error("invalid authentication token. Invalid filter in scope for '{0}'")]
    InvalidFilter(String),
    /// A JWT on a route that takes only static tokens.
    #[error("This API does not support JWT tokens")]
    JwtNotAccepted,
    /// A valid token without the scope the request needs.
    #[error("The token you have provided doesn't have access to this resource")]
    NoAccess,
    /// A fixed param that cannot pin anything (`null`, `""`, `[]`).
    #[error("The token you have provided has an empty value for the fixed param '{0}'")]
    EmptyFixedParam(String),
    /// A fixed param that is an object.
    #[error("The token you have provided has an invalid value for the fixed param '{0}'")]
    InvalidFixedParam(String),
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The credential is refused (403).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// An unknown scope string (400).
    #[error("Unknown scope {0}")]
    UnknownScope(String),
    /// A request the Tokens API refuses (400), with its message.
    #[error("{0}")]
    Invalid(String),
    /// No such token (404).
    #[error("Token \"{0}\" not found")]
    NotFound(String),
    /// The token store could not be read or written.
    #[error("token store {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
