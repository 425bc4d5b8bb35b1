-- Health events gain the kind `turn_failed`: a turn call that timed out, errored or
-- answered garbage or an unexpected turn number.
ALTER TABLE health_events DROP CONSTRAINT health_events_kind_check;
ALTER TABLE health_events ADD CONSTRAINT health_events_kind_check CHECK (kind IN (
    'probe_failed', 'probe_recovered', 'inspect_unhealthy', 'container_disappeared',
    'turn_failed'));
