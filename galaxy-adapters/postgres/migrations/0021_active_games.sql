-- The active-games entitlement counts a user's pending seat applications too (an
-- application for an open seat makes its applicant active in the game): the count reads
-- them by user under the user's advisory lock.
CREATE INDEX seat_applications_pending_by_user ON seat_applications (user_id)
    WHERE status = 'pending';
