// Citizens' accounts: sign in (and back to where the user was), register, the profile
// (a changed name or national id needs the city's verification again) and sessions.
import { api, listAll, saveSession } from "./api.js";
import { errorSlot, field, h, showError } from "./dom.js";
import { dateTime, t } from "./i18n.js";

// Where to go after signing in: a route of this portal only, never another site.
function safeNext(query) {
  const next = query.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("/sign-in") ? `#${next}` : "#/";
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

// Runs `action` for a form: the button is disabled meanwhile, the error shown beside it.
function onSubmit(form, slot, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(slot, "");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await action(formValues(form));
    } catch (error) {
      showError(slot, error.message);
    } finally {
      button.disabled = false;
    }
  });
}

async function signIn(ctx) {
  ctx.frame(t("signin.title"));
  if (ctx.query.get("expired")) ctx.main.append(h("p", { class: "notice" }, t("signin.expired")));
  const slot = errorSlot("sign-in-error");
  const form = h(
    "form",
    { id: "sign-in-form", novalidate: true },
    field({ id: "email", label: t("field.email"), type: "email", required: true, autocomplete: "username" }),
    field({ id: "password", label: t("field.password"), type: "password", required: true, autocomplete: "current-password" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("signin.submit")), slot),
  );
  onSubmit(form, slot, async ({ email, password }) => {
    const login = await api("POST", "/api/v1/auth/login", { email, password }, { signedIn: false });
    saveSession(login);
    ctx.navigate(safeNext(ctx.query));
  });
  ctx.main.append(form, h("p", {}, t("signin.no_account"), " ", h("a", { href: "#/register" }, t("nav.register"))));
}

async function register(ctx) {
  ctx.frame(t("register.title"));
  const slot = errorSlot("register-error");
  const form = h(
    "form",
    { id: "register-form", novalidate: true },
    field({ id: "name", label: t("field.name"), required: true, autocomplete: "name" }),
    field({ id: "email", label: t("field.email"), type: "email", required: true, autocomplete: "email" }),
    field({ id: "password", label: t("field.password"), type: "password", required: true, autocomplete: "new-password", hint: t("register.password_hint") }),
    field({ id: "phone", label: t("field.phone"), type: "tel", autocomplete: "tel" }),
    field({ id: "address", label: t("field.address"), autocomplete: "street-address" }),
    field({ id: "city", label: t("field.city"), autocomplete: "address-level2" }),
    field({ id: "postal_code", label: t("field.postal_code"), autocomplete: "postal-code" }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("register.submit")), slot),
  );
  onSubmit(form, slot, async (values) => {
    const body = Object.fromEntries(Object.entries(values).filter(([, value]) => value.trim() !== ""));
    await api("POST", "/api/v1/auth/register", body, { signedIn: false });
    saveSession(await api("POST", "/api/v1/auth/login", { email: values.email, password: values.password }, { signedIn: false }));
    ctx.navigate("#/profile?registered=1");
  });
  ctx.main.append(h("p", {}, t("register.intro")), form);
}

function verificationBadges(citizen) {
  return h(
    "ul",
    { class: "badges", id: "verification" },
    h("li", { class: citizen.email_verified ? "ok" : "pending" }, t(citizen.email_verified ? "profile.email_verified" : "profile.email_unverified")),
    h(
      "li",
      { class: citizen.identity_verified ? "ok" : "pending" },
      t(citizen.identity_verified ? "profile.identity_verified" : "profile.identity_unverified"),
    ),
  );
}

