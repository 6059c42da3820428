// Parks staff's pages (shown to parks:manage; the server decides again on every call):
// a facility's bookings with cancel and refund, facilities and their opening hours,
// programs and their enrolments.
import { api, listAll } from "./api.js";
import { details, errorSlot, field, h } from "./dom.js";
import { currentLanguage, dateTime, money, t } from "./i18n.js";
import { onSubmit } from "./pages-account.js";

const yesNo = (value) => t(value ? "staff.yes" : "staff.no");

export async function parkBookings(ctx) {
  ctx.frame(t("staff.bookings.title"));
  const facilities = await listAll("/api/v1/parks/facilities");
  if (!ctx.current()) return;
  const chosen = ctx.query.get("facility") || String(facilities[0]?.id || "");
  const picker = h("select", { id: "facility" }, facilities.map((facility) => h("option", { value: facility.id, selected: String(facility.id) === chosen }, facility.name)));
  picker.addEventListener("change", () => ctx.navigate(`#/staff/bookings?facility=${picker.value}`));
  ctx.main.append(h("div", { class: "field" }, h("label", { for: "facility" }, t("parks.facility")), picker));
  if (!chosen) return;
  const zone = facilities.find((facility) => String(facility.id) === chosen)?.time_zone;
  const list = await listAll(`/api/v1/parks/bookings?facility_id=${chosen}`);
  if (!ctx.current()) return;
  const active = list.filter((booking) => booking.status !== "cancelled");
  if (!active.length) {
    ctx.main.append(h("p", {}, t("staff.bookings.none")));
    return;
  }
  ctx.main.append(
    h(
      "ul",
      { class: "list", id: "facility-bookings" },
      active.map((booking) => {
        const slot = errorSlot(`booking-${booking.id}-error`);
        const cancel = h("button", { type: "button", class: "secondary" }, t("staff.bookings.cancel_refund"));
        cancel.addEventListener("click", async () => {
          cancel.disabled = true;
          try {
            const body = booking.payment_id ? { refund: true, reason: t("staff.bookings.reason") } : undefined;
            await api("DELETE", `/api/v1/parks/bookings/${booking.id}`, body);
            ctx.navigate(`#/staff/bookings?facility=${chosen}`);
          } catch (error) {
            slot.textContent = error.message;
            cancel.disabled = false;
          }
        });
        return h("li", { "data-booking": booking.id }, `${dateTime(booking.starts_at, zone)} — ${t(`parks.booking_${booking.status}`)} — ${t("staff.citizen")} ${booking.citizen_id}`, h("div", { class: "actions" }, cancel, slot));
      }),
    ),
  );
}

const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
// The weekday's name in the page's language (2024-01-01 was a Monday).
const weekdayName = (index) => new Intl.DateTimeFormat(currentLanguage(), { weekday: "long", timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, 1 + index)));

export async function facilities(ctx) {
  ctx.frame(t("staff.facilities.title"));
  const all = await listAll("/api/v1/parks/facilities");
  if (!ctx.current()) return;
  ctx.main.append(
    h(
      "table",
      { id: "staff-facilities" },
      h("caption", {}, t("staff.facilities.caption")),
      h("thead", {}, h("tr", {}, [t("parks.facility"), t("staff.facilities.kind"), t("staff.facilities.price"), t("staff.facilities.zone"), t("staff.facilities.active")].map((heading) => h("th", { scope: "col" }, heading)))),
      h(
        "tbody",
        {},
        all.map((facility) =>
          h(
            "tr",
            { "data-facility": facility.id },
            h("th", { scope: "row" }, h("a", { href: `#/staff/facilities/${facility.id}` }, facility.name)),
            h("td", {}, facility.kind),
            h("td", { class: "num" }, facility.hourly_price_cents ? money(facility.hourly_price_cents, facility.currency) : t("permits.free")),
            h("td", {}, facility.time_zone),
            h("td", {}, yesNo(facility.is_active)),
          ),
        ),
      ),
    ),
  );
}

// A facility's opening hours, one line per weekday in its own zone; a day left empty is closed.
export async function facilityHours(ctx) {
  const id = ctx.match[1];
  const facility = await api("GET", `/api/v1/parks/facilities/${id}`);
  if (!ctx.current()) return;
  ctx.frame(facility.name);
  const slot = errorSlot("hours-error");
  const saved = h("p", { role: "status", id: "hours-saved" });
  const days = WEEKDAYS.map((day, index) => {
    const hours = facility.opening_hours[day] || {};
    return h(
      "fieldset",
      { class: "day-hours", "data-day": day },
      h("legend", {}, weekdayName(index)),
      h(
        "div",
        { class: "pair" },
        field({ id: `${day}-open`, label: t("staff.facilities.opens"), value: hours.open || "", attributes: { inputmode: "numeric", autocomplete: "off", size: "5" } }),
        field({ id: `${day}-close`, label: t("staff.facilities.closes"), value: hours.close || "", attributes: { inputmode: "numeric", autocomplete: "off", size: "5" } }),
      ),
    );
  });
  const form = h(
    "form",
    { id: "hours-form", novalidate: true },
    h("p", { class: "hint" }, t("staff.facilities.hours_hint", { zone: facility.time_zone })),
    days,
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("staff.facilities.save")), slot),
    saved,
  );
  onSubmit(form, slot, async (values) => {
    saved.textContent = "";
    const opening_hours = {};
    for (const day of WEEKDAYS) {
      const open = values[`${day}-open`].trim(), close = values[`${day}-close`].trim();
      if (open || close) opening_hours[day] = { open, close };
    }
    await api("PATCH", `/api/v1/parks/facilities/${id}`, { opening_hours });
    saved.textContent = t("staff.facilities.saved");
  });
  ctx.main.append(
    details([
      [t("staff.facilities.kind"), facility.kind],
      [t("staff.facilities.price"), facility.hourly_price_cents ? money(facility.hourly_price_cents, facility.currency) : t("permits.free")],
      [t("staff.facilities.zone"), facility.time_zone],
    ]),
    h("h2", {}, t("staff.facilities.hours")),
    form,
  );
}

