-- A message's text is bounded in characters, as the domain (`MAX_MESSAGE_CHARS`) and the
-- pages' `maxlength` count it, not in bytes: a message of 4096 umlauts or Cyrillic
-- letters (8 KiB of UTF-8) is allowed. Every stored text fits: a byte count bounds the
-- character count.
ALTER TABLE race_messages DROP CONSTRAINT race_messages_text_check;
ALTER TABLE race_messages ADD CONSTRAINT race_messages_text_check
    CHECK (char_length(text) BETWEEN 1 AND 4096);
