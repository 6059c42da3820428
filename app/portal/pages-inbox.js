// Citizens' notifications: the inbox (newest first, unread ones marked and markable read,
// older pages on demand) and which kinds also come by email.
import { api } from "./api.js";
import { errorSlot, h } from "./dom.js";
import { dateTime, t } from "./i18n.js";
import { onSubmit } from "./pages-account.js";

const KINDS = [
  "application_decided", "permit_issued", "invoice_opened", "invoice_overdue", "payment_completed", "payment_failed",
  "payment_refunded", "booking_confirmed", "booking_cancelled", "booking_expired", "license_expiring", "license_expired",
  "tax_record_opened", "enrollment_promoted",
];
const kindName = (kind) => (KINDS.includes(kind) ? t(`kind.${kind}`) : kind);

// How many notices are unread (null when notify cannot say): the header's count.
export async function unreadCount() {
  try {
    return (await api("GET", "/api/v1/notify/inbox?limit=1")).unread;
  } catch {
    return null;
  }
}

function notice(ctx, item) {
  const slot = errorSlot(`notice-${item.id}-error`);
  const entry = h(
    "li",
    { class: item.read_at ? "notice-item" : "notice-item unread", "data-notice": item.id },
    h("h3", {}, item.read_at ? "" : h("span", { class: "badge" }, t("inbox.new")), " ", item.title),
    h("p", { class: "meta" }, `${kindName(item.kind)} — ${dateTime(item.created_at)}`),
    h("p", {}, item.body),
  );
  if (!item.read_at) {
    const button = h("button", { type: "button", class: "secondary" }, t("inbox.mark_read"));
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api("POST", `/api/v1/notify/inbox/${item.id}/read`, {});
        ctx.refreshHeader();
        entry.classList.remove("unread");
        entry.querySelector(".badge")?.remove();
        button.remove();
      } catch (error) {
        slot.textContent = error.message;
        button.disabled = false;
      }
    });
    entry.append(h("div", { class: "actions" }, button, slot));
  }
  return entry;
}

async function inbox(ctx) {
  ctx.frame(t("inbox.title"));
  const first = await api("GET", "/api/v1/notify/inbox?limit=20");
  if (!ctx.current()) return;
  const list = h("ul", { class: "notices", id: "notices" });
  const summary = h("p", { id: "unread", class: "lead" }, t("inbox.unread", { count: first.unread }));
  ctx.main.append(summary, h("p", {}, h("a", { href: "#/inbox/preferences" }, t("inbox.preferences_link"))), list);
  if (first.items.length === 0) list.replaceWith(h("p", {}, t("inbox.empty")));
  let cursor = first.next_cursor;
  const more = h("button", { type: "button", class: "secondary", id: "older" }, t("inbox.older"));
  const slot = errorSlot("older-error");
  const show = (items) => list.append(...items.map((item) => notice(ctx, item)));
  show(first.items);
  more.addEventListener("click", async () => {
    try {
      const page = await api("GET", `/api/v1/notify/inbox?limit=20&cursor=${cursor}`);
      show(page.items);
      cursor = page.next_cursor;
      if (!cursor) more.remove();
    } catch (error) {
      slot.textContent = error.message;
    }
  });
  if (cursor) ctx.main.append(h("div", { class: "actions" }, more, slot));
}

async function preferences(ctx) {
  ctx.frame(t("prefs.title"));
  const current = await api("GET", "/api/v1/notify/preferences");
  if (!ctx.current()) return;
  const slot = errorSlot("prefs-error");
  const saved = h("p", { role: "status", id: "prefs-saved" });
  const boxes = Object.keys(current.email).map((kind) =>
    h("div", { class: "check" }, h("input", { type: "checkbox", id: `kind-${kind}`, name: kind, checked: current.email[kind] }), h("label", { for: `kind-${kind}` }, kindName(kind))),
  );
  const form = h(
    "form",
    { id: "prefs-form" },
    h("p", {}, current.email_delivery ? t("prefs.delivery_on") : t("prefs.delivery_off")),
    h("fieldset", {}, h("legend", {}, t("prefs.legend")), boxes),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("prefs.save")), slot),
    saved,
  );
  onSubmit(form, slot, async () => {
    saved.textContent = "";
    const change = {};
    for (const kind of Object.keys(current.email)) {
      const wanted = form.elements[kind].checked;
      if (wanted !== current.email[kind]) change[kind] = wanted;
    }
    Object.assign(current, await api("PATCH", "/api/v1/notify/preferences", { email: change }));
    saved.textContent = t("prefs.saved");
  });
  ctx.main.append(form);
}

export const inboxRoutes = [
  { path: /^\/inbox$/, access: "citizen", view: inbox },
  { path: /^\/inbox\/preferences$/, access: "citizen", view: preferences },
];
