-- The event log as one B-tree keyed by (board_id, id): one index less to
-- write on every change.
CREATE TABLE events_new (
    board_id TEXT NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
    id       INTEGER NOT NULL,
    type     TEXT NOT NULL,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (board_id, id)
) WITHOUT ROWID;
INSERT INTO events_new SELECT board_id, id, type, at, actor, body FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
