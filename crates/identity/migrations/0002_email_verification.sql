-- Email verification links: a single-use ticket per address, stored as a digest.
CREATE TABLE email_verifications (
    ticket_digest TEXT PRIMARY KEY,
    email_id TEXT NOT NULL REFERENCES email_addresses(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
