-- One row per voice call the provider told us about, tied to the queue ticket it became.

CREATE TABLE calls (
    call_sid   TEXT PRIMARY KEY,
    hall       TEXT    NOT NULL,
    direction  TEXT    NOT NULL,
    phone      TEXT    NOT NULL,
    ticket_id  INTEGER,
    status     TEXT    NOT NULL,
    lang       TEXT    NOT NULL DEFAULT 'zh',
    agent      TEXT,
    attempt    INTEGER NOT NULL DEFAULT 1,
    created_at REAL    NOT NULL,
    updated_at REAL    NOT NULL
);
CREATE INDEX calls_ticket ON calls (ticket_id);
CREATE INDEX calls_open ON calls (status, updated_at);
