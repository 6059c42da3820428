// Drives the service portal in a real browser (Debian's Chromium through playwright-core;
// no browser download) against a live server, as a citizen and the staff would (a second
// browser context): register → the front desk verifies → apply for a priced permit →
// pay (declined, then paid) → the reviewer inspects and approves → the permit page. Each
// staff role (front desk, permits reviewer, revenue clerk, parks staff, admin) sees only
// its tools and opens only its pages; a citizen typing any staff URL gets the forbidden
// page and the page asks the server for nothing. Then every page in
// English and French: axe-core (no serious or critical violation), a screenshot at 390
// and 1280 px, no horizontal scrolling at 390 px; on every page no console error and no
// Content-Security-Policy violation. The calling test (tests/integration/portal_test.cpp)
// then checks the server's state.
//
// Then money (the invoices, a business licence applied for, approved by the revenue
// clerk, paid and renewed; a tax instalment paid and refunded by the clerk), parks (the court's week, a booking paid within its hold and
// cancelled with its refund shown, a program's place held and cancelled, a full program's
// waitlist joined and a place given when another citizen cancels) and the inbox (the
// promotion's notice, unread count, marking read, email choices); parks staff see the
// program's enrolments and change a facility's opening hours.
//
// usage: node drive.mjs <portal url> <clerk email> <reviewer email> <revenue clerk email>
//                       <parks staff email> <admin email> <staff password>
//                       <reviewer's department> <citizen email> <artifacts dir>
// The server runs with --demo (the pay form explains the simulator's tokens).
// Exit 0 when every step passed; 1 with the failed step.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const [url, clerkEmail, reviewerEmail, revenueEmail, parksEmail, adminEmail, staffPassword, department, citizenEmail, artifacts] =
  process.argv.slice(2);
if (!artifacts) {
  console.error("usage: node drive.mjs URL CLERK REVIEWER REVENUE_CLERK PARKS_STAFF ADMIN STAFF_PASSWORD DEPARTMENT CITIZEN ARTIFACTS_DIR");
  process.exit(2);
}
const origin = new URL(url).origin;
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 15000;
const PASSWORD = "a long enough password";
mkdirSync(artifacts, { recursive: true });

// The catalogs the page uses, read as the modules they are (app/portal/ has no package.json).
async function catalog(language) {
  const source = readFileSync(new URL(`../../app/portal/messages-${language}.js`, import.meta.url), "utf8");
  return (await import(`data:text/javascript,${encodeURIComponent(source)}`)).default;
}
const en = await catalog("en");
const fr = await catalog("fr");

const problems = [];
let step = "launch";
let expectedStatus = /status of 4\d\d/;
let lastPage = null;  // shown and kept when a step fails  // a refused request (402 decline, 401, 422) is the page's to show

function watch(page, label) {
  page.on("console", (message) => {
    if (message.type() === "error" && !expectedStatus.test(message.text())) problems.push(`${label} console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${label} page error: ${error.message}`));
}

async function newPage(context, label) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // CDP-run, so the policy under test does not block it: records every violation.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (event) => window.__csp.push(`${event.violatedDirective} ${event.blockedURI}`));
  });
  watch(page, label);
  lastPage = page;
  return page;
}

// Opens a route and waits until the page has drawn it (main[data-rendered]).
// The same route again is a reload: the page reads the server afresh.
async function go(page, hash, rendered = hash.slice(1)) {
  if ((await page.evaluate(() => location.hash)) === hash) await page.reload();
  else await page.evaluate((target) => (location.hash = target), hash);
  await page.waitForFunction((want) => document.getElementById("main").dataset.rendered === want, rendered);
}

async function heading(page) {
  return (await page.locator("#page-heading").textContent()).trim();
}

