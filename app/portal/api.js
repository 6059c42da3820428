// The JSON API under /api/v1 with the signed-in token. A failure becomes an ApiError whose
// message is what to show: the server's problem+json `detail`, or for a 503 which service
// is down (and that the rest works). A 401 on a signed-in call means the session ended:
// the session is dropped and onSessionEnded sends the user to sign in and back.
import { t } from "./i18n.js";

const SESSION_KEY = "townhall.portal.session";
let onSessionEnded = () => {};

export class ApiError extends Error {
  constructor(status, message, problem) {
    super(message);
    this.status = status;
    this.problem = problem;
  }
}

export function session() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
    if (stored && Date.parse(stored.expires_at) > Date.now()) return stored;
  } catch {
    // a damaged entry is no session
  }
  return null;
}

export function saveSession(login) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(login));
}

export function dropSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

export function whenSessionEnds(handler) {
  onSessionEnded = handler;
}

const SERVICES = ["auth", "permits", "revenue", "parks", "notify"];

function unavailableMessage(path, problem) {
  const named = /the (\w+) module is unavailable/.exec(problem?.detail || "");
  const fromPath = /^\/api\/v1\/(\w+)\//.exec(path);
  const module = named?.[1] || fromPath?.[1];
  const service = SERVICES.includes(module) ? t(`service.${module}`) : t("service.unknown");
  return t("error.unavailable", { service });
}

// api("POST", "/api/v1/auth/login", {email, password}) → the parsed answer (null for 204).
export async function api(method, path, body, { headers = {}, signedIn = true } = {}) {
  const current = signedIn ? session() : null;
  const request = { method, headers: { Accept: "application/json", ...headers } };
  if (current) request.headers.Authorization = `Bearer ${current.token}`;
  if (body !== undefined) {
    request.headers["Content-Type"] = "application/json";
    request.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, request);
  } catch {
    throw new ApiError(0, t("error.network"));
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (response.ok) return parsed;
  if (response.status === 401 && current) {
    dropSession();
    onSessionEnded();
    throw new ApiError(401, t("error.session_ended"), parsed);
  }
  if (response.status === 503) throw new ApiError(503, unavailableMessage(path, parsed), parsed);
  if (response.status === 429) throw new ApiError(429, parsed?.detail || t("error.busy"), parsed);
  throw new ApiError(response.status, parsed?.detail || t("error.unexpected", { status: response.status }), parsed);
}

// Every item of a paginated list (a few pages at most in the portal's lists).
export async function listAll(path, limit = 5) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < limit; ++page) {
    const separator = path.includes("?") ? "&" : "?";
    const answer = await api("GET", cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path);
    items.push(...answer.items);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return items;
}
