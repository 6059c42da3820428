// Staff pages, each shown only to a role whose permissions allow it (the server decides
// again on every call): the front desk finds and verifies citizens, a permits reviewer
// works the department's queue and its inspections, a revenue clerk decides business
// licences and refunds payments, parks staff keep facilities' opening hours, bookings and
// programs' enrolments.
import { api, listAll } from "./api.js";
import { details, errorSlot, field, h } from "./dom.js";
import { date, dateTime, money, t } from "./i18n.js";
import { onSubmit } from "./pages-account.js";
import { typeName } from "./pages-permits.js";
import { facilities, facilityHours, parkBookings, programEnrollments, programs } from "./pages-staff-parks.js";

// The principal's permissions include wildcards: "*" (admin) or "revenue:*".
export function may(principal, permission) {
  const area = permission.split(":")[0];
  return principal.permissions.some((held) => held === "*" || held === permission || held === `${area}:*`);
}

const TOOLS = [
  ["citizens:verify", "#/staff/citizens", "staff.desk"],
  ["permits:review", "#/staff/applications", "staff.queue"],
  ["revenue:manage", "#/staff/licences", "staff.licences"],
  ["revenue:read", "#/staff/invoices", "staff.invoices"],
  ["revenue:manage", "#/staff/tax-records", "staff.tax"],
  ["parks:manage", "#/staff/bookings", "staff.bookings"],
  ["parks:manage", "#/staff/facilities", "staff.facilities"],
  ["parks:manage", "#/staff/programs", "staff.programs"],
];

function staffHome(ctx) {
  ctx.frame(t("staff.title"));
  const principal = ctx.session.principal;
  const tools = TOOLS.filter(([permission]) => may(principal, permission));
  ctx.main.append(
    h("p", {}, t("staff.signed_in_as", { name: principal.name, roles: principal.roles.join(", ") })),
    tools.length
      ? h("ul", { class: "cards", id: "tools" }, tools.map(([, href, key]) => h("li", {}, h("a", { href }, h("strong", {}, t(`${key}.title`))), h("p", {}, t(`${key}.about`)))))
      : h("p", {}, t("staff.no_tools")),
  );
}

const yesNo = (value) => t(value ? "staff.yes" : "staff.no");

async function citizens(ctx) {
  ctx.frame(t("staff.desk.title"));
  const q = ctx.query.get("q") || "";
  const form = h(
    "form",
    { id: "find-form", role: "search" },
    field({ id: "q", label: t("staff.desk.find"), value: q, hint: t("staff.desk.find_hint") }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("staff.desk.search"))),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.navigate(`#/staff/citizens?q=${encodeURIComponent(form.elements.q.value.trim())}`);
  });
  ctx.main.append(form);
  if (!q) return;
  const filter = q.includes("@") ? `email=${encodeURIComponent(q)}` : `name=${encodeURIComponent(q)}`;
  const found = (await api("GET", `/api/v1/auth/citizens?${filter}&page_size=50`)).items;
  if (!ctx.current()) return;
  ctx.main.append(
    found.length
      ? h(
          "ul",
          { class: "list", id: "citizens" },
          found.map((citizen) => h("li", {}, h("a", { href: `#/staff/citizens/${citizen.id}` }, `${citizen.name} <${citizen.email}>`), " — ", t(citizen.identity_verified ? "profile.identity_verified" : "profile.identity_unverified"))),
        )
      : h("p", { role: "status" }, t("staff.desk.none")),
  );
}

