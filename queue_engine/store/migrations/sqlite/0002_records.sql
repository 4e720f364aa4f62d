-- What outlives the queue: ratings and their follow-ups, appointments, application cases.

CREATE TABLE ratings (
    id             INTEGER PRIMARY KEY,
    hall           TEXT    NOT NULL,
    ticket_id      INTEGER NOT NULL UNIQUE REFERENCES tickets (id),
    virtual_number TEXT,
    service        TEXT    NOT NULL,
    level          INTEGER NOT NULL CHECK (level BETWEEN 1 AND 5),
    comment        TEXT,
    source         TEXT    NOT NULL,
    at             REAL    NOT NULL
);
CREATE INDEX ratings_hall ON ratings (hall, at);

-- A one-time link per completed ticket for rating from a phone.
CREATE TABLE rating_links (
    token      TEXT PRIMARY KEY,
    ticket_id  INTEGER NOT NULL UNIQUE REFERENCES tickets (id),
    created_at REAL NOT NULL,
    used_at    REAL
);

CREATE TABLE follow_ups (
    id             INTEGER PRIMARY KEY,
    hall           TEXT    NOT NULL,
    rating_id      INTEGER NOT NULL UNIQUE REFERENCES ratings (id),
    ticket_id      INTEGER NOT NULL,
    virtual_number TEXT,
    state          TEXT    NOT NULL,
    opened_at      REAL    NOT NULL,
    verify_by      TEXT    NOT NULL,
    deadline       TEXT    NOT NULL,
    verified_at    REAL,
    verified_by    TEXT,
    finding        TEXT,
    resolution     TEXT,
    reply          TEXT,
    closed_at      REAL,
    closed_by      TEXT,
    updated_at     REAL    NOT NULL
);
CREATE INDEX follow_ups_state ON follow_ups (hall, state);

CREATE TABLE appointments (
    id          INTEGER PRIMARY KEY,
    hall        TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    day         TEXT    NOT NULL,
    slot_start  REAL    NOT NULL,
    slot_end    REAL    NOT NULL,
    code        TEXT    NOT NULL,
    person_key  TEXT    NOT NULL,
    phone       TEXT,
    channel     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    booked_at   REAL    NOT NULL,
    ticket_id   INTEGER,
    reminded_at REAL,
    updated_at  REAL    NOT NULL,
    UNIQUE (hall, code)
);
-- At most one live booking per person per service per day.
CREATE UNIQUE INDEX appointments_one_a_day ON appointments (hall, service, day, person_key)
    WHERE status IN ('booked', 'checked_in', 'late');
CREATE INDEX appointments_slot ON appointments (hall, service, slot_start, status);
CREATE INDEX appointments_day ON appointments (hall, day, status);
CREATE INDEX appointments_person ON appointments (person_key, status);

CREATE TABLE booking_suspensions (
    person_key TEXT PRIMARY KEY,
    until_day  TEXT NOT NULL,
    reason     TEXT NOT NULL
);

CREATE TABLE cases (
    id           INTEGER PRIMARY KEY,
    hall         TEXT    NOT NULL,
    number       TEXT    NOT NULL UNIQUE,
    service      TEXT    NOT NULL,
    department   TEXT    NOT NULL,
    flow         TEXT    NOT NULL,
    ticket_id    INTEGER,
    phone        TEXT,
    status       TEXT    NOT NULL,
    opened_at    REAL    NOT NULL,
    opened_by    TEXT,
    promised_day TEXT    NOT NULL,
    closed_at    REAL,
    updated_at   REAL    NOT NULL
);
CREATE INDEX cases_open ON cases (hall, closed_at, promised_day);
CREATE INDEX cases_phone ON cases (phone);

CREATE TABLE case_steps (
    id      INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases (id),
    status  TEXT    NOT NULL,
    at      REAL    NOT NULL,
    by      TEXT,
    note    TEXT
);
CREATE INDEX case_steps_case ON case_steps (case_id);
