-- The runtime alerts every admin on each incident (`UserStore::list_admins`): a partial
-- index keeps that a read of the few admin rows instead of a scan of every user.
CREATE INDEX users_admins ON users (created_at, id) WHERE 'admin' = ANY (roles);
