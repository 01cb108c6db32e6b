-- The demo board and a private one (alice only, see conf/). Idempotent.
INSERT OR IGNORE INTO boards (id, name, created_at, seq)
    VALUES ('demo', 'Demo board', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0);
INSERT OR IGNORE INTO boards (id, name, created_at, seq)
    VALUES ('private', 'Alice''s private board', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0);
INSERT INTO lists (board_id, name, position)
    SELECT b.id, l.name, l.pos
    FROM (SELECT 'demo' AS id UNION ALL SELECT 'private') b,
         (SELECT 'To Do' AS name, 0 AS pos UNION ALL SELECT 'In Progress', 1
          UNION ALL SELECT 'Done', 2) l
    WHERE NOT EXISTS (SELECT 1 FROM lists WHERE board_id = b.id);