// axe-core, the layout at both widths and the policy: the checks every page passes.
async function audit(page, name, language) {
  step = `audit ${name} (${language})`;
  const text = await page.locator("#main").innerText();
  if (/\b(null|undefined|NaN)\b/.test(text)) throw new Error(`a missing value is shown as text: ${text}`);
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((violation) => ["serious", "critical"].includes(violation.impact));
  if (bad.length)
    throw new Error(bad.map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.map((node) => node.target.join(" ")).join(", ")})`).join("\n"));
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: `${artifacts}/${name}-${language}-${width}.png`, fullPage: true });
    if (width === 390) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 0) throw new Error(`${name} scrolls sideways at 390 px (${overflow} px)`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  const violations = await page.evaluate(() => window.__csp);
  if (violations.length) throw new Error(`CSP violations: ${violations.join("; ")}`);
  if (problems.length) throw new Error(problems.join("\n"));
}

// The UTC offset of `zone` on `day` in minutes (to compute a slot's start as the server does).
function offsetMinutes(day, zone) {
  const name = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" })
    .formatToParts(new Date(`${day}T12:00:00Z`))
    .find((part) => part.type === "timeZoneName").value;
  const match = /GMT([+-])(\d\d):(\d\d)/.exec(name);
  return match ? (match[1] === "-" ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) : 0;
}

// Signs in through the portal's form (signing out whoever was signed in).
async function signIn(page, email, password) {
  if (await page.locator("#sign-out").count()) {
    await page.click("#sign-out");
    await page.waitForFunction(() => document.getElementById("main").dataset.rendered === "/");
  }
  await go(page, "#/sign-in");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.click("#sign-in-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("main").dataset.rendered === "/");
}

// Each staff tool and whose it is (admin: every one). What a role must be offered, and the
// only staff pages it may open, follow from this table (written here, not read from the
// portal's code, so a tool shown to the wrong role fails).
const STAFF_TOOLS = {
  "#/staff/citizens": "front desk",
  "#/staff/applications": "permits reviewer",
  "#/staff/licences": "revenue clerk",
  "#/staff/invoices": "revenue clerk",
  "#/staff/tax-records": "revenue clerk",
  "#/staff/bookings": "parks staff",
  "#/staff/facilities": "parks staff",
  "#/staff/programs": "parks staff",
};
const STAFF_URLS = [
  ...Object.keys(STAFF_TOOLS),
  ...["citizens", "applications", "licences", "invoices", "facilities", "programs"].map((tool) => `#/staff/${tool}/1`),
];
const toolOf = (hash) => Object.keys(STAFF_TOOLS).find((tool) => hash === tool || hash.startsWith(`${tool}/`));
const CITIZEN_LINKS = ["#/money", "#/inbox", "#/profile", "#/sessions"];

async function navigation(page) {
  return page.locator("#nav a").evaluateAll((links) => links.map((link) => link.getAttribute("href")));
}

// The API paths a page asks for while `action` runs.
async function apiCalls(page, action) {
  const seen = [];
  const listener = (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith("/api/")) seen.push(path);
  };
  page.on("request", listener);
  try {
    await action();
  } finally {
    page.off("request", listener);
  }
  return seen;
}

// A staff member (signed in on `page`) as `role`: the navigation has the staff tools and
// no citizen's pages, the tools offered are exactly the role's, each staff page of
// another role is the forbidden page (asking the server for nothing), and each of its own opens.
async function checkAccess(page, role) {
  step = `access: ${role}`;
  const nav = await navigation(page);
  if (!nav.includes("#/staff") || nav.some((href) => CITIZEN_LINKS.includes(href))) throw new Error(`${role}'s navigation: ${nav.join(", ")}`);
  const expected = Object.keys(STAFF_TOOLS).filter((tool) => role === "admin" || STAFF_TOOLS[tool] === role);
  await go(page, "#/staff");
  const offered = await page.locator("#tools a").evaluateAll((links) => links.map((link) => link.getAttribute("href")));
  if (JSON.stringify([...offered].sort()) !== JSON.stringify([...expected].sort())) throw new Error(`${role} is offered: ${offered.join(", ")}`);
  for (const hash of STAFF_URLS) {
    const allowed = expected.includes(toolOf(hash));
    const calls = await apiCalls(page, () => go(page, hash));
    const refused = (await heading(page)) === en["forbidden.title"];
    if (refused === allowed) throw new Error(`${role}: ${hash} was ${refused ? "refused" : "shown"}`);
    if (refused && calls.length) throw new Error(`${role}: the refused ${hash} asked the server for ${calls.join(", ")}`);
  }
}

// A citizen typing each staff URL gets the forbidden page and no data: the page asks the
// server for nothing but the header's unread count.
async function citizenRefusedEverywhere(page) {
  const nav = await navigation(page);
  if (nav.includes("#/staff")) throw new Error("a citizen is offered the staff tools");
  for (const hash of ["#/staff", ...STAFF_URLS]) {
    const calls = await apiCalls(page, () => go(page, hash));
    if ((await heading(page)) !== en["forbidden.title"]) throw new Error(`a citizen saw ${hash}`);
    const asked = calls.filter((path) => path !== "/api/v1/notify/inbox");
    if (asked.length) throw new Error(`a citizen at ${hash} made the page ask for ${asked.join(", ")}`);
  }
}