async function citizen(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("staff.desk.citizen", { id }));
  const [person, claims] = await Promise.all([api("GET", `/api/v1/auth/citizens/${id}`), api("GET", `/api/v1/auth/citizens/${id}/national-id-claims`)]);
  if (!ctx.current()) return;
  const state = h("dl", { class: "details", id: "citizen" });
  const draw = () =>
    state.replaceChildren(
      ...[
        [t("field.name"), person.name],
        [t("field.email"), person.email],
        [t("field.phone"), person.phone || "—"],
        [t("field.address"), [person.address, person.postal_code, person.city].filter(Boolean).join(", ") || "—"],
        [t("staff.desk.has_national_id"), yesNo(person.has_national_id)],
        [t("profile.email_verified"), yesNo(person.email_verified)],
        [t("profile.identity_verified"), h("span", { id: "identity" }, yesNo(person.identity_verified))],
      ].flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
    );
  draw();
  const others = (claims.claims || []).filter((claim) => String(claim.citizen_id) !== String(id));
  const slot = errorSlot("verify-error");
  const done = h("p", { role: "status", id: "verify-done" });
  const button = (label, change) => {
    const element = h("button", { type: "button" }, label);
    element.addEventListener("click", async () => {
      slot.textContent = "";
      element.disabled = true;
      try {
        Object.assign(person, await api("PATCH", `/api/v1/auth/citizens/${id}`, change));
        draw();
        done.textContent = t("staff.desk.saved");
      } catch (error) {
        slot.textContent = error.message;
      } finally {
        element.disabled = false;
      }
    });
    return element;
  };
  ctx.main.append(
    state,
    ...(others.length ? [h("p", { class: "notice" }, t("staff.desk.claims", { count: others.length }))] : []),
    h("p", {}, t("staff.desk.check_documents")),
    h("div", { class: "actions" }, button(t("staff.desk.verify_identity"), { identity_verified: true }), button(t("staff.desk.verify_email"), { email_verified: true }), slot),
    done,
  );
}

const statusName = (status) => t(`status.${status}`);

async function queue(ctx) {
  ctx.frame(t("staff.queue.title"));
  const applications = await listAll("/api/v1/permits/applications?status=under_review");
  if (!ctx.current()) return;
  ctx.main.append(
    applications.length
      ? h(
          "ul",
          { class: "list", id: "queue" },
          applications.map((application) =>
            h("li", { "data-application": application.id }, h("a", { href: `#/staff/applications/${application.id}` }, t("staff.queue.line", { id: application.id, type: typeName(application.permit_type), name: application.applicant?.name || "—" })), ` — ${dateTime(application.submitted_at)}`),
          ),
        )
      : h("p", {}, t("staff.queue.empty")),
  );
}

function decisionForm(id, onDecided, path) {
  const slot = errorSlot("decision-error");
  const form = h(
    "form",
    { id: "decision-form", novalidate: true },
    h(
      "fieldset",
      {},
      h("legend", {}, t("staff.decision")),
      h("div", { class: "check" }, h("input", { type: "radio", name: "decision", id: "decision-approve", value: "approve", checked: true }), h("label", { for: "decision-approve" }, t("staff.approve"))),
      h("div", { class: "check" }, h("input", { type: "radio", name: "decision", id: "decision-reject", value: "reject" }), h("label", { for: "decision-reject" }, t("staff.reject"))),
    ),
    field({ id: "reason", label: t("staff.reason"), type: "textarea", hint: t("staff.reason_hint") }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("staff.decide")), slot),
  );
  onSubmit(form, slot, async (values) => {
    const body = { decision: values.decision };
    if (values.reason.trim()) body.reason = values.reason.trim();
    onDecided(await api("POST", path(id), body));
  });
  return form;
}

async function reviewApplication(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("application.title", { id }));
  const application = await api("GET", `/api/v1/permits/applications/${id}`);
  if (!ctx.current()) return;
  const status = h("strong", { id: "application-status" }, statusName(application.status));
  const applicant = application.applicant || {};
  ctx.main.append(
    details([
      [t("permits.type"), typeName(application.permit_type)],
      [t("application.status"), status],
      [t("apply.property_address"), application.property_address],
      [t("apply.description"), application.description],
      [t("staff.queue.applicant"), `${applicant.name || "—"}${applicant.phone ? ` (${applicant.phone})` : ""}`],
      [t("staff.queue.synced"), dateTime(applicant.synced_at)],
      [t("application.submitted"), dateTime(application.submitted_at)],
    ]),
  );
  if (may(ctx.session.principal, "permits:inspect")) {
    const section = await inspectionsSection(ctx, application);
    if (!ctx.current()) return;
    ctx.main.append(section);
  }
  if (application.status !== "under_review") return;
  const form = decisionForm(id, (decided) => {
    status.textContent = statusName(decided.status);
    form.replaceWith(h("p", { role: "status", id: "decided" }, t("staff.decided", { status: statusName(decided.status) })));
  }, (which) => `/api/v1/permits/applications/${which}/decision`);
  ctx.main.append(form);
}

