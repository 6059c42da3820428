-- Reports (issue 26.3): parks staff mark a confirmed booking nobody came to, once its
-- start has passed. The booking stays confirmed (the slot was taken); the mark says who
-- and when.
ALTER TABLE bookings ADD COLUMN no_show_at TEXT;
ALTER TABLE bookings ADD COLUMN no_show_by INTEGER;
