-- A race's messages are listed newest first (`ORDER BY sent_at DESC, id DESC`, keyset
-- pages): without an index in that order, every page view read and sorted every message
-- of the game before its LIMIT. With it, the list walks the game's messages in order and
-- stops once a page of the race's own is found.
CREATE INDEX race_messages_by_time ON race_messages (game_id, sent_at DESC, id DESC);
