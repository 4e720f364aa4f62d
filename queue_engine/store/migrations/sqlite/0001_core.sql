-- The queue core: tickets, per-day counters, workstations, the event log and reader cursors.

CREATE TABLE tickets (
    id                 INTEGER PRIMARY KEY,
    hall               TEXT    NOT NULL,
    service            TEXT    NOT NULL,
    number             TEXT    NOT NULL,
    day                TEXT    NOT NULL,
    channel            TEXT    NOT NULL,
    priority           TEXT    NOT NULL,
    state              TEXT    NOT NULL,
    token              TEXT    NOT NULL UNIQUE,
    arrived_at         REAL    NOT NULL,
    queued_at          REAL    NOT NULL,
    updated_at         REAL    NOT NULL,
    phone              TEXT,
    appointment_ref    TEXT,
    appointment_at     REAL,
    workstation        TEXT,
    window_no          TEXT,
    target_workstation TEXT,
    called_at          REAL,
    started_at         REAL,
    ended_at           REAL,
    recalls            INTEGER NOT NULL DEFAULT 0,
    offer_expires_at   REAL,
    declined_by        TEXT    NOT NULL DEFAULT '',
    parent_id          INTEGER REFERENCES tickets (id),
    note               TEXT
);

-- A number is issued once per hall and day; a transfer's copy (parent_id set) keeps it.
CREATE UNIQUE INDEX tickets_number ON tickets (hall, day, number) WHERE parent_id IS NULL;
CREATE INDEX tickets_queue ON tickets (hall, state, service, priority, queued_at);
CREATE INDEX tickets_done ON tickets (hall, service, state, ended_at);
CREATE INDEX tickets_day ON tickets (hall, day);
-- Routing's two exceptions to queue order, kept small: transfers to a named workstation
-- and appointments, which only a few waiting tickets have.
CREATE INDEX tickets_targeted ON tickets (hall, target_workstation) WHERE state = 'waiting' AND target_workstation IS NOT NULL;
CREATE INDEX tickets_appointed ON tickets (hall, appointment_at) WHERE state = 'waiting' AND appointment_at IS NOT NULL;

CREATE TABLE counters (
    hall   TEXT    NOT NULL,
    prefix TEXT    NOT NULL,
    day    TEXT    NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (hall, prefix, day)
);

CREATE TABLE workstations (
    virtual_number TEXT    NOT NULL,
    hall           TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    since          REAL    NOT NULL,
    window_no      TEXT,
    kind           TEXT,
    ticket_id      INTEGER,
    pause_reason   TEXT,
    missed_offers  INTEGER NOT NULL DEFAULT 0,
    wrap_up_until  REAL,
    PRIMARY KEY (hall, virtual_number)
);

-- Two staffers can never sit at one window.
CREATE UNIQUE INDEX workstations_window ON workstations (hall, window_no) WHERE window_no IS NOT NULL;

CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    hall           TEXT NOT NULL,
    type           TEXT NOT NULL,
    at             REAL NOT NULL,
    ticket_id      INTEGER,
    virtual_number TEXT,
    window_no      TEXT,
    payload        TEXT NOT NULL
);
CREATE INDEX events_ticket ON events (ticket_id);

CREATE TABLE reader_cursors (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