// An application's inspections: each scheduled one's result recorded (passed or failed,
// with notes), and a new one scheduled while the application is open.
async function inspectionsSection(ctx, application) {
  const inspections = await listAll(`/api/v1/permits/applications/${application.id}/inspections`);
  const section = h("section", { "aria-labelledby": "inspections-heading", id: "inspections" }, h("h2", { id: "inspections-heading" }, t("staff.inspections.title")));
  const list = h("ul", { class: "list", id: "inspection-list" });
  const show = (inspection) => {
    const entry = h(
      "li",
      { "data-inspection": inspection.id },
      `${dateTime(inspection.scheduled_for)} — `,
      h("strong", { class: "inspection-status" }, t(`staff.inspections.status_${inspection.status}`)),
      inspection.notes ? ` — ${inspection.notes}` : "",
    );
    if (inspection.status === "scheduled") entry.append(resultForm(inspection, (recorded) => entry.replaceWith(show(recorded))));
    return entry;
  };
  list.append(...inspections.map(show));
  if (!inspections.length) section.append(h("p", { id: "no-inspections" }, t("staff.inspections.none")));
  section.append(list);
  if (application.status === "fee_due" || application.status === "under_review") {
    const slot = errorSlot("schedule-error");
    const form = h(
      "form",
      { id: "schedule-form", novalidate: true },
      field({ id: "scheduled_for", label: t("staff.inspections.when"), type: "datetime-local", required: true, hint: t("staff.inspections.when_hint") }),
      h("div", { class: "actions" }, h("button", { type: "submit" }, t("staff.inspections.schedule")), slot),
    );
    onSubmit(form, slot, async (values) => {
      const when = new Date(values.scheduled_for);
      if (Number.isNaN(when.getTime())) throw new Error(t("staff.inspections.when_hint"));
      const scheduled = await api("POST", "/api/v1/permits/inspections", { application_id: application.id, scheduled_for: when.toISOString().replace(/\.\d{3}Z$/, "Z") });
      section.querySelector("#no-inspections")?.remove();
      list.append(show(scheduled));
      form.reset();
    });
    section.append(form);
  }
  return section;
}

function resultForm(inspection, recorded) {
  const id = inspection.id;
  const slot = errorSlot(`inspection-${id}-error`);
  const form = h(
    "form",
    { class: "inline-form", id: `result-form-${id}`, novalidate: true },
    h(
      "fieldset",
      {},
      h("legend", {}, t("staff.inspections.result")),
      h("div", { class: "check" }, h("input", { type: "radio", name: "result", id: `result-${id}-passed`, value: "passed", checked: true }), h("label", { for: `result-${id}-passed` }, t("staff.inspections.status_passed"))),
      h("div", { class: "check" }, h("input", { type: "radio", name: "result", id: `result-${id}-failed`, value: "failed" }), h("label", { for: `result-${id}-failed` }, t("staff.inspections.status_failed"))),
    ),
    field({ id: `notes-${id}`, label: t("staff.inspections.notes"), type: "textarea" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("staff.inspections.record")), slot),
  );
  onSubmit(form, slot, async (values) => {
    const body = { result: values.result };
    const notes = values[`notes-${id}`].trim();
    if (notes) body.notes = notes;
    recorded(await api("POST", `/api/v1/permits/inspections/${id}/result`, body));
  });
  return form;
}

async function licences(ctx) {
  ctx.frame(t("staff.licences.title"));
  const waiting = (await listAll("/api/v1/revenue/business-licenses")).filter((licence) => licence.status === "applied");
  if (!ctx.current()) return;
  if (!waiting.length) {
    ctx.main.append(h("p", {}, t("staff.licences.empty")));
    return;
  }
  ctx.main.append(
    h("ul", { class: "list", id: "licences-queue" }, waiting.map((licence) => h("li", {}, h("a", { href: `#/staff/licences/${licence.id}` }, `${licence.business_name} — ${licence.activity}`)))),
  );
}

