// Citizens' money: invoices (pay an open one by card token, receipts of its payments),
// tax records (found through their instalments' invoices) and business licences (apply,
// pay the fee, renew, see the expiry).
import { api, listAll } from "./api.js";
import { details, errorSlot, field, h } from "./dom.js";
import { date, dateTime, money, t } from "./i18n.js";
import { onSubmit } from "./pages-account.js";
import { payForm } from "./pages-permits.js";

const payable = (invoice) => invoice.status === "open" || invoice.status === "overdue";

function table(id, caption, headings, rows) {
  return h(
    "table",
    { id },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headings.map((heading) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, rows),
  );
}

function invoiceRows(invoices) {
  return invoices.map((invoice) =>
    h(
      "tr",
      { "data-invoice": invoice.id },
      h("th", { scope: "row" }, h("a", { href: `#/invoices/${invoice.id}` }, invoice.description)),
      h("td", { class: "num" }, money(invoice.amount_cents, invoice.currency)),
      h("td", { class: `status ${invoice.status}` }, t(`invoice.status_${invoice.status}`)),
      h("td", {}, invoice.due_date ? date(invoice.due_date) : "—"),
    ),
  );
}

async function overview(ctx) {
  ctx.frame(t("money.title"));
  const [invoices, licences] = await Promise.all([listAll("/api/v1/revenue/invoices"), listAll("/api/v1/revenue/business-licenses")]);
  // A citizen's tax records are the ones their instalments' invoices name ("<record>.<n>").
  const recordIds = [...new Set(invoices.filter((invoice) => invoice.source.module === "revenue" && invoice.source.type === "tax_record").map((invoice) => invoice.source.id.split(".")[0]))];
  const records = await Promise.all(recordIds.map((id) => api("GET", `/api/v1/revenue/tax-records/${id}`)));
  if (!ctx.current()) return;
  const due = invoices.filter(payable);
  ctx.main.append(
    h("p", { class: "lead" }, due.length ? t("money.due", { count: due.length }) : t("money.nothing_due")),
    h(
      "section",
      { "aria-labelledby": "invoices-heading" },
      h("h2", { id: "invoices-heading" }, t("money.invoices")),
      invoices.length
        ? table("invoices", t("money.invoices_caption"), [t("invoice.description"), t("receipt.amount"), t("application.status"), t("invoice.due_date")], invoiceRows(invoices))
        : h("p", {}, t("money.no_invoices")),
    ),
    h(
      "section",
      { "aria-labelledby": "tax-heading" },
      h("h2", { id: "tax-heading" }, t("money.tax_records")),
      records.length
        ? table(
            "tax-records",
            t("money.tax_caption"),
            [t("tax.year"), t("tax.assessed"), t("tax.due")],
            records.map((record) =>
              h("tr", {}, h("th", { scope: "row" }, String(record.tax_year)), h("td", {}, money(record.assessed_value_cents, record.currency)), h("td", {}, money(record.tax_due_cents, record.currency))),
            ),
          )
        : h("p", {}, t("money.no_tax_records")),
    ),
    licenceSection(ctx, licences),
  );
}

