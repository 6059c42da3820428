// Citizens' permits: the permit types and their fees, applying, an application's status
// with paying its fee (the card simulator's tokens explained in demo mode), the receipt,
// and the issued permit as a printable page.
import { api, ApiError, listAll, session } from "./api.js";
import { details, errorSlot, field, h } from "./dom.js";
import { dateTime, money, t } from "./i18n.js";
import { onSubmit } from "./pages-account.js";

const KNOWN_TYPES = ["building", "renovation", "fence", "signage"];
export const typeName = (code) => (KNOWN_TYPES.includes(code) ? t(`permit_type.${code}`) : code);
const statusName = (status) => t(`status.${status}`);

function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `portal-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

async function permits(ctx) {
  ctx.frame(t("permits.title"));
  const types = await listAll("/api/v1/permits/permit-types");
  if (!ctx.current()) return;
  const citizen = ctx.session?.principal.kind === "citizen";
  ctx.main.append(
    h("p", {}, t("permits.intro")),
    h(
      "table",
      { id: "permit-types" },
      h("caption", {}, t("permits.types_caption")),
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col" }, t("permits.type")), h("th", { scope: "col" }, t("permits.fee")), h("th", { scope: "col" }, t("permits.inspection")), citizen ? h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("permits.actions"))) : null),
      ),
      h(
        "tbody",
        {},
        types.map((type) =>
          h(
            "tr",
            { "data-type": type.permit_type },
            h("th", { scope: "row" }, typeName(type.permit_type)),
            h("td", {}, type.fee_cents > 0 ? money(type.fee_cents, type.currency) : t("permits.free")),
            h("td", {}, t(type.inspection_required ? "permits.inspection_yes" : "permits.inspection_no")),
            citizen
              ? h("td", {}, h("a", { href: `#/permits/apply?type=${encodeURIComponent(type.permit_type)}`, "aria-label": t("permits.apply_for", { type: typeName(type.permit_type) }) }, t("permits.apply")))
              : null,
          ),
        ),
      ),
    ),
  );
  if (!citizen) {
    ctx.main.append(h("p", {}, h("a", { href: "#/sign-in?next=%2Fpermits" }, t("permits.sign_in_to_apply"))));
    return;
  }
  const applications = await listAll("/api/v1/permits/applications");
  if (!ctx.current()) return;
  const section = h("section", { "aria-labelledby": "mine-heading" }, h("h2", { id: "mine-heading" }, t("permits.mine")));
  if (applications.length === 0) section.append(h("p", {}, t("permits.none")));
  else
    section.append(
      h(
        "ul",
        { class: "list", id: "my-applications" },
        applications.map((application) =>
          h(
            "li",
            { "data-application": application.id },
            h("a", { href: `#/applications/${application.id}` }, t("permits.application_line", { id: application.id, type: typeName(application.permit_type) })),
            " — ",
            h("span", { class: `status ${application.status}` }, statusName(application.status)),
          ),
        ),
      ),
    );
  ctx.main.append(section);
}

