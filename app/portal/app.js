// The portal's shell: the header (navigation for who is signed in, the language), hash
// routing (#/permits, #/applications/3, ...), the guard that sends a signed-out user to
// sign in and back, and the page frame every view fills. Pages live in pages-*.js.
import { api, dropSession, session, whenSessionEnds } from "./api.js";
import { clear, h } from "./dom.js";
import { chooseLanguage, currentLanguage, languages, setLanguage, setMunicipalZone, t } from "./i18n.js";
import { accountRoutes } from "./pages-account.js";
import { inboxRoutes, unreadCount } from "./pages-inbox.js";
import { moneyRoutes } from "./pages-money.js";
import { parksRoutes } from "./pages-parks.js";
import { permitRoutes } from "./pages-permits.js";
import { may, staffRoutes } from "./pages-staff.js";

const main = document.getElementById("main");
const settings = { time_zone: "UTC", currency: "USD", demo: false };
let rendering = 0;  // a newer navigation makes an older page's late answers harmless
let announcement = "";  // said once on the next page (e.g. "You are signed out.")

// Who may open a route: anyone, a signed-in citizen, or staff (with the route's
// permission). Every staff URL is refused to citizens and sends the signed-out to sign in.
const routes = [
  { path: /^\/$/, access: "public", view: home },
  ...accountRoutes,
  ...permitRoutes,
  ...moneyRoutes,
  ...parksRoutes,
  ...inboxRoutes,
  ...staffRoutes,
];

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path: path || "/", query: new URLSearchParams(query), raw };
}

function frame(title) {
  clear(main);
  document.title = t("page.title", { page: title });
  const heading = h("h1", { id: "page-heading", tabindex: "-1" }, title);
  main.append(heading);
  return heading;
}

// What every view gets: its frame, the route's parameters and the shared settings.
function context(match, query, token) {
  return {
    main,
    match,
    query,
    settings,
    session: session(),
    frame,
    navigate,
    current: () => token === rendering,
    refreshHeader: renderHeader,
  };
}

async function render({ focus = true } = {}) {
  const token = ++rendering;
  delete main.dataset.rendered;
  document.getElementById("status").textContent = announcement;
  announcement = "";
  const { path, query, raw } = parseHash();
  renderHeader();
  const route = routes.find((candidate) => candidate.path.test(path));
  const who = session();
  if (!route) {
    frame(t("notfound.title"));
    main.append(h("p", {}, t("notfound.body")), h("p", {}, h("a", { href: "#/" }, t("nav.home"))));
  } else if (route.access !== "public" && !who) {
    navigate(`#/sign-in?next=${encodeURIComponent(raw)}`);
    return;
  } else if (
    (route.access === "citizen" && who.principal.kind !== "citizen") ||
    (route.access === "staff" && (who.principal.kind !== "employee" || (route.permission && !may(who.principal, route.permission))))
  ) {
    forbidden();
  } else {
    try {
      await route.view(context(path.match(route.path), query, token));
    } catch (error) {
      if (token !== rendering) return;
      main.append(h("p", { class: "error", role: "alert" }, error.message));
    }
  }
  if (token !== rendering) return;
  main.dataset.rendered = raw;  // the page is complete (tests wait for it)
  if (focus) document.getElementById("page-heading")?.focus();
}

function forbidden() {
  frame(t("forbidden.title"));
  main.append(h("p", {}, t("forbidden.body")), h("p", {}, h("a", { href: "#/" }, t("nav.home"))));
}

function home({ frame: makeFrame }) {
  makeFrame(t("home.title"));
  const who = session();
  main.append(h("p", { class: "lead" }, who ? t("home.welcome_back", { name: who.principal.name }) : t("home.intro")));
  const services = h(
    "ul",
    { class: "cards" },
    h("li", {}, h("a", { href: "#/permits" }, h("strong", {}, t("nav.permits"))), h("p", {}, t("home.permits"))),
    h("li", {}, h("a", { href: "#/parks" }, h("strong", {}, t("nav.parks"))), h("p", {}, t("home.parks"))),
    who?.principal.kind === "citizen"
      ? [
          h("li", {}, h("a", { href: "#/money" }, h("strong", {}, t("nav.money"))), h("p", {}, t("home.money"))),
          h("li", {}, h("a", { href: "#/inbox" }, h("strong", {}, t("nav.inbox"))), h("p", {}, t("home.inbox"))),
          h("li", {}, h("a", { href: "#/profile" }, h("strong", {}, t("nav.profile"))), h("p", {}, t("home.profile"))),
        ]
      : null,
    who ? null : h("li", {}, h("a", { href: "#/register" }, h("strong", {}, t("nav.register"))), h("p", {}, t("home.register"))),
  );
  main.append(h("section", { "aria-labelledby": "services-heading" }, h("h2", { id: "services-heading" }, t("home.services")), services));
}

function renderHeader() {
  const who = session();
  const links = [["#/", "nav.home"], ["#/permits", "nav.permits"], ["#/parks", "nav.parks"]];
  const citizen = who?.principal.kind === "citizen";
  if (citizen) links.push(["#/money", "nav.money"], ["#/inbox", "nav.inbox"], ["#/profile", "nav.profile"], ["#/sessions", "nav.sessions"]);
  if (who?.principal.kind === "employee") links.push(["#/staff", "nav.staff"]);
  if (!who) links.push(["#/sign-in", "nav.sign_in"], ["#/register", "nav.register"]);
  const here = parseHash().path;
  const nav = document.getElementById("nav");
  nav.setAttribute("aria-label", t("nav.label"));
  clear(nav);
  nav.append(
    h(
      "ul",
      {},
      links.map(([href, key]) => h("li", {}, h("a", { href, "aria-current": href.slice(1) === here ? "page" : null }, t(key)))),
      who ? h("li", {}, h("button", { type: "button", id: "sign-out", class: "link", onclick: signOut }, t("nav.sign_out"))) : null,
    ),
  );
  if (citizen)
    unreadCount().then((count) => {
      const inbox = nav.querySelector('a[href="#/inbox"]');
      if (inbox && count) inbox.textContent = t("nav.inbox_count", { count });
    });
  document.getElementById("brand").textContent = t("brand");
  document.getElementById("skip-link").textContent = t("skip");
  document.getElementById("language-label").textContent = t("language.label");
  document.getElementById("footer").textContent = t("footer", { zone: settings.time_zone });
  const picker = document.getElementById("language");
  if (picker.options.length === 0)
    for (const tag of languages) picker.append(h("option", { value: tag, lang: tag }, t(`language.${tag}`)));
  picker.value = currentLanguage();
}

async function signOut() {
  try {
    await api("POST", "/api/v1/auth/logout", {});
  } catch {
    // the session is dropped here either way
  }
  dropSession();
  announcement = t("signed_out");
  navigate("#/");
}

async function start() {
  chooseLanguage();
  try {
    Object.assign(settings, await api("GET", "/portal/settings.json", undefined, { signedIn: false }));
  } catch {
    // defaults: UTC, USD, no demo notes
  }
  setMunicipalZone(settings.time_zone);
  document.getElementById("language").addEventListener("change", (event) => {
    setLanguage(event.target.value);
    render({ focus: false });
  });
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();  // the hash is the route: focus the content instead
    document.getElementById("page-heading")?.focus();
  });
  whenSessionEnds(() => {
    const { raw } = parseHash();
    if (!raw.startsWith("/sign-in")) navigate(`#/sign-in?next=${encodeURIComponent(raw)}&expired=1`);
  });
  window.addEventListener("hashchange", () => render());
  await render({ focus: false });
  document.body.dataset.ready = "true";
}

start();
