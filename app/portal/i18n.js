// The message catalogs (one module per language) and formatting with Intl. Every text
// the user sees comes from a catalog; dates and money are formatted in the language
// chosen, in the municipality's (or a facility's) time zone and the record's currency.
import en from "./messages-en.js";
import fr from "./messages-fr.js";

const catalogs = { en, fr };
const STORAGE_KEY = "townhall.portal.language";
let language = "en";
let municipalZone = "UTC";

export const languages = Object.keys(catalogs);

// The stored choice, else the first of the browser's languages we have, else English.
export function chooseLanguage() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    stored = null;  // storage can be off; the browser's languages still count
  }
  const wanted = [stored, ...(navigator.languages || [navigator.language])].filter(Boolean);
  language = wanted.map((tag) => tag.toLowerCase().split("-")[0]).find((tag) => tag in catalogs) || "en";
  document.documentElement.lang = language;
  return language;
}

export function setLanguage(tag) {
  if (!(tag in catalogs)) return;
  language = tag;
  document.documentElement.lang = tag;
  try {
    localStorage.setItem(STORAGE_KEY, tag);
  } catch {
    // not remembered, still switched
  }
}

export function currentLanguage() {
  return language;
}

export function setMunicipalZone(zone) {
  municipalZone = zone || "UTC";
}

// t("key", {name: "x"}) → the current catalog's text with {name} filled in.
export function t(key, params = {}) {
  const text = catalogs[language][key] ?? catalogs.en[key];
  if (text === undefined) throw new Error(`no message "${key}" in the catalog`);
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function money(cents, currency) {
  return new Intl.NumberFormat(language, { style: "currency", currency: currency || "USD" }).format(cents / 100);
}

// A moment (RFC 3339) as a date and time in `zone` (the municipality's unless given).
export function dateTime(iso, zone) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "short", timeZone: zone || municipalZone }).format(
    new Date(iso),
  );
}

export function date(iso, zone) {
  if (!iso) return "—";
  // A bare YYYY-MM-DD is a calendar day: shown as that day wherever the zone is.
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso))
    return new Intl.DateTimeFormat(language, { dateStyle: "long", timeZone: "UTC" }).format(new Date(`${iso}T12:00:00Z`));
  return new Intl.DateTimeFormat(language, { dateStyle: "long", timeZone: zone || municipalZone }).format(new Date(iso));
}

export function zoneName() {
  return municipalZone;
}
