-- Run history. Portable SQL: the same file serves SQLite and PostgreSQL
-- (text ids and RFC 3339 text timestamps; sqlx Any supports only basic types).
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    -- running | complete | incomplete (killed, failed or stopped before the end)
    status      TEXT NOT NULL,
    schedule    TEXT
);
CREATE TABLE run_domains (
    run_id TEXT NOT NULL REFERENCES runs(id),
    domain TEXT NOT NULL,
    PRIMARY KEY (run_id, domain)
);
CREATE TABLE run_checks (
    run_id TEXT NOT NULL REFERENCES runs(id),
    domain TEXT NOT NULL,
    plugin TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (run_id, domain, plugin)
);
CREATE TABLE findings (
    run_id      TEXT NOT NULL REFERENCES runs(id),
    fingerprint TEXT NOT NULL,
    domain      TEXT NOT NULL,
    plugin      TEXT NOT NULL,
    code        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (run_id, fingerprint)
);
CREATE INDEX findings_by_domain ON findings (domain, run_id);
CREATE INDEX run_domains_by_domain ON run_domains (domain, run_id);
