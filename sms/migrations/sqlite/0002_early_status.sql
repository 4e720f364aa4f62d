-- Delivery callbacks that arrive before the dispatcher has saved the provider's message id.
CREATE TABLE sms_early_status (
    provider_id TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    error_code  TEXT,
    at          REAL NOT NULL
);
