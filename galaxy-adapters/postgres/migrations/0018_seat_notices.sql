-- The notice of a seat handed over (`seat_changed`, to the new and the previous player)
-- becomes owed in the approval's own write: `noticed` is false from the approval until
-- the notice is raised (the scheduler's pass raises the owed ones; the notification's
-- key makes a repeat a no-op), `previous_user` keeps whom to tell besides the new
-- player, `approved_at` orders them. Applications approved before this migration count
-- as noticed.
ALTER TABLE seat_applications ADD COLUMN noticed boolean NOT NULL DEFAULT true;
ALTER TABLE seat_applications ADD COLUMN previous_user uuid;
ALTER TABLE seat_applications ADD COLUMN approved_at timestamptz;
CREATE INDEX seat_applications_owed ON seat_applications (approved_at, id)
    WHERE status = 'approved' AND NOT noticed;
