-- Named sessions may expire (issue 15): an OAuth key or a key the author knows is time-limited.
-- NULL: never. An expired session's key is refused with a clear message, never sent.
ALTER TABLE saved_authentications ADD COLUMN expires_at TEXT;
