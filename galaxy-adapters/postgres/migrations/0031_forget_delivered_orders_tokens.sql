-- Orders tokens leave the mail the database keeps once it is done with it (SPEC 10:
-- secrets stored hashed). From this version the mail worker writes a delivered turn mail
-- or answer to mailed orders without its token (`OutgoingMail::redacted`: the token of
-- the `Reply-To`, `orders+<token>@domain`, becomes `removed` wherever it stands), and a
-- handled inbound mail keeps neither its message nor its envelope recipients. This does
-- the same to what earlier versions kept.
UPDATE mail_deliveries AS m SET
    subject   = replace(m.subject, t.token, 'removed'),
    text_body = replace(m.text_body, t.token, 'removed'),
    html_body = replace(m.html_body, t.token, 'removed'),
    extras    = jsonb_set(m.extras, '{reply_to}',
                          to_jsonb(replace(m.extras ->> 'reply_to', t.token, 'removed')))
FROM (
    SELECT id, substring(extras ->> 'reply_to' FROM '^orders\+([a-z0-9]{20})@') AS token
    FROM mail_deliveries
    WHERE status = 'sent' AND extras ? 'reply_to'
) AS t
WHERE m.id = t.id AND t.token IS NOT NULL;

UPDATE inbound_mail SET raw = ''::bytea, envelope_to = '{}'
WHERE status = 'done' AND (octet_length(raw) > 0 OR cardinality(envelope_to) > 0);
