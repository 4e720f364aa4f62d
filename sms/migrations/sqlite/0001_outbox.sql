-- The SMS outbox: one row per message, at most one per event and template (dedupe_key).

CREATE TABLE sms_outbox (
    id              INTEGER PRIMARY KEY,
    dedupe_key      TEXT    NOT NULL UNIQUE,
    event_id        INTEGER,
    template        TEXT    NOT NULL,
    hall            TEXT,
    ticket_id       INTEGER,
    phone           TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    urgent          INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    created_at      REAL    NOT NULL,
    not_before      REAL    NOT NULL,
    next_attempt_at REAL    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    provider_id     TEXT,
    error_code      TEXT,
    error           TEXT,
    sent_at         REAL,
    updated_at      REAL    NOT NULL
);
CREATE INDEX sms_outbox_due ON sms_outbox (status, next_attempt_at);
CREATE INDEX sms_outbox_phone ON sms_outbox (phone, id);
CREATE UNIQUE INDEX sms_outbox_provider ON sms_outbox (provider_id) WHERE provider_id IS NOT NULL;

-- Every send attempt, with its outcome: the audit of what was tried and why it failed.
CREATE TABLE sms_attempts (
    id          INTEGER PRIMARY KEY,
    outbox_id   INTEGER NOT NULL REFERENCES sms_outbox (id),
    n           INTEGER NOT NULL,
    started_at  REAL    NOT NULL,
    finished_at REAL,
    outcome     TEXT    NOT NULL,
    error_code  TEXT,
    error       TEXT,
    provider_id TEXT
);
CREATE INDEX sms_attempts_outbox ON sms_attempts (outbox_id);

CREATE TABLE sms_optouts (
    phone         TEXT PRIMARY KEY,
    opted_out_at  REAL NOT NULL,
    source        TEXT NOT NULL
);

CREATE TABLE sms_inbound (
    id          INTEGER PRIMARY KEY,
    provider_id TEXT UNIQUE,
    phone       TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at REAL NOT NULL,
    reply       TEXT
);