export async function programs(ctx) {
  ctx.frame(t("staff.programs.title"));
  const all = await listAll("/api/v1/parks/programs");
  if (!ctx.current()) return;
  ctx.main.append(
    all.length
      ? h(
          "table",
          { id: "staff-programs" },
          h("caption", {}, t("staff.programs.caption")),
          h("thead", {}, h("tr", {}, [t("parks.program"), t("parks.schedule"), t("staff.programs.capacity"), t("parks.enrollment_enrolled"), t("staff.programs.held"), t("parks.enrollment_waitlisted")].map((heading) => h("th", { scope: "col" }, heading)))),
          h(
            "tbody",
            {},
            all.map((program) =>
              h(
                "tr",
                { "data-program": program.id },
                h("th", { scope: "row" }, h("a", { href: `#/staff/programs/${program.id}` }, program.name)),
                h("td", {}, program.schedule),
                h("td", { class: "num" }, String(program.capacity)),
                h("td", { class: "num" }, String(program.enrolled)),
                h("td", { class: "num" }, String(program.held)),
                h("td", { class: "num" }, String(program.waitlisted)),
              ),
            ),
          ),
        )
      : h("p", {}, t("staff.programs.none")),
    newProgramForm(ctx),
  );
}

// A new program: free, or priced with its first meeting (a priced place's refund
// deadline counts from it). Created, it opens on its enrolments page.
function newProgramForm(ctx) {
  const slot = errorSlot("program-error");
  const form = h(
    "form",
    { id: "program-form", novalidate: true },
    h("h2", {}, t("staff.programs.new")),
    field({ id: "program-name", label: t("parks.program"), required: true }),
    field({ id: "program-schedule", label: t("parks.schedule"), required: true, hint: t("staff.programs.schedule_hint") }),
    field({ id: "program-capacity", label: t("staff.programs.capacity"), type: "number", required: true, value: "10", attributes: { min: "1", step: "1" } }),
    field({ id: "program-price", label: t("staff.programs.price"), type: "number", value: "0", hint: t("staff.programs.price_hint"), attributes: { min: "0", step: "0.01" } }),
    field({ id: "program-starts", label: t("staff.programs.starts_at"), type: "datetime-local", hint: t("staff.programs.starts_hint") }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("staff.programs.create")), slot),
  );
  onSubmit(form, slot, async (values) => {
    const body = {
      name: values["program-name"],
      schedule: values["program-schedule"],
      capacity: Number(values["program-capacity"]),
      price_cents: Math.round(Number(values["program-price"] || 0) * 100),
    };
    // The browser's local time, sent as an instant.
    if (values["program-starts"]) body.starts_at = new Date(values["program-starts"]).toISOString();
    const program = await api("POST", "/api/v1/parks/programs", body);
    ctx.navigate(`#/staff/programs/${program.id}`);
  });
  return form;
}

export async function programEnrollments(ctx) {
  const id = ctx.match[1];
  const [program, enrollments] = await Promise.all([api("GET", `/api/v1/parks/programs/${id}`), listAll(`/api/v1/parks/enrollments?program_id=${id}`)]);
  if (!ctx.current()) return;
  ctx.frame(program.name);
  ctx.main.append(
    details([
      [t("parks.schedule"), program.schedule],
      [t("staff.programs.capacity"), String(program.capacity)],
      [t("receipt.amount"), program.price_cents ? money(program.price_cents, program.currency) : t("permits.free")],
    ]),
    h("h2", {}, t("staff.programs.enrollments")),
    enrollments.length
      ? h(
          "table",
          { id: "program-enrollments" },
          h("caption", {}, t("staff.programs.enrollments_caption")),
          h("thead", {}, h("tr", {}, [t("staff.programs.enrollment"), t("staff.citizen"), t("application.status"), t("application.submitted")].map((heading) => h("th", { scope: "col" }, heading)))),
          h(
            "tbody",
            {},
            enrollments.map((enrollment) =>
              h(
                "tr",
                { "data-enrollment": enrollment.id },
                h("th", { scope: "row" }, String(enrollment.id)),
                h("td", {}, String(enrollment.citizen_id)),
                h("td", {}, enrollment.status === "waitlisted" ? t("staff.programs.waitlisted_at", { position: enrollment.waitlist_position }) : t(`parks.enrollment_${enrollment.status}`)),
                h("td", {}, dateTime(enrollment.created_at)),
              ),
            ),
          ),
        )
      : h("p", {}, t("staff.programs.no_enrollments")),
  );
}
