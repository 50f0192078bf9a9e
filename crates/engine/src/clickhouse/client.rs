//! ClickHouse's HTTP interface: one statement per request, the statement in the body (or, for
//! an insert, in the `query` parameter with the rows as the body), credentials in a Basic
//! `Authorization` header (never in a URL, so they reach no log), and errors parsed from the
//! text ClickHouse answers with.

use std::time::Duration;

use bytes::Bytes;

/// Where a ClickHouse server is and how to log in.
#[derive(Clone)]
pub struct Connection {
    /// `http://host:8123` (no path, no credentials).
    pub url: String,
    /// The database the workspace's tables live in.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (never logged).
    pub password: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChError {
    /// ClickHouse's error code, when it answered with one.
    pub code: Option<u32>,
    /// The message without ClickHouse's decorations (and without the database name).
    pub message: String,
    /// Whether ClickHouse could not be reached or did not answer in time (worth a retry).
    pub unavailable: bool,
}

impl std::fmt::Display for ChError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(c) => write!(f, "ClickHouse error {c}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// ClickHouse error codes the engine maps to statuses.
pub mod codes {
    /// `TIMEOUT_EXCEEDED`.
    pub const TIMEOUT_EXCEEDED: u32 = 159;
    /// `QUERY_WAS_CANCELLED`.
    pub const QUERY_WAS_CANCELLED: u32 = 394;
    /// `MEMORY_LIMIT_EXCEEDED`.
    pub const MEMORY_LIMIT_EXCEEDED: u32 = 241;
    /// `TOO_MANY_SIMULTANEOUS_QUERIES`.
    pub const TOO_MANY_SIMULTANEOUS_QUERIES: u32 = 202;
    /// `UNKNOWN_TABLE`.
    pub const UNKNOWN_TABLE: u32 = 60;
    /// `TABLE_ALREADY_EXISTS`.
    pub const TABLE_ALREADY_EXISTS: u32 = 57;
}

/// Parses ClickHouse's error text: `Code: 60, e.displayText() = DB::Exception: Table x doesn't
/// exist., e.what() = DB::Exception` (18.x–19.x) or `Code: 60. DB::Exception: Table x does not
/// exist. (UNKNOWN_TABLE) (version 23.8.1.1)` (newer).
pub fn parse_error(text: &str, database: &str) -> ChError {
    let text = text.trim();
    let code = text
        .strip_prefix("Code: ")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok());
    let mut message = match text.split_once("DB::Exception: ") {
        Some((_, m)) => m.to_string(),
        None => text.to_string(),
    };
    if let Some(at) = message.find(", e.what() = ") {
        message.truncate(at);
    }
    if let Some(at) = message.find(" (version ") {
        message.truncate(at);
    }
    // The newer servers' `(ERROR_NAME)` suffix.
    if let Some(open) = message.rfind(" (")
        && message.ends_with(')')
        && message[open + 2..message.len() - 1].bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    {
        message.truncate(open);
    }
    // Stack traces of newer servers start on the next line.
    if let Some(at) = message.find("\nStack trace") {
        message.truncate(at);
    }
    let message = message.replace(&format!("{database}."), "").replace(&format!("`{database}`."), "");
    ChError { code, message: message.trim().to_string(), unavailable: false }
}

/// An HTTP client for one ClickHouse database.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    connection: Connection,
}