async function apply(ctx) {
  ctx.frame(t("apply.title"));
  const [types, departments] = await Promise.all([listAll("/api/v1/permits/permit-types"), api("GET", "/api/v1/auth/departments")]);
  if (!ctx.current()) return;
  const wanted = ctx.query.get("type");
  const typeSelect = h(
    "select",
    { id: "permit_type", name: "permit_type", required: true },
    types.map((type) =>
      h(
        "option",
        { value: type.permit_type, selected: type.permit_type === wanted },
        `${typeName(type.permit_type)} — ${type.fee_cents > 0 ? money(type.fee_cents, type.currency) : t("permits.free")}`,
      ),
    ),
  );
  const departmentSelect = h(
    "select",
    { id: "department_code", name: "department_code", required: true },
    (departments.items || []).filter((department) => department.is_active).map((department) => h("option", { value: department.code, selected: department.code === "BLD" }, `${department.name} (${department.code})`)),
  );
  const slot = errorSlot("apply-error");
  const form = h(
    "form",
    { id: "apply-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "permit_type" }, t("apply.type")), typeSelect),
    h("div", { class: "field" }, h("label", { for: "department_code" }, t("apply.department")), departmentSelect),
    field({ id: "description", label: t("apply.description"), type: "textarea", required: true }),
    field({ id: "property_address", label: t("apply.property_address"), required: true, autocomplete: "street-address" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("apply.submit")), slot),
  );
  onSubmit(form, slot, async (values) => {
    const created = await api("POST", "/api/v1/permits/applications", values);
    ctx.navigate(`#/applications/${created.id}`);
  });
  ctx.main.append(h("p", {}, t("apply.intro")), form);
}

function wait(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

// The pay form of an open invoice. `paid` runs after a completed payment.
export function payForm(ctx, invoice, paid) {
  const slot = errorSlot("pay-error");
  const form = h(
    "form",
    { id: "pay-form", novalidate: true },
    h("p", {}, t("pay.amount_due", { amount: money(invoice.balance_cents, invoice.currency) })),
    field({ id: "card_token", label: t("pay.card_token"), required: true, attributes: { autocomplete: "off", spellcheck: "false" }, hint: ctx.settings.demo ? t("pay.demo_tokens") : t("pay.token_hint") }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("pay.submit", { amount: money(invoice.balance_cents, invoice.currency) })), slot),
  );
  onSubmit(form, slot, async (values) => {
    let payment;
    try {
      payment = await api(
        "POST",
        "/api/v1/revenue/payments",
        { invoice_id: invoice.id, amount_cents: invoice.balance_cents, currency: invoice.currency, method: { type: "card", token: values.card_token.trim() } },
        { headers: { "Idempotency-Key": idempotencyKey() } },
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 402) throw new ApiError(402, t("pay.declined", { reason: error.message }));
      throw error;
    }
    if (payment.status === "pending") throw new ApiError(202, t("pay.pending"));
    await paid(payment);
  });
  return form;
}

// The open invoice of a place or an application (its `source`): revenue opens it from
// the source's event a moment after, so it is looked for a few times, said in `section`.
export async function openInvoiceFor(ctx, section, module, type, id) {
  const waiting = h("p", { role: "status" }, t("pay.preparing"));
  for (let tries = 0; tries < 20 && ctx.current(); ++tries) {
    const open = await listAll("/api/v1/revenue/invoices?status=open");
    const invoice = open.find((candidate) => candidate.source.module === module && candidate.source.type === type && candidate.source.id === String(id));
    if (invoice) {
      waiting.remove();
      return invoice;
    }
    if (tries === 0) section.append(waiting);
    await wait(500);
  }
  waiting.remove();
  if (ctx.current()) section.append(h("p", { class: "error", role: "alert" }, t("pay.no_invoice")));
  return null;
}

async function application(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("application.title", { id }));
  const current = await api("GET", `/api/v1/permits/applications/${id}`);
  if (!ctx.current()) return;
  const body = h("div", { id: "application" });
  ctx.main.append(body);
  const show = async () => {
    body.replaceChildren(
      details([
        [t("permits.type"), typeName(current.permit_type)],
        [t("application.status"), h("strong", { class: `status ${current.status}`, id: "application-status" }, statusName(current.status))],
        [t("apply.property_address"), current.property_address],
        [t("apply.description"), current.description],
        [t("permits.fee"), current.fee_cents > 0 ? money(current.fee_cents, current.currency) : t("permits.free")],
        [t("application.submitted"), dateTime(current.submitted_at)],
        current.decided_at ? [t("application.decided"), dateTime(current.decided_at)] : null,
        current.decision_reason ? [t("application.reason"), current.decision_reason] : null,
      ]),
    );
    if (current.status === "approved" && current.permit_id)
      body.append(h("p", {}, h("a", { href: `#/permit/${current.permit_id}`, id: "permit-link" }, t("application.view_permit"))));
    if (current.status === "under_review") body.append(h("p", {}, t("application.under_review")));
    if (current.status !== "fee_due") return;
    const section = h("section", { "aria-labelledby": "pay-heading" }, h("h2", { id: "pay-heading" }, t("pay.title")));
    body.append(section);
    const invoice = await openInvoiceFor(ctx, section, "permits", "application", current.id);
    if (!invoice || !ctx.current()) return;
    section.append(
      payForm(ctx, invoice, async (payment) => {
        section.replaceChildren(
          h("h2", { id: "pay-heading" }, t("pay.title")),
          h("p", { role: "status", id: "paid" }, t("pay.done", { amount: money(payment.amount_cents, payment.currency) }), " ", h("a", { href: `#/receipts/${payment.id}` }, t("pay.receipt"))),
        );
      }),
    );
  };
  await show();
}

async function receipt(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("receipt.title"));
  const paid = await api("GET", `/api/v1/revenue/payments/${id}/receipt`);
  if (!ctx.current()) return;
  ctx.main.append(
    h(
      "article",
      { class: "printable", id: "receipt" },
      details([
        [t("receipt.number"), paid.receipt_number],
        [t("receipt.payer"), paid.payer_name || "—"],
        [t("receipt.for"), paid.description],
        [t("receipt.amount"), money(paid.amount_cents, paid.currency)],
        [t("receipt.paid_at"), dateTime(paid.paid_at)],
        [t("receipt.reference"), paid.provider_reference || "—"],
        paid.refunded_at ? [t("receipt.refunded_at"), dateTime(paid.refunded_at)] : null,
      ]),
    ),
    h("p", { class: "no-print" }, h("button", { type: "button", onclick: () => window.print() }, t("print"))),
  );
}

async function permit(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("permit.title", { id }));
  const issued = await api("GET", `/api/v1/permits/permits/${id}`);
  if (!ctx.current()) return;
  ctx.main.append(
    h(
      "article",
      { class: "printable", id: "permit" },
      h("p", { class: "issuer" }, t("permit.issuer")),
      details([
        [t("permit.number"), String(issued.id)],
        [t("permits.type"), typeName(issued.permit_type)],
        [t("permit.holder"), session()?.principal.name || "—"],
        [t("apply.department"), issued.department_code],
        [t("permit.issued_at"), dateTime(issued.issued_at)],
        [t("application.status"), h("strong", { id: "permit-status" }, t(`permit.status_${issued.status}`))],
        issued.revoke_reason ? [t("application.reason"), issued.revoke_reason] : null,
      ]),
      h("p", {}, h("a", { href: `#/applications/${issued.application_id}`, class: "no-print" }, t("permit.application"))),
    ),
    h("p", { class: "no-print" }, h("button", { type: "button", id: "print", onclick: () => window.print() }, t("print"))),
  );
}

export const permitRoutes = [
  { path: /^\/permits$/, access: "public", view: permits },
  { path: /^\/permits\/apply$/, access: "citizen", view: apply },
  { path: /^\/applications\/(\d+)$/, access: "citizen", view: application },
  { path: /^\/receipts\/(\d+)$/, access: "citizen", view: receipt },
  { path: /^\/permit\/(\d+)$/, access: "citizen", view: permit },
];
