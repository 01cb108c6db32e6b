-- GET /boards reads boards a page at a time in creation order, after a
-- (created_at, id) cursor: an index in that order makes each page a seek.
CREATE INDEX boards_listing ON boards (created_at, id);