impl Client {
    /// A client; nothing is sent yet.
    pub fn new(connection: Connection) -> Result<Client, ChError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ChError { code: None, message: e.to_string(), unavailable: true })?;
        Ok(Client { http, connection })
    }

    /// The workspace's database.
    pub fn database(&self) -> &str {
        &self.connection.database
    }

    /// Sends `body` with URL `params`; `timeout` bounds the whole request. Returns the answer's
    /// body, or the error ClickHouse (or the network) gave.
    pub async fn send(&self, params: &[(&str, String)], body: Vec<u8>, timeout: Duration) -> Result<Bytes, ChError> {
        let mut request = self
            .http
            .post(&self.connection.url)
            .query(params)
            .basic_auth(&self.connection.user, self.connection.password.as_deref())
            .timeout(timeout)
            .body(body);
        if !params.iter().any(|(k, _)| *k == "database") && !self.connection.database.is_empty() {
            request = request.query(&[("database", self.connection.database.as_str())]);
        }
        let unavailable = |e: reqwest::Error| ChError {
            code: None,
            message: if e.is_timeout() {
                "ClickHouse did not answer in time".to_string()
            } else {
                format!("ClickHouse is unreachable: {e}")
            },
            unavailable: true,
        };
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unavailable)?;
        if status.is_success() {
            // Errors after the first bytes of a streamed answer arrive with status 200, at its end.
            if let Some(at) = find_late_exception(&bytes) {
                return Err(parse_error(&String::from_utf8_lossy(&bytes[at..]), &self.connection.database));
            }
            return Ok(bytes);
        }
        let mut e = parse_error(&String::from_utf8_lossy(&bytes), &self.connection.database);
        e.unavailable = status.as_u16() == 503 || e.code == Some(codes::TOO_MANY_SIMULTANEOUS_QUERIES);
        Err(e)
    }

    /// Runs one statement (DDL, `ALTER`, `KILL`) with `settings`.
    pub async fn execute(&self, sql: &str, settings: &[(&str, String)]) -> Result<(), ChError> {
        self.send(settings, sql.as_bytes().to_vec(), Duration::from_secs(300)).await.map(drop)
    }

    /// Runs a query and parses its `JSONCompact` answer.
    pub async fn query_json(&self, sql: &str) -> Result<serde_json::Value, ChError> {
        let body = self.send(&[], format!("{sql} FORMAT JSONCompact").into_bytes(), Duration::from_secs(60)).await?;
        serde_json::from_slice(&body).map_err(|e| ChError {
            code: None,
            message: format!("unreadable ClickHouse answer: {e}"),
            unavailable: false,
        })
    }

    /// Inserts `rows` (encoded in `format`) into `table`'s `columns`.
    pub async fn insert(
        &self,
        table: &str,
        columns: &[String],
        format: &str,
        rows: Vec<u8>,
        settings: &[(&str, String)],
    ) -> Result<(), ChError> {
        let columns = columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        let sql = format!("INSERT INTO {}.{} ({columns}) FORMAT {format}", quote(self.database()), quote(table));
        let mut params: Vec<(&str, String)> = vec![("query", sql)];
        params.extend(settings.iter().cloned());
        self.send(&params, rows, Duration::from_secs(120)).await.map(drop)
    }
}

/// Where an exception starts in a successful answer's body, if ClickHouse appended one.
fn find_late_exception(body: &[u8]) -> Option<usize> {
    let tail_start = body.len().saturating_sub(4096);
    let tail = &body[tail_start..];
    let needle = b"Code: ";
    let at = tail.windows(needle.len()).rposition(|w| w == needle)?;
    let rest = String::from_utf8_lossy(&tail[at..]);
    rest.contains("DB::Exception").then_some(tail_start + at)
}

/// `name` as a backquoted ClickHouse identifier.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// `s` as a ClickHouse string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_old_and_new_servers() {
        let old =
            "Code: 60, e.displayText() = DB::Exception: Table ws1.nope doesn't exist., e.what() = DB::Exception\n";
        assert_eq!(
            parse_error(old, "ws1"),
            ChError { code: Some(60), message: "Table nope doesn't exist.".into(), unavailable: false }
        );
        let new = "Code: 47. DB::Exception: Missing columns: 'x' while processing query: 'SELECT x', required columns: 'x'. (UNKNOWN_IDENTIFIER) (version 23.8.2.7 (official build))";
        let e = parse_error(new, "ws1");
        assert_eq!(e.code, Some(47));
        assert_eq!(e.message, "Missing columns: 'x' while processing query: 'SELECT x', required columns: 'x'.");
        assert_eq!(parse_error("boom", "ws").code, None);
    }

    #[test]
    fn late_exceptions_are_found() {
        let body =
            b"[1]\n[2]\nCode: 159, e.displayText() = DB::Exception: Timeout exceeded, e.what() = DB::Exception\n";
        assert_eq!(find_late_exception(body), Some(8));
        assert_eq!(find_late_exception(b"{\"data\": [\"Code: 1\"]}"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a`b"), "`a\\`b`");
        assert_eq!(literal("it's \\"), "'it\\'s \\\\'");
    }
}
