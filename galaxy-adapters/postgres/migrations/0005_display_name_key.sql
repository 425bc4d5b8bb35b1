-- Display names are refused when they look like another user's: each user's name key (the
-- domain's `DisplayName::key`, the UTS #39 confusable skeleton, case folded, letters and
-- digits only) is stored for the check. Rows of before get an approximation (lower case,
-- letters and digits) until their name changes; a row written without one (raw SQL) has none
-- and is simply not compared.
ALTER TABLE users ADD COLUMN display_name_key text;
UPDATE users SET display_name_key = lower(regexp_replace(display_name, '[^[:alnum:]]', '', 'g'));
CREATE INDEX users_display_name_key ON users (display_name_key);
