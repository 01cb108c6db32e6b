-- Boards, lists, tasks, the per-board event log and the idempotency keys:
-- the SQLite schema (sql/sqlite/, up to 002) in PostgreSQL's dialect.
-- Timestamps stay ISO-8601 text, as the module writes and reads them.
CREATE TABLE boards (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    seq        BIGINT NOT NULL DEFAULT 0   -- last event id of the board
);
CREATE TABLE lists (
    id       BIGSERIAL PRIMARY KEY,
    board_id TEXT NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX lists_board ON lists (board_id, position);
CREATE TABLE tasks (
    id          BIGSERIAL PRIMARY KEY,
    board_id    TEXT NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
    list_id     BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    assignee    TEXT,
    position    INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX tasks_list ON tasks (list_id, position);
CREATE INDEX tasks_board ON tasks (board_id);
CREATE TABLE events (
    board_id TEXT NOT NULL REFERENCES boards(id) ON DELETE CASCADE,
    id       BIGINT NOT NULL,
    type     TEXT NOT NULL,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    body     TEXT NOT NULL,              -- the event as its clients receive it
    PRIMARY KEY (board_id, id)
);
CREATE TABLE idempotency (
    user_id     TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    location    TEXT,
    body        TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
