-- The revenue report by day (issue 24: a report's cost flat in the data). The report read
-- every payment completed or refunded in its range, joined to its invoice, and every open
-- invoice; it now reads these sums, kept by the triggers below in the same transaction as
-- every write to payments and invoices (the write path's commands, the bus's handlers,
-- the reconciler, the CLI alike), and filled here from an existing installation's rows.
-- `townhall check` compares them with the rows (design note 60).

-- Money by UTC day, the paid invoice's source and the currency: payments by the day they
-- completed (refunded ones too: they were received), refunds by the day they were made.
CREATE TABLE revenue_days (
  day            TEXT    NOT NULL,  -- substr(completed_at or refunded_at, 1, 10)
  source_module  TEXT    NOT NULL,
  source_type    TEXT    NOT NULL,
  currency       TEXT    NOT NULL,
  payments       INTEGER NOT NULL,
  paid_cents     INTEGER NOT NULL,
  refunds        INTEGER NOT NULL,
  refunded_cents INTEGER NOT NULL,
  PRIMARY KEY (day, source_module, source_type, currency)
) STRICT, WITHOUT ROWID;

-- What open invoices (overdue ones included) ask for now, by currency.
CREATE TABLE open_invoice_totals (
  currency         TEXT    NOT NULL PRIMARY KEY,
  invoices         INTEGER NOT NULL,
  amount_cents     INTEGER NOT NULL,
  overdue_invoices INTEGER NOT NULL,
  overdue_cents    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO revenue_days (day, source_module, source_type, currency, payments, paid_cents, refunds, refunded_cents)
SELECT day, source_module, source_type, currency, sum(payments), sum(paid_cents), sum(refunds), sum(refunded_cents)
FROM (SELECT substr(p.completed_at, 1, 10) AS day, i.source_module, i.source_type, p.currency, 1 AS payments,
             p.amount_cents AS paid_cents, 0 AS refunds, 0 AS refunded_cents
      FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE p.completed_at IS NOT NULL
      UNION ALL
      SELECT substr(p.refunded_at, 1, 10), i.source_module, i.source_type, p.currency, 0, 0, 1, p.amount_cents
      FROM payments p JOIN invoices i ON i.id = p.invoice_id WHERE p.refunded_at IS NOT NULL)
GROUP BY 1, 2, 3, 4;

INSERT INTO open_invoice_totals (currency, invoices, amount_cents, overdue_invoices, overdue_cents)
SELECT currency, count(*), sum(amount_cents), count(overdue_at),
       coalesce(sum(CASE WHEN overdue_at IS NOT NULL THEN amount_cents END), 0)
FROM invoices WHERE status = 'open' GROUP BY currency;

-- An invoice's source never changes (nothing updates it); the days' sums rely on it.
CREATE TRIGGER invoices_keep_their_source BEFORE UPDATE OF source_module, source_type ON invoices
WHEN OLD.source_module IS NOT NEW.source_module OR OLD.source_type IS NOT NEW.source_type
BEGIN
  SELECT RAISE(ABORT, 'an invoice keeps its source');
END;

-- A payment's money in and out: added for the new row, taken back for the old one. A day's
-- row whose counts fall to zero is removed.
CREATE TRIGGER payments_report_insert AFTER INSERT ON payments
BEGIN
  INSERT INTO revenue_days SELECT substr(NEW.completed_at, 1, 10), source_module, source_type, NEW.currency,
                                  1, NEW.amount_cents, 0, 0
  FROM invoices WHERE id = NEW.invoice_id AND NEW.completed_at IS NOT NULL
  ON CONFLICT DO UPDATE SET payments = payments + 1, paid_cents = paid_cents + excluded.paid_cents;
  INSERT INTO revenue_days SELECT substr(NEW.refunded_at, 1, 10), source_module, source_type, NEW.currency,
                                  0, 0, 1, NEW.amount_cents
  FROM invoices WHERE id = NEW.invoice_id AND NEW.refunded_at IS NOT NULL
  ON CONFLICT DO UPDATE SET refunds = refunds + 1, refunded_cents = refunded_cents + excluded.refunded_cents;
END;

CREATE TRIGGER payments_report_update
AFTER UPDATE OF completed_at, refunded_at, amount_cents, currency, invoice_id ON payments
WHEN OLD.completed_at IS NOT NEW.completed_at OR OLD.refunded_at IS NOT NEW.refunded_at
     OR OLD.amount_cents IS NOT NEW.amount_cents OR OLD.currency IS NOT NEW.currency
     OR OLD.invoice_id IS NOT NEW.invoice_id
BEGIN
  UPDATE revenue_days SET payments = payments - 1, paid_cents = paid_cents - OLD.amount_cents
  WHERE OLD.completed_at IS NOT NULL AND day = substr(OLD.completed_at, 1, 10) AND currency = OLD.currency
    AND (source_module, source_type) = (SELECT source_module, source_type FROM invoices WHERE id = OLD.invoice_id);
  UPDATE revenue_days SET refunds = refunds - 1, refunded_cents = refunded_cents - OLD.amount_cents
  WHERE OLD.refunded_at IS NOT NULL AND day = substr(OLD.refunded_at, 1, 10) AND currency = OLD.currency
    AND (source_module, source_type) = (SELECT source_module, source_type FROM invoices WHERE id = OLD.invoice_id);
  DELETE FROM revenue_days
  WHERE day IN (substr(OLD.completed_at, 1, 10), substr(OLD.refunded_at, 1, 10)) AND currency = OLD.currency
    AND (source_module, source_type) = (SELECT source_module, source_type FROM invoices WHERE id = OLD.invoice_id)
    AND payments = 0 AND refunds = 0;
  INSERT INTO revenue_days SELECT substr(NEW.completed_at, 1, 10), source_module, source_type, NEW.currency,
                                  1, NEW.amount_cents, 0, 0
  FROM invoices WHERE id = NEW.invoice_id AND NEW.completed_at IS NOT NULL
  ON CONFLICT DO UPDATE SET payments = payments + 1, paid_cents = paid_cents + excluded.paid_cents;
  INSERT INTO revenue_days SELECT substr(NEW.refunded_at, 1, 10), source_module, source_type, NEW.currency,
                                  0, 0, 1, NEW.amount_cents
  FROM invoices WHERE id = NEW.invoice_id AND NEW.refunded_at IS NOT NULL
  ON CONFLICT DO UPDATE SET refunds = refunds + 1, refunded_cents = refunded_cents + excluded.refunded_cents;
END;

CREATE TRIGGER payments_report_delete AFTER DELETE ON payments
BEGIN
  UPDATE revenue_days SET payments = payments - 1, paid_cents = paid_cents - OLD.amount_cents
  WHERE OLD.completed_at IS NOT NULL AND day = substr(OLD.completed_at, 1, 10) AND currency = OLD.currency
    AND (source_module, source_type) = (SELECT source_module, source_type FROM invoices WHERE id = OLD.invoice_id);
  UPDATE revenue_days SET refunds = refunds - 1, refunded_cents = refunded_cents - OLD.amount_cents
  WHERE OLD.refunded_at IS NOT NULL AND day = substr(OLD.refunded_at, 1, 10) AND currency = OLD.currency
    AND (source_module, source_type) = (SELECT source_module, source_type FROM invoices WHERE id = OLD.invoice_id);
  DELETE FROM revenue_days
  WHERE day IN (substr(OLD.completed_at, 1, 10), substr(OLD.refunded_at, 1, 10)) AND currency = OLD.currency
    AND (source_module, source_type) = (SELECT source_module, source_type FROM invoices WHERE id = OLD.invoice_id)
    AND payments = 0 AND refunds = 0;
END;

-- An invoice counts in open_invoice_totals while its status is open.
CREATE TRIGGER invoices_report_insert AFTER INSERT ON invoices WHEN NEW.status = 'open'
BEGIN
  INSERT INTO open_invoice_totals VALUES (NEW.currency, 1, NEW.amount_cents, NEW.overdue_at IS NOT NULL,
                                          CASE WHEN NEW.overdue_at IS NOT NULL THEN NEW.amount_cents ELSE 0 END)
  ON CONFLICT DO UPDATE SET invoices = invoices + 1, amount_cents = amount_cents + excluded.amount_cents,
                            overdue_invoices = overdue_invoices + excluded.overdue_invoices,
                            overdue_cents = overdue_cents + excluded.overdue_cents;
END;

CREATE TRIGGER invoices_report_update AFTER UPDATE OF status, amount_cents, currency, overdue_at ON invoices
WHEN (OLD.status = 'open' OR NEW.status = 'open')
     AND (OLD.status IS NOT NEW.status OR OLD.amount_cents IS NOT NEW.amount_cents
          OR OLD.currency IS NOT NEW.currency OR (OLD.overdue_at IS NULL) IS NOT (NEW.overdue_at IS NULL))
BEGIN
  UPDATE open_invoice_totals SET invoices = invoices - 1, amount_cents = amount_cents - OLD.amount_cents,
                                 overdue_invoices = overdue_invoices - (OLD.overdue_at IS NOT NULL),
                                 overdue_cents = overdue_cents - CASE WHEN OLD.overdue_at IS NOT NULL
                                                                      THEN OLD.amount_cents ELSE 0 END
  WHERE OLD.status = 'open' AND currency = OLD.currency;
  DELETE FROM open_invoice_totals WHERE OLD.status = 'open' AND currency = OLD.currency AND invoices = 0;
  INSERT INTO open_invoice_totals SELECT NEW.currency, 1, NEW.amount_cents, NEW.overdue_at IS NOT NULL,
                                         CASE WHEN NEW.overdue_at IS NOT NULL THEN NEW.amount_cents ELSE 0 END
  WHERE NEW.status = 'open'
  ON CONFLICT DO UPDATE SET invoices = invoices + 1, amount_cents = amount_cents + excluded.amount_cents,
                            overdue_invoices = overdue_invoices + excluded.overdue_invoices,
                            overdue_cents = overdue_cents + excluded.overdue_cents;
END;

CREATE TRIGGER invoices_report_delete AFTER DELETE ON invoices WHEN OLD.status = 'open'
BEGIN
  UPDATE open_invoice_totals SET invoices = invoices - 1, amount_cents = amount_cents - OLD.amount_cents,
                                 overdue_invoices = overdue_invoices - (OLD.overdue_at IS NOT NULL),
                                 overdue_cents = overdue_cents - CASE WHEN OLD.overdue_at IS NOT NULL
                                                                      THEN OLD.amount_cents ELSE 0 END
  WHERE currency = OLD.currency;
  DELETE FROM open_invoice_totals WHERE currency = OLD.currency AND invoices = 0;
END;
