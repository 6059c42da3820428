// Parks for citizens: facilities with a week of free and taken slots in the facility's
// time zone (GET .../availability), booking one, paying within the hold (a countdown),
// cancelling (the refund shown); programs with enrolment and the waitlist position.
import { api, listAll } from "./api.js";
import { details, errorSlot, h } from "./dom.js";
import { date, dateTime, money, t } from "./i18n.js";
import { openInvoiceFor, payForm } from "./pages-permits.js";

const dayFormat = (day, zone) => date(`${day}`, zone);

function shiftDay(day, days) {
  const moment = new Date(`${day}T12:00:00Z`);
  moment.setUTCDate(moment.getUTCDate() + days);
  return moment.toISOString().slice(0, 10);
}

function price(cents, currency, perHour) {
  if (!cents) return t("permits.free");
  return perHour ? t("parks.per_hour", { amount: money(cents, currency) }) : money(cents, currency);
}

async function parks(ctx) {
  ctx.frame(t("parks.title"));
  const citizen = ctx.session?.principal.kind === "citizen";
  const [facilities, programs, mine] = await Promise.all([
    listAll("/api/v1/parks/facilities"),
    listAll("/api/v1/parks/programs"),
    citizen ? listAll("/api/v1/parks/enrollments") : [],
  ]);
  if (!ctx.current()) return;
  ctx.main.append(
    h(
      "section",
      { "aria-labelledby": "facilities-heading" },
      h("h2", { id: "facilities-heading" }, t("parks.facilities")),
      h(
        "ul",
        { class: "cards", id: "facilities" },
        facilities.map((facility) =>
          h(
            "li",
            { "data-facility": facility.id },
            h("a", { href: `#/parks/facilities/${facility.id}` }, h("strong", {}, facility.name)),
            h("p", {}, `${facility.kind} — ${price(facility.hourly_price_cents, facility.currency, true)}`),
          ),
        ),
      ),
    ),
    h(
      "section",
      { "aria-labelledby": "programs-heading" },
      h("h2", { id: "programs-heading" }, t("parks.programs")),
      h("ul", { class: "cards", id: "programs" }, programs.map((program) => programCard(ctx, program, citizen))),
    ),
    ...(citizen ? [myEnrollments(mine, programs)] : []),
    citizen ? h("p", {}, h("a", { href: "#/parks/bookings" }, t("parks.my_bookings"))) : h("p", {}, h("a", { href: "#/sign-in?next=%2Fparks" }, t("parks.sign_in_to_book"))),
  );
}

// The citizen's own enrolments (cancelled ones left out), each with its state.
function myEnrollments(mine, programs) {
  const names = Object.fromEntries(programs.map((program) => [program.id, program.name]));
  const active = mine.filter((enrollment) => enrollment.status !== "cancelled");
  return h(
    "section",
    { "aria-labelledby": "my-enrollments-heading" },
    h("h2", { id: "my-enrollments-heading" }, t("parks.my_enrollments")),
    active.length
      ? h(
          "ul",
          { class: "list", id: "my-enrollments" },
          active.map((enrollment) =>
            h(
              "li",
              { "data-enrollment": enrollment.id },
              h("a", { href: `#/parks/enrollments/${enrollment.id}` }, names[enrollment.program_id] || t("parks.enrollment_title", { id: enrollment.id })),
              ` — ${enrollment.status === "waitlisted" ? t("parks.waitlist_position", { position: enrollment.waitlist_position }) : t(`parks.enrollment_${enrollment.status}`)}`,
            ),
          ),
        )
      : h("p", {}, t("parks.no_enrollments")),
  );
}

function programCard(ctx, program, citizen) {
  const free = Math.max(0, program.capacity - program.enrolled - program.held);
  const slot = errorSlot(`program-${program.id}-error`);
  const card = h(
    "li",
    { "data-program": program.id },
    h("strong", {}, program.name),
    h("p", {}, `${program.schedule} — ${price(program.price_cents, program.currency, false)}`),
    h("p", {}, free ? t("parks.places_left", { count: free }) : t("parks.full", { count: program.waitlisted })),
  );
  if (citizen) {
    const button = h("button", { type: "button" }, free ? t("parks.enrol") : t("parks.join_waitlist"));
    button.addEventListener("click", async () => {
      button.disabled = true;
      slot.textContent = "";
      try {
        const enrollment = await api("POST", `/api/v1/parks/programs/${program.id}/enrollments`, {});
        ctx.navigate(`#/parks/enrollments/${enrollment.id}`);
      } catch (error) {
        slot.textContent = error.message;
        button.disabled = false;
      }
    });
    card.append(h("div", { class: "actions" }, button, slot));
  }
  return card;
}

