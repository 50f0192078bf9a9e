-- Documents other parts of Aviary keep in the identity store so that every node sharing it
-- sees the same version (the workspace's static tokens).
CREATE TABLE IF NOT EXISTS shared_documents (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    body TEXT NOT NULL
);
