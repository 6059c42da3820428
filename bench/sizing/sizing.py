#!/usr/bin/env python3
"""How much disk and memory a year of a small municipality's use takes (README "Sizing").

Starts a release `townhall serve --demo` on a loopback port with a temporary data
directory (rate limit off), then, from 4 client threads: N citizens register and sign in;
each submits two renovation applications (fee 50.00) and pays both; each books two
one-hour slots of the demo's priced tennis court and pays both. Waits until the bus has
applied everything (every application under review, every booking confirmed), stops the
server with SIGTERM, and reports per file: its size, the rows it holds and its size once
the outbox (events kept for bus.retention_hours, 7 days) is emptied and the file
vacuumed; the server's RSS idle and at its peak; a `townhall backup`'s size.

usage: bench/sizing/sizing.py BINARY [--citizens N] [--config FILE]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo


class Client:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, token=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        conn.request(method, path, None if body is None else json.dumps(body), h)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, (json.loads(data) if data else None)

    def ok(self, method, path, body=None, token=None, headers=None, expect=(200, 201)):
        status, data = self.call(method, path, body, token, headers)
        if status not in expect:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_until(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError("timed out waiting for " + what)


def file_report(path):
    db = sqlite3.connect(path)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
    rows = {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    db.close()
    copy = path + ".sizing"
    shutil.copy(path, copy)
    db = sqlite3.connect(copy)
    if "outbox" in tables:
        db.execute("DELETE FROM outbox")
        db.commit()
    db.execute("VACUUM")
    db.close()
    without_events = os.path.getsize(copy)
    os.remove(copy)
    return os.path.getsize(path), without_events, rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "../../config/townhall.json"))
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="townhall-sizing-")
    data = os.path.join(work, "data")
    registry = json.load(open(args.config))
    registry["server"]["rate_limit"]["enabled"] = False
    registry["logging"] = {"level": "warn", "access_log": "off"}
    config = os.path.join(work, "townhall.json")
    json.dump(registry, open(config, "w"))

    server = subprocess.Popen([args.binary, "serve", "--demo", "--config", config, "--data-dir", data, "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = None
    for line in server.stdout:
        if line.startswith("townhall listening on"):
            port = int(line.rsplit(":", 1)[1])
            break
    if port is None:
        raise RuntimeError("the server did not start")
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    client = Client(port)
    time.sleep(1)
    idle_rss = rss_kib(server.pid)
    peak_rss = [idle_rss]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak_rss[0] = max(peak_rss[0], rss_kib(server.pid))
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()

    court = next(f for f in client.ok("GET", "/api/v1/parks/facilities")["items"] if f["hourly_price_cents"] > 0)
    zone = ZoneInfo(court["time_zone"])
    first_day = (datetime.now(zone) + timedelta(days=2)).date()
    started = time.monotonic()
    applications, bookings = [], []
    lock = threading.Lock()

    def citizen(i):
        email = f"sizing{i}@example.org"
        password = "sizing password 1"
        client.ok("POST", "/api/v1/auth/register",
                  {"email": email, "password": password, "name": f"Citizen {i}", "phone": "+1-555-0100",
                   "address": f"{i} Main Street", "city": "Springfield", "postal_code": "12345"})
        token = client.ok("POST", "/api/v1/auth/login", {"email": email, "password": password})["token"]
        mine = []
        for n in range(2):
            app = client.ok("POST", "/api/v1/permits/applications",
                            {"permit_type": "renovation", "description": f"Kitchen renovation {n}",
                             "property_address": f"{i} Main Street", "department_code": "BLD"}, token)
            mine.append(("application", app["id"]))
        for n in range(2):
            slot = 2 * i + n  # 12 one-hour slots a day, 08:00-20:00 in the court's zone
            day = first_day + timedelta(days=slot // 12)
            start = datetime(day.year, day.month, day.day, 8 + slot % 12, tzinfo=zone)
            booking = client.ok("POST", "/api/v1/parks/bookings",
                                {"facility_id": court["id"], "starts_at": start.isoformat(),
                                 "ends_at": (start + timedelta(hours=1)).isoformat()}, token)
            mine.append(("booking", booking["id"]))
        paid = 0
        deadline = time.monotonic() + 60
        while paid < 4 and time.monotonic() < deadline:
            for invoice in client.ok("GET", "/api/v1/revenue/invoices?status=open", token=token)["items"]:
                client.ok("POST", "/api/v1/revenue/payments",
                          {"invoice_id": invoice["id"], "amount_cents": invoice["amount_cents"],
                           "currency": invoice["currency"], "method": {"type": "card", "token": "tok_ok"}},
                          token, {"Idempotency-Key": str(uuid.uuid4())})
                paid += 1
            if paid < 4:
                time.sleep(0.05)
        if paid < 4:
            raise RuntimeError(f"citizen {i}: only {paid} invoices appeared")
        with lock:
            for kind, ident in mine:
                (applications if kind == "application" else bookings).append((token, ident))

    errors = []

    def worker(indices):
        try:
            for i in indices:
                citizen(i)
        except Exception as error:  # report, do not hang
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(range(t, args.citizens, 4),)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]

    def settled():
        return all(client.ok("GET", f"/api/v1/permits/applications/{a}", token=t)["status"] == "under_review"
                   for t, a in applications) and \
            all(client.ok("GET", f"/api/v1/parks/bookings/{b}", token=t)["status"] == "confirmed" for t, b in bookings)

    wait_until(settled, 120, "the sagas to finish")
    elapsed = time.monotonic() - started
    done.set()

    backup = os.path.join(work, "backup")
    subprocess.run([args.binary, "backup", "--config", config, "--data-dir", data, "--out", backup], check=True,
                   stdout=subprocess.DEVNULL)
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)

    print(f"{args.citizens} citizens, {len(applications)} paid applications, {len(bookings)} paid bookings "
          f"in {elapsed:.0f} s")
    print(f"RSS: {idle_rss / 1024:.1f} MiB idle after start, {peak_rss[0] / 1024:.1f} MiB peak")
    total = total_without = 0
    for name in sorted(os.listdir(data)):
        path = os.path.join(data, name)
        if not name.endswith(".db"):
            print(f"{name}: {os.path.getsize(path)} bytes")
            continue
        size, without_events, rows = file_report(path)
        total += size
        total_without += without_events
        interesting = {t: n for t, n in rows.items() if n and t not in ("schema_migrations",)}
        print(f"{name}: {size / 1024:.0f} KiB, {without_events / 1024:.0f} KiB without its outbox; rows {interesting}")
    backup_bytes = sum(os.path.getsize(os.path.join(backup, f)) for f in os.listdir(backup))
    print(f"all .db files: {total / 1024:.0f} KiB ({total_without / 1024:.0f} KiB once the outbox is pruned); "
          f"backup {backup_bytes / 1024:.0f} KiB")
    shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
