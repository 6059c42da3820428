-- The utilisation report by day (issue 24: a report's cost flat in the data). The report
-- read every booking starting in its range; it now reads these per-day sums, kept by the
-- triggers below in the same transaction as every write to bookings (the write path's
-- commands, the bus's handlers, the hold expiry alike). `townhall check` compares them
-- with the rows (design note 60).
--
-- A booking counts on its start's day in its facility's time zone, local_day, which SQL
-- cannot compute (it knows no zones): the store sets it on insert, the facility command
-- sets it again for every booking of a facility whose zone changes, and the module fills
-- it at start for the rows an older version wrote (before it serves; the triggers then
-- add those rows here). A row without local_day counts nowhere.
ALTER TABLE bookings ADD COLUMN local_day TEXT;
CREATE INDEX bookings_without_local_day ON bookings (id) WHERE local_day IS NULL;

-- A facility's day: confirmed bookings with their booked time (ms) and no-shows, and
-- cancellations by whom (expired: a hold the system cancelled, or no one recorded).
CREATE TABLE booking_days (
  facility_id          INTEGER NOT NULL,
  day                  TEXT    NOT NULL,  -- bookings.local_day
  bookings             INTEGER NOT NULL,
  booked_ms            INTEGER NOT NULL,
  no_shows             INTEGER NOT NULL,
  cancelled_by_citizen INTEGER NOT NULL,
  cancelled_by_staff   INTEGER NOT NULL,
  expired              INTEGER NOT NULL,
  PRIMARY KEY (facility_id, day)
) STRICT, WITHOUT ROWID;
-- Every facility's report reads a range of days.
CREATE INDEX booking_days_day ON booking_days (day);

CREATE TRIGGER bookings_report_insert AFTER INSERT ON bookings
WHEN NEW.local_day IS NOT NULL AND NEW.status IN ('confirmed', 'cancelled')
BEGIN
  INSERT INTO booking_days
  VALUES (NEW.facility_id, NEW.local_day, NEW.status = 'confirmed',
          CASE WHEN NEW.status = 'confirmed'
               THEN CAST(round((julianday(NEW.ends_at) - julianday(NEW.starts_at)) * 86400000.0) AS INTEGER)
               ELSE 0 END,
          NEW.status = 'confirmed' AND NEW.no_show_at IS NOT NULL,
          NEW.status = 'cancelled' AND NEW.cancelled_by IS 'citizen',
          NEW.status = 'cancelled' AND NEW.cancelled_by IS 'staff',
          NEW.status = 'cancelled' AND NEW.cancelled_by IS NOT 'citizen' AND NEW.cancelled_by IS NOT 'staff')
  ON CONFLICT DO UPDATE SET bookings = bookings + excluded.bookings, booked_ms = booked_ms + excluded.booked_ms,
                            no_shows = no_shows + excluded.no_shows,
                            cancelled_by_citizen = cancelled_by_citizen + excluded.cancelled_by_citizen,
                            cancelled_by_staff = cancelled_by_staff + excluded.cancelled_by_staff,
                            expired = expired + excluded.expired;
END;

CREATE TRIGGER bookings_report_update
AFTER UPDATE OF facility_id, local_day, status, starts_at, ends_at, cancelled_by, no_show_at ON bookings
WHEN OLD.facility_id IS NOT NEW.facility_id OR OLD.local_day IS NOT NEW.local_day OR OLD.status IS NOT NEW.status
     OR OLD.starts_at IS NOT NEW.starts_at OR OLD.ends_at IS NOT NEW.ends_at
     OR OLD.cancelled_by IS NOT NEW.cancelled_by OR OLD.no_show_at IS NOT NEW.no_show_at
BEGIN
  UPDATE booking_days
  SET bookings = bookings - (OLD.status = 'confirmed'),
      booked_ms = booked_ms - CASE WHEN OLD.status = 'confirmed'
                                   THEN CAST(round((julianday(OLD.ends_at) - julianday(OLD.starts_at)) * 86400000.0)
                                             AS INTEGER)
                                   ELSE 0 END,
      no_shows = no_shows - (OLD.status = 'confirmed' AND OLD.no_show_at IS NOT NULL),
      cancelled_by_citizen = cancelled_by_citizen - (OLD.status = 'cancelled' AND OLD.cancelled_by IS 'citizen'),
      cancelled_by_staff = cancelled_by_staff - (OLD.status = 'cancelled' AND OLD.cancelled_by IS 'staff'),
      expired = expired - (OLD.status = 'cancelled' AND OLD.cancelled_by IS NOT 'citizen'
                           AND OLD.cancelled_by IS NOT 'staff')
  WHERE facility_id = OLD.facility_id AND day = OLD.local_day AND OLD.status IN ('confirmed', 'cancelled');
  DELETE FROM booking_days
  WHERE facility_id = OLD.facility_id AND day = OLD.local_day
    AND bookings = 0 AND cancelled_by_citizen = 0 AND cancelled_by_staff = 0 AND expired = 0;
  INSERT INTO booking_days
  SELECT NEW.facility_id, NEW.local_day, NEW.status = 'confirmed',
         CASE WHEN NEW.status = 'confirmed'
              THEN CAST(round((julianday(NEW.ends_at) - julianday(NEW.starts_at)) * 86400000.0) AS INTEGER)
              ELSE 0 END,
         NEW.status = 'confirmed' AND NEW.no_show_at IS NOT NULL,
         NEW.status = 'cancelled' AND NEW.cancelled_by IS 'citizen',
         NEW.status = 'cancelled' AND NEW.cancelled_by IS 'staff',
         NEW.status = 'cancelled' AND NEW.cancelled_by IS NOT 'citizen' AND NEW.cancelled_by IS NOT 'staff'
  WHERE NEW.local_day IS NOT NULL AND NEW.status IN ('confirmed', 'cancelled')
  ON CONFLICT DO UPDATE SET bookings = bookings + excluded.bookings, booked_ms = booked_ms + excluded.booked_ms,
                            no_shows = no_shows + excluded.no_shows,
                            cancelled_by_citizen = cancelled_by_citizen + excluded.cancelled_by_citizen,
                            cancelled_by_staff = cancelled_by_staff + excluded.cancelled_by_staff,
                            expired = expired + excluded.expired;
END;

CREATE TRIGGER bookings_report_delete AFTER DELETE ON bookings
WHEN OLD.local_day IS NOT NULL AND OLD.status IN ('confirmed', 'cancelled')
BEGIN
  UPDATE booking_days
  SET bookings = bookings - (OLD.status = 'confirmed'),
      booked_ms = booked_ms - CASE WHEN OLD.status = 'confirmed'
                                   THEN CAST(round((julianday(OLD.ends_at) - julianday(OLD.starts_at)) * 86400000.0)
                                             AS INTEGER)
                                   ELSE 0 END,
      no_shows = no_shows - (OLD.status = 'confirmed' AND OLD.no_show_at IS NOT NULL),
      cancelled_by_citizen = cancelled_by_citizen - (OLD.status = 'cancelled' AND OLD.cancelled_by IS 'citizen'),
      cancelled_by_staff = cancelled_by_staff - (OLD.status = 'cancelled' AND OLD.cancelled_by IS 'staff'),
      expired = expired - (OLD.status = 'cancelled' AND OLD.cancelled_by IS NOT 'citizen'
                           AND OLD.cancelled_by IS NOT 'staff')
  WHERE facility_id = OLD.facility_id AND day = OLD.local_day;
  DELETE FROM booking_days
  WHERE facility_id = OLD.facility_id AND day = OLD.local_day
    AND bookings = 0 AND cancelled_by_citizen = 0 AND cancelled_by_staff = 0 AND expired = 0;
END;