async function week(ctx) {
  const id = ctx.match[1];
  const facility = await api("GET", `/api/v1/parks/facilities/${id}`);
  ctx.frame(facility.name);
  const from = ctx.query.get("from");
  const availability = await api("GET", `/api/v1/parks/facilities/${id}/availability?days=7${from ? `&from=${from}` : ""}`);
  if (!ctx.current()) return;
  const zone = availability.time_zone;
  const citizen = ctx.session?.principal.kind === "citizen";
  const slot = errorSlot("book-error");
  const book = async (button, start, end) => {
    slot.textContent = "";
    button.disabled = true;
    try {
      const booking = await api("POST", "/api/v1/parks/bookings", { facility_id: Number(id), starts_at: start, ends_at: end });
      ctx.navigate(`#/parks/bookings/${booking.id}`);
    } catch (error) {
      slot.textContent = error.message;
      button.disabled = false;
    }
  };
  const first = availability.from;
  ctx.main.append(
    h("p", {}, `${facility.kind} — ${price(facility.hourly_price_cents, facility.currency, true)}`),
    h("p", { class: "hint" }, t("parks.zone_note", { zone })),
    ...(citizen ? [] : [h("p", {}, h("a", { href: `#/sign-in?next=${encodeURIComponent(`/parks/facilities/${id}`)}` }, t("parks.sign_in_to_book")))]),
    h(
      "nav",
      { class: "pager", "aria-label": t("parks.weeks") },
      h("a", { href: `#/parks/facilities/${id}?from=${shiftDay(first, -7)}` }, t("parks.previous_week")),
      h("a", { href: `#/parks/facilities/${id}?from=${shiftDay(first, 7)}` }, t("parks.next_week")),
    ),
    slot,
  );
  const days = h("div", { class: "week", id: "week" });
  for (const day of availability.days) {
    const headingId = `day-${day.date}`;
    days.append(
      h(
        "section",
        { class: "day", "aria-labelledby": headingId },
        h("h2", { id: headingId }, dayFormat(day.date, zone)),
        day.slots.length === 0
          ? h("p", {}, t("parks.closed"))
          : h(
              "ul",
              { class: "slots" },
              day.slots.map((entry) => {
                if (entry.state === "free" && citizen) {
                  const button = h("button", { type: "button", class: "slot free", "data-start": entry.start, "aria-label": t("parks.book_at", { time: entry.local_start, day: dayFormat(day.date, zone) }) }, entry.local_start);
                  button.addEventListener("click", () => book(button, entry.start, entry.end));
                  return h("li", {}, button);
                }
                return h("li", {}, h("span", { class: `slot ${entry.state}`, "data-start": entry.start }, `${entry.local_start} ${t(`parks.slot_${entry.state}`)}`));
              }),
            ),
      ),
    );
  }
  ctx.main.append(days);
}

async function bookings(ctx) {
  ctx.frame(t("parks.my_bookings"));
  const [mine, facilities] = await Promise.all([listAll("/api/v1/parks/bookings"), listAll("/api/v1/parks/facilities")]);
  if (!ctx.current()) return;
  const names = Object.fromEntries(facilities.map((facility) => [facility.id, facility]));
  ctx.main.append(
    mine.length
      ? h(
          "ul",
          { class: "list", id: "bookings" },
          mine.map((booking) =>
            h("li", {}, h("a", { href: `#/parks/bookings/${booking.id}` }, `${names[booking.facility_id]?.name || booking.facility_id} — ${dateTime(booking.starts_at, names[booking.facility_id]?.time_zone)}`), ` — ${t(`parks.booking_${booking.status}`)}`),
          ),
        )
      : h("p", {}, t("parks.no_bookings")),
  );
}

// Until `deadline`: a visible countdown (role=timer, not read out every second) that
// stops when the page changes.
function countdown(ctx, deadline) {
  const timer = h("span", { role: "timer", id: "countdown" });
  const tick = () => {
    const left = Math.max(0, Date.parse(deadline) - Date.now());
    const minutes = Math.floor(left / 60000);
    const seconds = String(Math.floor((left % 60000) / 1000)).padStart(2, "0");
    timer.textContent = `${minutes}:${seconds}`;
    return left > 0 && ctx.current();
  };
  tick();
  const interval = setInterval(() => {
    if (!tick()) clearInterval(interval);
  }, 1000);
  return timer;
}

