-- The demo board and a private one (alice only, see conf/). Idempotent; run
-- by scripts/migrate.sh under its advisory lock, so nodes starting together
-- seed once.
INSERT INTO boards (id, name, created_at, seq)
    VALUES ('demo', 'Demo board', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 0)
    ON CONFLICT (id) DO NOTHING;
INSERT INTO boards (id, name, created_at, seq)
    VALUES ('private', 'Alice''s private board',
            to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 0)
    ON CONFLICT (id) DO NOTHING;
INSERT INTO lists (board_id, name, position)
    SELECT b.id, l.name, l.pos
    FROM (VALUES ('demo'), ('private')) b (id),
         (VALUES ('To Do', 0), ('In Progress', 1), ('Done', 2)) l (name, pos)
    WHERE NOT EXISTS (SELECT 1 FROM lists WHERE board_id = b.id)
    ORDER BY b.id, l.pos;
