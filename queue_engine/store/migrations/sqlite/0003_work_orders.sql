-- Hotline work orders (工单): 受理 → 派单 → 签收 → 办理 → 反馈 → 回访 → 办结.

CREATE TABLE work_orders (
    id             INTEGER PRIMARY KEY,
    hall           TEXT    NOT NULL,
    number         TEXT    NOT NULL UNIQUE,
    type           TEXT    NOT NULL,
    urgent         INTEGER NOT NULL,
    description    TEXT    NOT NULL,
    phone          TEXT,
    location       TEXT,
    department     TEXT,
    state          TEXT    NOT NULL,
    opened_at      REAL    NOT NULL,
    opened_by      TEXT    NOT NULL,
    ticket_id      INTEGER,
    deadline_at    REAL    NOT NULL,
    extension_days INTEGER,
    extension_note TEXT,
    returns        INTEGER NOT NULL DEFAULT 0,
    reopens        INTEGER NOT NULL DEFAULT 0,
    reply          TEXT,
    satisfaction   INTEGER,
    warned         TEXT,
    escalated_at   REAL,
    closed_at      REAL,
    updated_at     REAL    NOT NULL
);
CREATE INDEX work_orders_open ON work_orders (hall, closed_at, deadline_at);
CREATE INDEX work_orders_department ON work_orders (department, state);
CREATE INDEX work_orders_phone ON work_orders (phone);

CREATE TABLE work_order_steps (
    id       INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES work_orders (id),
    state    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    at       REAL    NOT NULL,
    by       TEXT,
    note     TEXT
);
CREATE INDEX work_order_steps_order ON work_order_steps (order_id);