// A held place (booking or enrolment): the hold's countdown and the pay form of its invoice.
async function holdSection(ctx, type, place, zone) {
  const section = h("section", { "aria-labelledby": "pay-heading" }, h("h2", { id: "pay-heading" }, t("pay.title")));
  section.append(h("p", {}, t("parks.hold", { time: dateTime(place.hold_expires_at, zone) }), " ", t("parks.time_left"), " ", countdown(ctx, place.hold_expires_at)));
  const invoice = await openInvoiceFor(ctx, section, "parks", type, place.id);
  if (invoice)
    section.append(
      payForm(ctx, invoice, async (payment) => {
        section.replaceChildren(h("h2", { id: "pay-heading" }, t("pay.title")), h("p", { role: "status", id: "paid" }, t("pay.done", { amount: money(payment.amount_cents, payment.currency) }), " ", h("a", { href: `#/receipts/${payment.id}` }, t("pay.receipt"))));
      }),
    );
  return section;
}

function cancelButton(ctx, path, after) {
  const slot = errorSlot("cancel-error");
  const button = h("button", { type: "button", class: "secondary", id: "cancel" }, t("parks.cancel"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    slot.textContent = "";
    try {
      after(await api("DELETE", path));
    } catch (error) {
      slot.textContent = error.message;
      button.disabled = false;
    }
  });
  return h("div", { class: "actions" }, button, slot);
}

function refundText(place) {
  if (place.refund === "full") return t("parks.refund_full", { amount: money(place.amount_cents, place.currency) });
  if (place.refund === "none") return t("parks.refund_none");
  return t("parks.cancelled_unpaid");
}

async function booking(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("parks.booking_title", { id }));
  const place = await api("GET", `/api/v1/parks/bookings/${id}`);
  const facility = await api("GET", `/api/v1/parks/facilities/${place.facility_id}`);
  if (!ctx.current()) return;
  const zone = facility.time_zone;
  const status = h("strong", { id: "booking-status" }, t(`parks.booking_${place.status}`));
  ctx.main.append(
    details([
      [t("parks.facility"), facility.name],
      [t("parks.when"), `${dateTime(place.starts_at, zone)} – ${dateTime(place.ends_at, zone)}`],
      [t("application.status"), status],
      [t("receipt.amount"), price(place.amount_cents, place.currency, false)],
    ]),
    h("p", { class: "hint" }, t("parks.zone_note", { zone })),
  );
  if (place.status === "cancelled") {
    ctx.main.append(h("p", { id: "refund" }, refundText(place)));
    return;
  }
  if (place.status === "pending_payment") ctx.main.append(await holdSection(ctx, "booking", place, zone));
  if (!ctx.current()) return;
  ctx.main.append(
    cancelButton(ctx, `/api/v1/parks/bookings/${id}`, (cancelled) => {
      status.textContent = t(`parks.booking_${cancelled.status}`);
      document.getElementById("pay-heading")?.parentElement.remove();
      document.getElementById("cancel").parentElement.replaceWith(h("p", { id: "refund", role: "status" }, refundText(cancelled)));
    }),
  );
}

async function enrollment(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("parks.enrollment_title", { id }));
  const place = await api("GET", `/api/v1/parks/enrollments/${id}`);
  const program = await api("GET", `/api/v1/parks/programs/${place.program_id}`);
  if (!ctx.current()) return;
  const status = h("strong", { id: "enrollment-status" }, t(`parks.enrollment_${place.status}`));
  ctx.main.append(
    details([
      [t("parks.program"), program.name],
      [t("parks.schedule"), program.schedule],
      [t("application.status"), status],
      place.status === "waitlisted" ? [t("parks.position"), h("span", { id: "position" }, String(place.waitlist_position))] : null,
      [t("receipt.amount"), price(place.amount_cents, place.currency, false)],
    ]),
  );
  if (place.status === "cancelled") {
    ctx.main.append(h("p", { id: "refund" }, refundText(place)));
    return;
  }
  if (place.status === "pending_payment") ctx.main.append(await holdSection(ctx, "enrollment", place));
  if (!ctx.current()) return;
  ctx.main.append(
    cancelButton(ctx, `/api/v1/parks/enrollments/${id}`, (cancelled) => {
      status.textContent = t(`parks.enrollment_${cancelled.status}`);
      document.getElementById("pay-heading")?.parentElement.remove();
      document.getElementById("cancel").parentElement.replaceWith(h("p", { id: "refund", role: "status" }, refundText(cancelled)));
    }),
  );
}

export const parksRoutes = [
  { path: /^\/parks$/, access: "public", view: parks },
  { path: /^\/parks\/facilities\/(\d+)$/, access: "public", view: week },
  { path: /^\/parks\/bookings$/, access: "citizen", view: bookings },
  { path: /^\/parks\/bookings\/(\d+)$/, access: "citizen", view: booking },
  { path: /^\/parks\/enrollments\/(\d+)$/, access: "citizen", view: enrollment },
];