async function decideLicence(ctx) {
  const id = ctx.match[1];
  const licence = await api("GET", `/api/v1/revenue/business-licenses/${id}`);
  ctx.frame(licence.business_name);
  if (!ctx.current()) return;
  const status = h("strong", { id: "licence-status" }, t(`licence.status_${licence.status}`));
  ctx.main.append(
    details([
      [t("licence.activity"), licence.activity],
      [t("field.address"), licence.address],
      [t("application.status"), status],
      [t("application.submitted"), dateTime(licence.created_at)],
    ]),
  );
  if (licence.status !== "applied") return;
  const form = decisionForm(id, (decided) => {
    status.textContent = t(`licence.status_${decided.status}`);
    form.replaceWith(h("p", { role: "status", id: "decided" }, t("staff.decided", { status: t(`licence.status_${decided.status}`) })));
  }, (which) => `/api/v1/revenue/business-licenses/${which}/decision`);
  ctx.main.append(form);
}

async function invoices(ctx) {
  ctx.frame(t("staff.invoices.title"));
  const status = ctx.query.get("status") || "open";
  const picker = h(
    "select",
    { id: "invoice-status", name: "status" },
    ["open", "overdue", "paid", "voided", "refunded"].map((value) => h("option", { value, selected: value === status }, t(`invoice.status_${value}`))),
  );
  picker.addEventListener("change", () => ctx.navigate(`#/staff/invoices?status=${picker.value}`));
  ctx.main.append(h("div", { class: "field" }, h("label", { for: "invoice-status" }, t("application.status")), picker));
  const page = await api("GET", `/api/v1/revenue/invoices?status=${status}&page_size=50`);
  if (!ctx.current()) return;
  ctx.main.append(
    page.items.length
      ? h(
          "table",
          { id: "all-invoices" },
          h("caption", {}, t("staff.invoices.caption")),
          h("thead", {}, h("tr", {}, [t("invoice.description"), t("staff.citizen"), t("receipt.amount"), t("invoice.due_date")].map((heading) => h("th", { scope: "col" }, heading)))),
          h(
            "tbody",
            {},
            page.items.map((invoice) =>
              h("tr", { "data-invoice": invoice.id }, h("th", { scope: "row" }, h("a", { href: `#/staff/invoices/${invoice.id}` }, invoice.description)), h("td", {}, String(invoice.citizen_id)), h("td", { class: "num" }, money(invoice.amount_cents, invoice.currency)), h("td", {}, invoice.due_date ? date(invoice.due_date) : "—")),
            ),
          ),
        )
      : h("p", {}, t("staff.invoices.none")),
  );
}

// One invoice with its payments; a completed one a revenue clerk may refund, saying why
// (a parks place's payment is refunded by cancelling the place: the server says so).
async function staffInvoice(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("invoice.title", { id }));
  const invoice = await api("GET", `/api/v1/revenue/invoices/${id}`);
  if (!ctx.current()) return;
  const status = h("span", { id: "invoice-status" }, t(`invoice.status_${invoice.status}`));
  ctx.main.append(
    details([
      [t("invoice.description"), invoice.description],
      [t("staff.citizen"), String(invoice.citizen_id)],
      [t("receipt.amount"), money(invoice.amount_cents, invoice.currency)],
      [t("application.status"), status],
      invoice.due_date ? [t("invoice.due_date"), date(invoice.due_date)] : null,
    ]),
  );
  const refundable = may(ctx.session.principal, "revenue:manage");
  const payments = invoice.payments.filter((payment) => payment.status !== "pending");
  ctx.main.append(
    h(
      "section",
      { "aria-labelledby": "payments-heading" },
      h("h2", { id: "payments-heading" }, t("invoice.payments")),
      payments.length
        ? h(
            "ul",
            { class: "list", id: "payments" },
            payments.map((payment) => {
              const state = h("span", { class: "payment-status" }, t(`payment.status_${payment.status}`));
              const entry = h("li", { "data-payment": payment.id }, `${dateTime(payment.completed_at || payment.created_at)} — ${money(payment.amount_cents, payment.currency)} — `, state);
              if (refundable && payment.status === "completed") entry.append(refundForm(payment, (refunded) => {
                state.textContent = t(`payment.status_${refunded.status}`);
                status.textContent = t(refunded.status === "refunded" ? "invoice.status_refunded" : `invoice.status_${invoice.status}`);
              }));
              return entry;
            }),
          )
        : h("p", {}, t("staff.refund.no_payments")),
    ),
  );
}

