-- Keyset pagination (issue 24 §1): the bookings list is read in (starts_at, id) order,
-- whole or by facility, through an index in that order (bookings_facility leaves out
-- cancelled bookings, which the list shows). A citizen's list is served by bookings_citizen.
CREATE INDEX bookings_starts ON bookings (starts_at, id);
CREATE INDEX bookings_facility_starts ON bookings (facility_id, starts_at, id);
CREATE INDEX bookings_citizen_starts ON bookings (citizen_id, starts_at, id);
