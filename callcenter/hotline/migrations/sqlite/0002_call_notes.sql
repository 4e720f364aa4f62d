-- Call notes (通话记录): one row per saved version, never updated, so a supervisor can read
-- how a note grew; the newest row of a ticket and author is that author's note.

CREATE TABLE call_notes (
    id             INTEGER PRIMARY KEY,
    hall           TEXT    NOT NULL,
    ticket_id      INTEGER NOT NULL,
    virtual_number TEXT    NOT NULL,
    text           TEXT    NOT NULL,
    at             REAL    NOT NULL
);
CREATE INDEX call_notes_ticket ON call_notes (ticket_id, virtual_number, id);
