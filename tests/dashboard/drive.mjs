// Drives the operator dashboard in a real browser (Debian's Chromium through
// playwright-core; no browser download) against a live server, as an operator would:
// a non-admin is turned away, the admin signs in, sees the modules, feeds, chart and
// graph, replays one dead letter, discards another and runs a consistency check, then a
// repairing one. The
// calling test (tests/integration/dashboard_test.cpp) then checks the server's state.
//
// usage: node drive.mjs <dashboard url> <admin email> <admin password> <clerk email>
//                       <clerk password> <letter to replay> <letter to discard> [screenshot.png]
// Letters are "<module>/<id>". Exit 0 when every step passed; 1 with the failed step.
import { chromium } from "playwright-core";

const [url, adminEmail, adminPassword, clerkEmail, clerkPassword, replayLetter, discardLetter, screenshot] =
  process.argv.slice(2);
if (!discardLetter) {
  console.error("usage: node drive.mjs URL ADMIN_EMAIL ADMIN_PASSWORD CLERK_EMAIL CLERK_PASSWORD REPLAY DISCARD [PNG]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 15000;

const problems = [];
let step = "launch";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT);
  // A CSP violation or a script error is a failure: the page must work under its policy.
  page.on("console", (message) => {
    if (message.type() === "error" && !/status of 4\d\d/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

  step = "open the dashboard";
  const response = await page.goto(url);
  const csp = response.headers()["content-security-policy"] || "";
  if (!csp.includes("script-src 'self'") || csp.includes("unsafe-inline") || !csp.includes("frame-ancestors 'none'"))
    throw new Error(`the page's Content-Security-Policy is not strict: "${csp}"`);
  await page.locator("#sign-in").waitFor();

  step = "a non-admin is turned away";
  await page.fill("#email", clerkEmail);
  await page.fill("#password", clerkPassword);
  await page.click("#sign-in button[type=submit]");
  await page.locator("#sign-in-error", { hasText: "not an administrator" }).waitFor();
  if (await page.locator("#console").isVisible()) throw new Error("the console is shown to a non-admin");

  step = "a wrong password is refused";
  await page.fill("#email", adminEmail);
  await page.fill("#password", adminPassword + "x");
  await page.click("#sign-in button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#sign-in-error").textContent.trim().length > 0);
  if (await page.locator("#console").isVisible()) throw new Error("the console is shown after a failed sign-in");

  step = "the admin signs in";
  await page.fill("#password", adminPassword);
  await page.click("#sign-in button[type=submit]");
  await page.locator("#console").waitFor();
  await page.locator("#who-name", { hasText: "Signed in as" }).waitFor();

  step = "modules are shown up";
  for (const module of ["auth", "permits", "revenue", "parks"])
    await page.locator(`#modules tr[data-module="${module}"] td.up`).waitFor();

  step = "subscriptions and the lag chart";
  await page.waitForFunction(() => document.querySelectorAll("#feeds tbody tr").length >= 3);
  await page.waitForFunction(() => document.querySelectorAll("#lag-chart polyline").length >= 3);
  await page.check("input[name=lag-unit][value=lag_seconds]");
  await page.waitForFunction(() => document.querySelectorAll("#lag-chart polyline").length >= 3);

  step = "the module graph";
  await page.waitForFunction(() => document.querySelectorAll("#graph g.node").length === 5);
  await page.waitForFunction(() => document.querySelectorAll('#graph path[data-edge="auth->permits:events"]').length === 1);

  step = "show a dead letter";
  const replayRow = page.locator(`#dead-letters tr[data-letter="${replayLetter}"]`);
  const discardRow = page.locator(`#dead-letters tr[data-letter="${discardLetter}"]`);
  await replayRow.waitFor();
  await discardRow.waitFor();
  await replayRow.getByRole("button", { name: "Show" }).click();
  await page.locator("#letter-detail", { hasText: '"event_id"' }).waitFor();

  step = "replay a dead letter";
  await replayRow.getByRole("button", { name: "Replay" }).click();
  await page.locator("#letters-message", { hasText: "replayed" }).waitFor();
  await replayRow.waitFor({ state: "detached" });  // no longer pending

  step = "discard a dead letter (confirmed)";
  page.once("dialog", (dialog) => dialog.accept());
  await discardRow.getByRole("button", { name: "Discard" }).click();
  await page.locator("#letters-message", { hasText: "discarded" }).waitFor();
  await discardRow.waitFor({ state: "detached" });

  step = "the replayed letter is listed as replayed";
  await page.selectOption("#letter-state", "all");
  await page.locator(`#dead-letters tr[data-letter="${replayLetter}"] td`, { hasText: /^replayed$/ }).waitFor();
  await page.locator(`#dead-letters tr[data-letter="${discardLetter}"] td`, { hasText: /^discarded$/ }).waitFor();

  // The replayed letter's citizen is not in auth (the letters are made up for the test):
  // the check finds it as the one extra row, and the repair removes it.
  step = "run a consistency check";
  await page.click("#check-now");
  await page.locator("#check-message", { hasText: "Done." }).waitFor();
  await page.locator("#check-summary", { hasText: "NOT consistent" }).waitFor();
  await page.locator("#check-summary", { hasText: "extra 1," }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll("#check-caches tbody tr").length >= 3);

  step = "run a check with repair";
  await page.click("#check-repair");
  await page.locator("#check-summary", { hasText: /^Consistent.*repaired 1 /s }).waitFor();

  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  step = "sign out";
  await page.click("#sign-out");
  await page.locator("#sign-in").waitFor();
  if (await page.locator("#console").isVisible()) throw new Error("the console is still shown after signing out");

  if (problems.length) throw new Error(problems.join("\n"));
  console.log("dashboard: every step passed");
} catch (error) {
  console.error(`dashboard: FAILED at "${step}": ${error.message}`);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