function refundForm(payment, refunded) {
  const slot = errorSlot(`refund-${payment.id}-error`);
  const form = h(
    "form",
    { class: "inline-form", id: `refund-form-${payment.id}`, novalidate: true },
    field({ id: `refund-reason-${payment.id}`, label: t("staff.refund.reason"), required: true, hint: t("staff.refund.hint") }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "secondary" }, t("staff.refund.submit", { amount: money(payment.amount_cents, payment.currency) })), slot),
  );
  onSubmit(form, slot, async (values) => {
    const done = await api("POST", `/api/v1/revenue/payments/${payment.id}/refund`, { reason: values[`refund-reason-${payment.id}`].trim() });
    form.replaceWith(h("p", { role: "status", id: `refunded-${payment.id}` }, t(done.status === "refunded" ? "staff.refund.done" : "staff.refund.pending")));
    refunded(done);
  });
  return form;
}

async function taxRecords(ctx) {
  ctx.frame(t("staff.tax.title"));
  const slot = errorSlot("tax-error");
  const done = h("p", { role: "status", id: "tax-done" });
  const number = (id, label, hint, step = "1") => field({ id, label, type: "number", required: true, hint, attributes: { min: "0", step } });
  const form = h(
    "form",
    { id: "tax-form", novalidate: true },
    number("citizen_id", t("staff.citizen")),
    number("tax_year", t("tax.year")),
    number("assessed_value", t("tax.assessed"), t("staff.tax.whole_units"), "0.01"),
    number("tax_due", t("tax.due"), t("staff.tax.whole_units"), "0.01"),
    field({ id: "due_date", label: t("invoice.due_date"), type: "date", hint: t("staff.tax.due_hint") }),
    field({ id: "instalments", label: t("staff.tax.instalments"), type: "number", value: "1", attributes: { min: "1", max: "12" } }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("staff.tax.submit")), slot),
    done,
  );
  onSubmit(form, slot, async (values) => {
    done.textContent = "";
    const body = {
      citizen_id: Number(values.citizen_id),
      tax_year: Number(values.tax_year),
      assessed_value_cents: Math.round(Number(values.assessed_value) * 100),
      tax_due_cents: Math.round(Number(values.tax_due) * 100),
    };
    if (values.due_date) {
      body.due_date = values.due_date;
      body.instalments = Number(values.instalments || 1);
    }
    const record = await api("POST", "/api/v1/revenue/tax-records", body);
    done.textContent = t("staff.tax.recorded", { id: record.id, count: record.invoices.length });
    form.reset();
  });
  ctx.main.append(form);
}

// Under /staff/ still: a citizen gets the forbidden page, the signed-out sign-in.
function unknownStaffPage(ctx) {
  ctx.frame(t("notfound.title"));
  ctx.main.append(h("p", {}, t("notfound.body")));
}

export const staffRoutes = [
  { path: /^\/staff$/, access: "staff", view: staffHome },
  { path: /^\/staff\/citizens$/, access: "staff", permission: "citizens:verify", view: citizens },
  { path: /^\/staff\/citizens\/(\d+)$/, access: "staff", permission: "citizens:verify", view: citizen },
  { path: /^\/staff\/applications$/, access: "staff", permission: "permits:review", view: queue },
  { path: /^\/staff\/applications\/(\d+)$/, access: "staff", permission: "permits:review", view: reviewApplication },
  { path: /^\/staff\/licences$/, access: "staff", permission: "revenue:manage", view: licences },
  { path: /^\/staff\/licences\/(\d+)$/, access: "staff", permission: "revenue:manage", view: decideLicence },
  { path: /^\/staff\/invoices$/, access: "staff", permission: "revenue:read", view: invoices },
  { path: /^\/staff\/invoices\/(\d+)$/, access: "staff", permission: "revenue:read", view: staffInvoice },
  { path: /^\/staff\/tax-records$/, access: "staff", permission: "revenue:manage", view: taxRecords },
  { path: /^\/staff\/bookings$/, access: "staff", permission: "parks:manage", view: parkBookings },
  { path: /^\/staff\/facilities$/, access: "staff", permission: "parks:manage", view: facilities },
  { path: /^\/staff\/facilities\/(\d+)$/, access: "staff", permission: "parks:manage", view: facilityHours },
  { path: /^\/staff\/programs$/, access: "staff", permission: "parks:manage", view: programs },
  { path: /^\/staff\/programs\/(\d+)$/, access: "staff", permission: "parks:manage", view: programEnrollments },
  { path: /^\/staff\/.*$/, access: "staff", view: unknownStaffPage },
];
