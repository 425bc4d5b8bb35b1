-- The outbox's attempt rows get cheaper to write: every batch finish of the mail worker
-- inserts one per mail, in the statement that finishes the mails (galaxy-adapters/
-- postgres/src/mail.rs). Measured with fsync on (docs/benchmarks.md, "Attempt rows"),
-- the finish spent more time checking the foreign key to `mail_deliveries` (one trigger
-- call per inserted row, each a key-share lock on the mail) than inserting the rows, and
-- kept two indexes where one serves.
--
-- * `mail_attempts.mail_id` no longer references `mail_deliveries`. It cannot dangle:
--   the only statement that inserts attempts takes their mail ids from the mails it has
--   just updated (and holds locked to commit), and the only statement that deletes mails
--   (the purge of sent mail) deletes their attempts with them, in the same statement.
-- * The primary key is `(mail_id, seq)`, which is also the order an operator reads a
--   mail's attempts in; the separate index `mail_attempts_by_mail` goes.
ALTER TABLE mail_attempts DROP CONSTRAINT mail_attempts_mail_id_fkey;
ALTER TABLE mail_attempts DROP CONSTRAINT mail_attempts_pkey;
DROP INDEX mail_attempts_by_mail;
ALTER TABLE mail_attempts ADD PRIMARY KEY (mail_id, seq);