// The JSON API from the test itself (what another citizen or staff does meanwhile).
async function call(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(new URL(path, origin), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function token(email, password) {
  return (await call("POST", "/api/v1/auth/login", { email, password })).token;
}

async function waitForText(page, selector, text) {
  await page.locator(selector, { hasText: text }).first().waitFor();
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  step = "the catalogs have the same keys";
  const missing = Object.keys(en).filter((key) => !(key in fr)).concat(Object.keys(fr).filter((key) => !(key in en)));
  if (missing.length) throw new Error(`keys in one catalog only: ${missing.join(", ")}`);

  const context = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const page = await newPage(context, "en");

  step = "open the portal";
  const response = await page.goto(url);
  const csp = response.headers()["content-security-policy"] || "";
  if (!csp.includes("script-src 'self'") || csp.includes("unsafe-inline") || !csp.includes("frame-ancestors 'none'"))
    throw new Error(`the page's Content-Security-Policy is not strict: "${csp}"`);
  await page.waitForFunction(() => document.body.dataset.ready === "true");
  if ((await heading(page)) !== en["home.title"]) throw new Error(`home heading: ${await heading(page)}`);
  if ((await page.getAttribute("html", "lang")) !== "en") throw new Error("the page is not in English for an en-US browser");

  step = "a signed-out visitor typing a staff URL is sent to sign in";
  await go(page, "#/staff/verify", "/sign-in?next=%2Fstaff%2Fverify");
  if ((await heading(page)) !== en["signin.title"]) throw new Error("no sign-in page for a staff URL");

  step = "register";
  await go(page, "#/register");
  await page.fill("#name", "Portal Person");
  await page.fill("#email", citizenEmail);
  await page.fill("#password", "short");
  await page.click("#register-form button[type=submit]");
  await waitForText(page, "#register-error", "10 characters");  // the server's detail, next to the action
  await page.fill("#password", PASSWORD);
  await page.fill("#phone", "+1-555-0199");
  await page.fill("#address", "1 Portal Lane");
  await page.click("#register-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("main").dataset.rendered === "/profile?registered=1");
  await waitForText(page, "#verification", en["profile.identity_unverified"]);

  step = "a citizen typing a staff URL is refused, and given no data";
  await citizenRefusedEverywhere(page);

  step = "the front desk (only its tools) finds and verifies the citizen";
  const staffContext = await browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 900 } });
  const staffPage = await newPage(staffContext, "staff");
  await staffPage.goto(url);
  await staffPage.waitForFunction(() => document.body.dataset.ready === "true");
  await signIn(staffPage, clerkEmail, staffPassword);
  await checkAccess(staffPage, "front desk");
  step = "the front desk finds and verifies the citizen";
  await go(staffPage, "#/staff/citizens");
  await staffPage.fill("#q", citizenEmail);
  await staffPage.click("#find-form button[type=submit]");
  await staffPage.locator("#citizens a").first().waitFor();
  await staffPage.click("#citizens a");
  await staffPage.locator("#citizen").waitFor();
  const citizenId = Number((await staffPage.evaluate(() => location.hash)).split("/").pop());
  await staffPage.getByRole("button", { name: en["staff.desk.verify_identity"] }).click();
  await waitForText(staffPage, "#identity", en["staff.yes"]);
  lastPage = page;
  await go(page, "#/profile");
  await waitForText(page, "#verification", en["profile.identity_verified"]);

  step = "the profile: a phone change";
  await page.fill("#phone", "+1-555-0142");
  await page.click("#profile-form button[type=submit]");
  await waitForText(page, "#profile-saved", en["profile.saved"]);

  step = "the permit types with their fees";
  await go(page, "#/permits");
  await waitForText(page, '#permit-types tr[data-type="renovation"]', "$50.00");
  await waitForText(page, '#permit-types tr[data-type="building"]', "$150.00");

  step = "apply for a priced permit";
  await page.click('#permit-types tr[data-type="renovation"] a');
  await page.waitForFunction(() => document.getElementById("main").dataset.rendered === "/permits/apply?type=renovation");
  await page.selectOption("#department_code", department);
  await page.fill("#description", "New kitchen window");
  await page.fill("#property_address", "1 Portal Lane");
  await page.click("#apply-form button[type=submit]");
  await page.locator("#pay-form").waitFor();
  const applicationId = (await page.evaluate(() => location.hash)).split("/").pop();
  await waitForText(page, "#application-status", en["status.fee_due"]);
  await waitForText(page, "#card_token-hint", "tok_declined");  // demo mode explains the tokens

  step = "a declined card";
  await page.fill("#card_token", "tok_declined");
  await page.click("#pay-form button[type=submit]");
  await waitForText(page, "#pay-error", "declined");

  step = "a card that pays";
  await page.fill("#card_token", "tok_ok");
  await page.click("#pay-form button[type=submit]");
  await waitForText(page, "#paid", "$50.00");
  const receiptHref = await page.locator("#paid a").getAttribute("href");

  step = "the application goes under review";
  for (let tries = 0; ; ++tries) {
    await go(page, `#/applications/${applicationId}`);
    if ((await page.locator("#application-status").textContent()).trim() === en["status.under_review"]) break;
    if (tries > 40) throw new Error("the paid application never went under review");
    await page.waitForTimeout(250);
  }

  step = "the receipt";
  await go(page, receiptHref);
  await waitForText(page, "#receipt", "$50.00");

  step = "the reviewer (only the queue) schedules an inspection, records it passed, approves";
  await signIn(staffPage, reviewerEmail, staffPassword);
  await checkAccess(staffPage, "permits reviewer");
  step = "the reviewer: an inspection scheduled and recorded";
  await go(staffPage, "#/staff/applications");
  await staffPage.click(`#queue li[data-application="${applicationId}"] a`);
  await staffPage.locator("#decision-form").waitFor();
  await waitForText(staffPage, "#inspections", en["staff.inspections.none"]);
  await staffPage.fill("#scheduled_for", "2020-01-01T10:00");
  await staffPage.click("#schedule-form button[type=submit]");
  await waitForText(staffPage, "#schedule-error", "scheduled_for");  // the server's detail: not in the past
  const inspectionDay = new Date(Date.now() + 5 * 86400000).toISOString().slice(0, 10);
  await staffPage.fill("#scheduled_for", `${inspectionDay}T10:00`);
  await staffPage.click("#schedule-form button[type=submit]");
  await waitForText(staffPage, "#inspection-list li .inspection-status", en["staff.inspections.status_scheduled"]);
  await staffPage.locator("#inspection-list li form textarea").fill("Window fitted as drawn");
  await staffPage.locator("#inspection-list li form button[type=submit]").click();
  await waitForText(staffPage, "#inspection-list li .inspection-status", en["staff.inspections.status_passed"]);
  await waitForText(staffPage, "#inspection-list li", "Window fitted as drawn");
  step = "the reviewer approves";
  await staffPage.fill("#reason", "fine");
  await staffPage.click("#decision-form button[type=submit]");
  await waitForText(staffPage, "#decided", en["status.approved"]);
  lastPage = page;

  step = "the permit page";
  await go(page, `#/applications/${applicationId}`);
  await page.click("#permit-link");
  await page.locator("#permit").waitFor();
  const permitHash = await page.evaluate(() => location.hash);
  await waitForText(page, "#permit-status", en["permit.status_active"]);
  await waitForText(page, "#permit", "Portal Person");

  step = "a second application left with its fee due";
  await go(page, "#/permits/apply?type=building");
  await page.selectOption("#department_code", department);
  await page.fill("#description", "A shed");
  await page.fill("#property_address", "1 Portal Lane");
  await page.click("#apply-form button[type=submit]");
  await page.locator("#pay-form").waitFor();
  const unpaidHash = await page.evaluate(() => location.hash);

  step = "money: the invoices";
  await go(page, "#/money");
  await waitForText(page, "#invoices tbody", en["invoice.status_paid"]);
  await waitForText(page, "#invoices tbody", en["invoice.status_open"]);
  const paidInvoiceHash = await page.locator("#invoices tbody tr", { hasText: en["invoice.status_paid"] }).locator("a").getAttribute("href");
  const openInvoiceHash = await page.locator("#invoices tbody tr", { hasText: en["invoice.status_open"] }).locator("a").getAttribute("href");
  await go(page, paidInvoiceHash);
  await waitForText(page, "#payments", en["payment.status_failed"]);
  await waitForText(page, "#payments", en["payment.status_completed"]);

  step = "money: apply for a business licence";
  await go(page, "#/licences/apply");
  await page.fill("#business_name", "Portal Bakery");
  await page.fill("#activity", "Bakery");
  await page.fill("#address", "1 Portal Lane");
  await page.click("#licence-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("main").dataset.rendered === "/money");
  await waitForText(page, "#licences", en["licence.status_applied"]);

  step = "money: the revenue clerk (only licences) approves the licence";
  const licenceId = Number(await page.locator("#licences [data-licence]").first().getAttribute("data-licence"));
  await signIn(staffPage, revenueEmail, staffPassword);
  await checkAccess(staffPage, "revenue clerk");
  step = "money: the revenue clerk approves the licence";
  await go(staffPage, "#/staff/licences");
  await staffPage.click(`#licences-queue a[href="#/staff/licences/${licenceId}"]`);
  await staffPage.locator("#decision-form").waitFor();
  await staffPage.click("#decision-form button[type=submit]");
  await waitForText(staffPage, "#decided", en["licence.status_approved_unpaid"]);
  lastPage = page;

  step = "money: the revenue clerk records the citizen's property tax, billed in two instalments";
  const taxDue = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10);
  await go(staffPage, "#/staff/tax-records");
  await staffPage.fill("#citizen_id", String(citizenId));
  await staffPage.fill("#tax_year", "2026");
  await staffPage.fill("#assessed_value", "325000");
  await staffPage.fill("#tax_due", "4062.50");
  await staffPage.fill("#due_date", taxDue);
  await staffPage.fill("#instalments", "2");
  await staffPage.click("#tax-form button[type=submit]");
  await waitForText(staffPage, "#tax-done", "2");
  lastPage = page;

  step = "money: the citizen pays the licence's fee";
  await go(page, "#/money");
  await waitForText(page, `[data-licence="${licenceId}"]`, en["licence.status_approved_unpaid"]);
  await page.click(`[data-licence="${licenceId}"] a.button`);
  await page.locator("#pay-form").waitFor();
  await page.fill("#card_token", "tok_ok");
  await page.click("#pay-form button[type=submit]");
  await page.locator("#paid").waitFor();

  step = "money: the licence is active with an expiry, then renewed";
  for (let tries = 0; ; ++tries) {
    await go(page, "#/money");
    if (await page.locator(`[data-licence="${licenceId}"] [data-renew]`).count()) break;
    if (tries > 40) throw new Error("the paid licence never became renewable");
    await page.waitForTimeout(250);
  }
  await waitForText(page, `[data-licence="${licenceId}"]`, en["licence.status_active"]);
  await waitForText(page, `[data-licence="${licenceId}"]`, en["licence.expires"]);
  await waitForText(page, "#tax-records", "$4,062.50");
  await page.click(`[data-licence="${licenceId}"] [data-renew]`);
  await page.locator("#pay-form").waitFor();  // the next term's invoice

  step = "money: the citizen pays the first tax instalment";
  await go(page, "#/money");
  const instalmentHash = await page.locator("#invoices tbody tr", { hasText: "Property tax" }).first().locator("a").getAttribute("href");
  await go(page, instalmentHash);
  await page.fill("#card_token", "tok_ok");
  await page.click("#pay-form button[type=submit]");
  await page.locator("#paid").waitFor();
  const instalmentId = Number(instalmentHash.split("/").pop());

  step = "money: the revenue clerk refunds it, saying why";
  await go(staffPage, `#/staff/invoices/${instalmentId}`);
  const refundForm = staffPage.locator("#payments li form");
  await refundForm.locator("button[type=submit]").click();
  await waitForText(staffPage, "#payments li .error", "reason");  // the server's detail, beside the action
  await refundForm.locator("input").fill("Paid twice at the counter");
  await refundForm.locator("button[type=submit]").click();
  await waitForText(staffPage, "#payments li", en["staff.refund.done"]);
  await waitForText(staffPage, "#invoice-status", en["invoice.status_refunded"]);
  lastPage = page;
  await go(page, instalmentHash);
  await waitForText(page, "#invoice-status", en["invoice.status_refunded"]);

  step = "the inbox: the unread count, marking one read";
  await page.waitForFunction(() => /\(\d+/.test(document.querySelector('#nav a[href="#/inbox"]')?.textContent || ""));
  await go(page, "#/inbox");
  await page.locator("#notices li.unread").first().waitFor();
  const unreadBefore = await page.locator("#notices li.unread").count();
  await page.locator("#notices li.unread button").first().click();
  await page.waitForFunction((count) => document.querySelectorAll("#notices li.unread").length === count - 1, unreadBefore);

  step = "the inbox: no email for new invoices";
  await go(page, "#/inbox/preferences");
  await page.uncheck("#kind-invoice_opened");
  await page.click("#prefs-form button[type=submit]");
  await waitForText(page, "#prefs-saved", en["prefs.saved"]);

  step = "parks: the court's week in its zone";
  const zone = "America/New_York";
  const dayInZone = (offset) => new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date(Date.now() + offset * 86400000));
  const slotStart = (day, hour) => {
    const [year, month, date] = day.split("-").map(Number);
    return new Date(Date.UTC(year, month - 1, date, hour) - offsetMinutes(day, zone) * 60000).toISOString();
  };
  const bookedStart = slotStart(dayInZone(3), 10);  // more than refund_cutoff_hours ahead
  await go(page, "#/parks");
  const court = await page.locator("#facilities li", { hasText: "tennis court" }).getAttribute("data-facility");
  await page.click(`#facilities li[data-facility="${court}"] a`);
  await page.locator(`#week button.slot.free[data-start="${bookedStart}"]`).waitFor();
  const weekHash = await page.evaluate(() => location.hash);

  step = "parks: book the priced court, pay within the hold";
  await page.click(`#week button.slot.free[data-start="${bookedStart}"]`);
  await page.locator("#pay-form").waitFor();
  await page.waitForFunction(() => /^\d+:\d\d$/.test(document.getElementById("countdown")?.textContent || ""));
  const bookingHash = await page.evaluate(() => location.hash);
  await page.fill("#card_token", "tok_ok");
  await page.click("#pay-form button[type=submit]");
  await page.locator("#paid").waitFor();
  for (let tries = 0; ; ++tries) {
    await go(page, bookingHash);
    if ((await page.locator("#booking-status").textContent()).trim() === en["parks.booking_confirmed"]) break;
    if (tries > 40) throw new Error("the paid booking was never confirmed");
    await page.waitForTimeout(250);
  }
  // The server's week now shows the hour taken.
  await go(page, weekHash);
  await page.locator(`#week span.slot.taken[data-start="${bookedStart}"]`).waitFor();
  await go(page, bookingHash);

  step = "parks: cancel, the refund shown";
  await page.click("#cancel");
  await waitForText(page, "#refund", en["parks.refund_full"].split("{amount}")[1].trim());
  await waitForText(page, "#booking-status", en["parks.booking_cancelled"]);

  step = "parks: enrol in the priced program, held for payment, then cancelled";
  await go(page, "#/parks");
  await page.locator("#programs li[data-program] button").first().click();
  await page.locator("#pay-form").waitFor();
  const enrollmentHash = await page.evaluate(() => location.hash);
  await waitForText(page, "#enrollment-status", en["parks.enrollment_pending_payment"]);
  await page.click("#cancel");
  await waitForText(page, "#refund", en["parks.cancelled_unpaid"]);

  step = "parks: a full program (another citizen holds its one place)";
  const adminToken = await token(adminEmail, staffPassword);
  const pottery = await call("POST", "/api/v1/parks/programs", { name: "Pottery evening", schedule: "Thursdays 18:00-20:00", capacity: 1, price_cents: 0 }, adminToken);
  await call("POST", "/api/v1/auth/register", { name: "Filler Person", email: "filler@example.org", password: PASSWORD });
  const fillerToken = await token("filler@example.org", PASSWORD);
  const fillerPlace = await call("POST", `/api/v1/parks/programs/${pottery.id}/enrollments`, undefined, fillerToken);
  if (fillerPlace.status !== "enrolled") throw new Error(`the filler's place is ${fillerPlace.status}`);

  step = "parks: enrol in the full program, waitlisted";
  await go(page, "#/parks");
  await waitForText(page, `#programs li[data-program="${pottery.id}"]`, en["parks.full"].replace("{count}", "0"));
  await page.locator(`#programs li[data-program="${pottery.id}"] button`).click();
  await waitForText(page, "#enrollment-status", en["parks.enrollment_waitlisted"]);
  await waitForText(page, "#position", "1");
  const waitlistedHash = await page.evaluate(() => location.hash);

  step = "parks: a place frees, the waitlisted citizen is promoted";
  await call("DELETE", `/api/v1/parks/enrollments/${fillerPlace.id}`, undefined, fillerToken);
  await go(page, waitlistedHash);
  await waitForText(page, "#enrollment-status", en["parks.enrollment_enrolled"]);

  step = "the inbox shows the promotion";
  for (let tries = 0; ; ++tries) {
    await go(page, "#/inbox");
    if (await page.locator("#notices li", { hasText: "Pottery evening" }).count()) break;
    if (tries > 40) throw new Error("no notice of the promotion reached the inbox");
    await page.waitForTimeout(250);
  }
  await waitForText(page, "#notices li", en["kind.enrollment_promoted"]);

  step = "parks: the citizen's own enrolments";
  await go(page, "#/parks");
  await waitForText(page, `#my-enrollments li[data-enrollment="${waitlistedHash.split("/").pop()}"]`, "Pottery evening");

  step = "parks staff (only parks tools)";
  await signIn(staffPage, parksEmail, staffPassword);
  await checkAccess(staffPage, "parks staff");
  step = "parks staff: the full program's enrolments";
  await go(staffPage, "#/staff/programs");
  await staffPage.click(`#staff-programs tr[data-program="${pottery.id}"] a`);
  await waitForText(staffPage, `#program-enrollments tr[data-enrollment="${waitlistedHash.split("/").pop()}"]`, en["parks.enrollment_enrolled"]);
  await waitForText(staffPage, `#program-enrollments tr[data-enrollment="${fillerPlace.id}"]`, en["parks.enrollment_cancelled"]);
  step = "parks staff: a new program (a priced one needs its first meeting)";
  await go(staffPage, "#/staff/programs");
  await staffPage.fill("#program-name", "Chess club");
  await staffPage.fill("#program-schedule", "Saturdays 10:00-12:00");
  await staffPage.fill("#program-capacity", "2");
  await staffPage.fill("#program-price", "15");
  await staffPage.click("#program-form button[type=submit]");
  await waitForText(staffPage, "#program-error", "starts_at");  // the server's detail
  await staffPage.fill("#program-price", "0");
  await staffPage.click("#program-form button[type=submit]");
  await waitForText(staffPage, "h1", "Chess club");
  const chess = (await call("GET", "/api/v1/parks/programs?page_size=100")).items.find((program) => program.name === "Chess club");
  if (!chess || chess.capacity !== 2 || chess.price_cents !== 0 || chess.schedule !== "Saturdays 10:00-12:00")
    throw new Error(`the program the page created is ${JSON.stringify(chess)}`);

  step = "parks staff: a facility's opening hours";
  await go(staffPage, "#/staff/facilities");
  const fieldId = await staffPage.locator("#staff-facilities tbody tr", { hasText: "soccer field" }).getAttribute("data-facility");
  await staffPage.click(`#staff-facilities tr[data-facility="${fieldId}"] a`);
  await staffPage.locator("#hours-form").waitFor();
  await staffPage.fill("#mon-open", "09:15");
  await staffPage.click("#hours-form button[type=submit]");
  await waitForText(staffPage, "#hours-error", "half hour");  // the server's detail
  await staffPage.fill("#mon-open", "09:00");
  await staffPage.fill("#sun-open", "");
  await staffPage.fill("#sun-close", "");
  await staffPage.click("#hours-form button[type=submit]");
  await waitForText(staffPage, "#hours-saved", en["staff.facilities.saved"]);
  lastPage = page;

  step = "a 503 names the service that is down";
  expectedStatus = /status of (4\d\d|503)/;
  await page.route("**/api/v1/permits/**", (route) =>
    route.fulfill({
      status: 503,
      contentType: "application/problem+json",
      body: JSON.stringify({ type: "module-unavailable", title: "Service Unavailable", status: 503, detail: "the permits module is unavailable; see /readyz" }),
    }),
  );
  await go(page, "#/permits");
  await waitForText(page, "#main .error", en["error.unavailable"].replace("{service}", en["service.permits"]));
  await page.unroute("**/api/v1/permits/**");
  expectedStatus = /status of 4\d\d/;

  step = "an ended session returns to sign-in and back";
  await page.evaluate(() => {
    const stored = JSON.parse(sessionStorage.getItem("townhall.portal.session"));
    stored.token = "ended-session-token";
    sessionStorage.setItem("townhall.portal.session", JSON.stringify(stored));
  });
  await go(page, "#/profile", "/sign-in?next=%2Fprofile&expired=1");
  await page.fill("#email", citizenEmail);
  await page.fill("#password", PASSWORD);
  await page.click("#sign-in-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("main").dataset.rendered === "/profile");

  step = "the language: chosen, remembered";
  await page.selectOption("#language", "fr");
  await page.waitForFunction((title) => document.getElementById("page-heading").textContent === title, fr["profile.title"]);
  await page.reload();
  await page.waitForFunction((title) => document.getElementById("page-heading")?.textContent === title, fr["profile.title"]);
  if ((await page.getAttribute("html", "lang")) !== "fr") throw new Error("html lang is not fr after switching");

  step = "every page in both languages";
  const pages = [
    ["home", "#/"],
    ["permits", "#/permits"],
    ["apply", "#/permits/apply?type=renovation"],
    ["application-fee-due", unpaidHash],
    ["application-approved", `#/applications/${applicationId}`],
    ["receipt", receiptHref],
    ["permit", permitHash],
    ["money", "#/money"],
    ["invoice-paid", paidInvoiceHash],
    ["invoice-open", openInvoiceHash],
    ["licence-apply", "#/licences/apply"],
    ["inbox", "#/inbox"],
    ["email-preferences", "#/inbox/preferences"],
    ["parks", "#/parks"],
    ["parks-week", weekHash],
    ["parks-bookings", "#/parks/bookings"],
    ["parks-booking", bookingHash],
    ["parks-enrollment", enrollmentHash],
    ["parks-enrollment-promoted", waitlistedHash],
    ["profile", "#/profile"],
    ["sessions", "#/sessions"],
    ["forbidden", "#/staff"],
    ["not-found", "#/no-such-page"],
    ["sign-in", "#/sign-in"],
    ["register", "#/register"],
  ];
  for (const language of ["fr", "en"]) {
    await page.selectOption("#language", language);
    for (const [name, hash] of pages) {
      step = `open ${name} (${language})`;
      await go(page, hash);
      if (name === "application-fee-due" || name === "invoice-open") await page.locator("#pay-form").waitFor();
      await audit(page, name, language);
    }
  }

  step = "every staff page in both languages (as an administrator, who has every tool)";
  await signIn(staffPage, adminEmail, staffPassword);
  await checkAccess(staffPage, "admin");
  const staffPages = [
    ["staff-home", "#/staff"],
    ["staff-find-citizen", `#/staff/citizens?q=${encodeURIComponent(citizenEmail)}`],
    ["staff-citizen", `#/staff/citizens/${citizenId}`],
    ["staff-queue", "#/staff/applications"],
    ["staff-application", `#/staff/applications/${applicationId}`],
    ["staff-licences", "#/staff/licences"],
    ["staff-licence", `#/staff/licences/${licenceId}`],
    ["staff-invoices", "#/staff/invoices"],
    ["staff-tax-record", "#/staff/tax-records"],
    ["staff-bookings", "#/staff/bookings"],
    ["staff-invoice-refunded", `#/staff/invoices/${instalmentId}`],
    ["staff-invoice-refundable", `#/staff/invoices/${paidInvoiceHash.split("/").pop()}`],
    ["staff-facilities", "#/staff/facilities"],
    ["staff-facility-hours", `#/staff/facilities/${fieldId}`],
    ["staff-programs", "#/staff/programs"],
    ["staff-program", `#/staff/programs/${pottery.id}`],
  ];
  for (const language of ["fr", "en"]) {
    await staffPage.selectOption("#language", language);
    for (const [name, hash] of staffPages) {
      step = `open ${name} (${language})`;
      await go(staffPage, hash);
      await audit(staffPage, name, language);
    }
  }
  lastPage = page;

  step = "the profile: a name change needs verification again";
  await go(page, "#/profile");
  await page.fill("#name", "Portal Person-Renamed");
  await page.click("#profile-form button[type=submit]");
  await waitForText(page, "#profile-saved", en["profile.saved_reverify"]);
  await waitForText(page, "#verification", en["profile.identity_unverified"]);

  step = "sign out";
  await page.click("#sign-out");
  await page.waitForFunction(() => document.getElementById("main").dataset.rendered === "/");
  if (await page.locator("#sign-out").count()) throw new Error("still signed in after signing out");
  if (await page.evaluate(() => sessionStorage.getItem("townhall.portal.session"))) throw new Error("the token outlived sign-out");

  step = "a French browser gets French";
  const french = await browser.newContext({ locale: "fr-FR" });
  const frenchPage = await newPage(french, "fr");
  await frenchPage.goto(url);
  await frenchPage.waitForFunction(() => document.body.dataset.ready === "true");
  if ((await heading(frenchPage)) !== fr["home.title"]) throw new Error(`a French browser got "${await heading(frenchPage)}"`);
  await audit(frenchPage, "home-browser-french", "fr");

  if (problems.length) throw new Error(problems.join("\n"));
  // What the calling test checks on the server.
  const ids = {
    citizen_id: citizenId,
    application_id: Number(applicationId),
    unpaid_application_id: Number(unpaidHash.split("/").pop()),
    licence_id: licenceId,
    booking_id: Number(bookingHash.split("/").pop()),
    enrollment_id: Number(enrollmentHash.split("/").pop()),
    promoted_enrollment_id: Number(waitlistedHash.split("/").pop()),
    program_id: pottery.id,
    refunded_invoice_id: instalmentId,
    field_id: Number(fieldId),
  };
  writeFileSync(`${artifacts}/journey.json`, JSON.stringify(ids));
  process.stdout.write("portal: every step passed\n");
} catch (error) {
  console.error(`portal: FAILED at "${step}": ${error.message}`);
  if (lastPage) {
    const shown = await lastPage.evaluate(() => `${location.hash}\n${document.getElementById("main")?.innerText}`).catch(() => "");
    console.error(`the page was at ${shown}`);
    await lastPage.screenshot({ path: `${artifacts}/failure.png`, fullPage: true }).catch(() => {});
  }
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