async function profile(ctx) {
  ctx.frame(t("profile.title"));
  const id = ctx.session.principal.id;
  const citizen = await api("GET", `/api/v1/auth/citizens/${id}`);
  if (!ctx.current()) return;
  if (ctx.query.get("registered")) ctx.main.append(h("p", { class: "notice", role: "status" }, t("profile.registered")));
  const badges = h("div", {}, verificationBadges(citizen));
  const slot = errorSlot("profile-error");
  const saved = h("p", { id: "profile-saved", role: "status" });
  const reverify = t("profile.reverify_hint");
  const form = h(
    "form",
    { id: "profile-form", novalidate: true },
    h("p", {}, t("profile.email_is", { email: citizen.email })),
    field({ id: "name", label: t("field.name"), value: citizen.name, required: true, autocomplete: "name", hint: reverify }),
    field({ id: "phone", label: t("field.phone"), type: "tel", value: citizen.phone, autocomplete: "tel" }),
    field({ id: "address", label: t("field.address"), value: citizen.address, autocomplete: "street-address" }),
    field({ id: "city", label: t("field.city"), value: citizen.city, autocomplete: "address-level2" }),
    field({ id: "postal_code", label: t("field.postal_code"), value: citizen.postal_code, autocomplete: "postal-code" }),
    field({
      id: "national_id",
      label: t("field.national_id"),
      hint: `${citizen.has_national_id ? t("profile.national_id_set") : t("profile.national_id_unset")} ${reverify}`,
      attributes: { autocomplete: "off" },
    }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("profile.save")), slot),
    saved,
  );
  onSubmit(form, slot, async (values) => {
    saved.textContent = "";
    const change = {};
    for (const key of ["name", "phone", "address", "city", "postal_code"]) {
      const value = values[key].trim();
      if (value !== (citizen[key] ?? "")) change[key] = value === "" && key !== "name" ? null : value;
    }
    if (values.national_id.trim() !== "") change.national_id = values.national_id.trim();
    if (Object.keys(change).length === 0) {
      saved.textContent = t("profile.nothing_changed");
      return;
    }
    const wasVerified = citizen.identity_verified;
    const updated = await api("PATCH", `/api/v1/auth/citizens/${id}`, change);
    Object.assign(citizen, updated);
    form.elements.national_id.value = "";
    badges.replaceChildren(verificationBadges(updated));
    saved.textContent = wasVerified && !updated.identity_verified ? t("profile.saved_reverify") : t("profile.saved");
  });
  ctx.main.append(h("section", { "aria-labelledby": "status-heading" }, h("h2", { id: "status-heading" }, t("profile.status")), badges), form);
}

async function sessions(ctx) {
  ctx.frame(t("sessions.title"));
  const current = ctx.session;
  const live = await listAll("/api/v1/auth/sessions");
  if (!ctx.current()) return;
  ctx.main.append(
    h("p", {}, t("sessions.this_one", { email: current.principal.email, expires: dateTime(current.expires_at) })),
    h(
      "table",
      { id: "sessions" },
      h("caption", {}, t("sessions.caption")),
      h("thead", {}, h("tr", {}, [t("sessions.started"), t("sessions.expires"), t("sessions.address")].map((heading) => h("th", { scope: "col" }, heading)))),
      h(
        "tbody",
        {},
        live.map((entry) =>
          h(
            "tr",
            { "data-session": entry.id, class: entry.current ? "current" : null },
            h("th", { scope: "row" }, dateTime(entry.created_at), entry.current ? [" ", h("strong", {}, t("sessions.current"))] : null),
            h("td", {}, dateTime(entry.expires_at)),
            h("td", {}, entry.client_ip || "—"),
          ),
        ),
      ),
    ),
    h("p", {}, t("sessions.others")),
  );
  const slot = errorSlot("password-error");
  const done = h("p", { id: "password-saved", role: "status" });
  const form = h(
    "form",
    { id: "password-form", novalidate: true },
    h("h2", {}, t("sessions.change_password")),
    field({ id: "current_password", label: t("field.current_password"), type: "password", required: true, autocomplete: "current-password" }),
    field({ id: "new_password", label: t("field.new_password"), type: "password", required: true, autocomplete: "new-password", hint: t("register.password_hint") }),
    h("div", { class: "actions" }, h("button", { type: "submit" }, t("sessions.change_submit")), slot),
    done,
  );
  onSubmit(form, slot, async (values) => {
    done.textContent = "";
    await api("POST", "/api/v1/auth/password", values);
    form.reset();
    done.textContent = t("sessions.password_changed");
  });
  ctx.main.append(form);
}

export { onSubmit };

export const accountRoutes = [
  { path: /^\/sign-in$/, access: "public", view: signIn },
  { path: /^\/register$/, access: "public", view: register },
  { path: /^\/profile$/, access: "citizen", view: profile },
  { path: /^\/sessions$/, access: "citizen", view: sessions },
];