function licenceSection(ctx, licences) {
  const section = h("section", { "aria-labelledby": "licences-heading", id: "licences" }, h("h2", { id: "licences-heading" }, t("licence.title")));
  if (licences.length === 0) section.append(h("p", {}, t("licence.none")));
  for (const licence of licences) {
    const slot = errorSlot(`licence-${licence.id}-error`);
    const actions = h("div", { class: "actions" });
    const unpaidInvoice = licence.status === "approved_unpaid" ? licence.fee_invoice_id : licence.renewal_invoice_id;
    if (unpaidInvoice) actions.append(h("a", { href: `#/invoices/${unpaidInvoice}`, class: "button" }, t("licence.pay")));
    if ((licence.status === "active" || licence.status === "expired") && !licence.renewal_invoice_id) {
      const renew = h("button", { type: "button", "data-renew": licence.id }, t("licence.renew"));
      renew.addEventListener("click", async () => {
        renew.disabled = true;
        slot.textContent = "";
        try {
          const renewed = await api("POST", `/api/v1/revenue/business-licenses/${licence.id}/renew`, {});
          ctx.navigate(renewed.renewal_invoice_id ? `#/invoices/${renewed.renewal_invoice_id}` : "#/money");
        } catch (error) {
          slot.textContent = error.message;
          renew.disabled = false;
        }
      });
      actions.append(renew);
    }
    actions.append(slot);
    section.append(
      h(
        "article",
        { class: "card", "data-licence": licence.id },
        h("h3", {}, licence.business_name),
        details([
          [t("application.status"), t(`licence.status_${licence.status}`), { class: `status ${licence.status}` }],
          [t("licence.activity"), licence.activity],
          licence.expires_at ? [t("licence.expires"), date(licence.expires_at)] : null,
          licence.status === "approved_unpaid" && licence.fee_due_at ? [t("licence.fee_due"), date(licence.fee_due_at)] : null,
          licence.decision_reason ? [t("application.reason"), licence.decision_reason] : null,
        ]),
        actions,
      ),
    );
  }
  section.append(h("p", {}, h("a", { href: "#/licences/apply" }, t("licence.apply"))));
  return section;
}

async function applyForLicence(ctx) {
  ctx.frame(t("licence.apply_title"));
  const slot = errorSlot("licence-error");
  const form = h(
    "form",
    { id: "licence-form", novalidate: true },
    field({ id: "business_name", label: t("licence.business_name"), required: true, autocomplete: "organization" }),
    field({ id: "activity", label: t("licence.activity"), required: true }),
    field({ id: "address", label: t("field.address"), required: true, autocomplete: "street-address" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("licence.submit")), slot),
  );
  onSubmit(form, slot, async (values) => {
    await api("POST", "/api/v1/revenue/business-licenses", values);
    ctx.navigate("#/money");
  });
  ctx.main.append(h("p", {}, t("licence.apply_intro")), form);
}

async function invoicePage(ctx) {
  const id = ctx.match[1];
  ctx.frame(t("invoice.title", { id }));
  const invoice = await api("GET", `/api/v1/revenue/invoices/${id}`);
  if (!ctx.current()) return;
  ctx.main.append(
    details(
      [
        [t("invoice.description"), invoice.description],
        [t("receipt.amount"), money(invoice.amount_cents, invoice.currency)],
        [t("application.status"), t(`invoice.status_${invoice.status}`), { class: `status ${invoice.status}`, id: "invoice-status" }],
        invoice.due_date ? [t("invoice.due_date"), date(invoice.due_date)] : null,
      ],
      { id: "invoice" },
    ),
  );
  const payments = invoice.payments.filter((payment) => payment.status !== "pending");
  if (payments.length)
    ctx.main.append(
      h(
        "section",
        { "aria-labelledby": "payments-heading" },
        h("h2", { id: "payments-heading" }, t("invoice.payments")),
        h(
          "ul",
          { class: "list", id: "payments" },
          payments.map((payment) =>
            h(
              "li",
              {},
              `${dateTime(payment.completed_at || payment.created_at)} — ${money(payment.amount_cents, payment.currency)} — ${t(`payment.status_${payment.status}`)}`,
              payment.status === "failed" ? "" : [" — ", h("a", { href: `#/receipts/${payment.id}` }, t("pay.receipt"))],
            ),
          ),
        ),
      ),
    );
  if (!payable(invoice)) return;
  const section = h("section", { "aria-labelledby": "pay-heading" }, h("h2", { id: "pay-heading" }, t("pay.title")));
  section.append(
    payForm(ctx, invoice, async (payment) => {
      section.replaceChildren(
        h("h2", { id: "pay-heading" }, t("pay.title")),
        h("p", { role: "status", id: "paid" }, t("pay.done", { amount: money(payment.amount_cents, payment.currency) }), " ", h("a", { href: `#/receipts/${payment.id}` }, t("pay.receipt"))),
      );
    }),
  );
  ctx.main.append(section);
}

export const moneyRoutes = [
  { path: /^\/money$/, access: "citizen", view: overview },
  { path: /^\/invoices\/(\d+)$/, access: "citizen", view: invoicePage },
  { path: /^\/licences\/apply$/, access: "citizen", view: applyForLicence },
];
