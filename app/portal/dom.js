// Building the page from data without innerHTML: every value becomes a text node, so
// nothing a server or a user wrote can turn into markup (and the CSP forbids inline code).

// h("p", {class: "note", id: "x"}, "text", child, [more children]) → an element.
// Attributes: onX is a listener, `for` the label's target, false/null leave it out.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "value") element.value = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// A labelled input: the label, the control and an optional hint it is described by.
export function field({ id, label, type = "text", value = "", required = false, autocomplete, hint, attributes = {} }) {
  const hintId = hint ? `${id}-hint` : null;
  const control =
    type === "textarea"
      ? h("textarea", { id, name: id, required, "aria-describedby": hintId, ...attributes }, value ?? "")
      : h("input", { id, name: id, type, value: value ?? "", required, autocomplete, "aria-describedby": hintId, ...attributes });
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("p", { class: "hint", id: hintId }, hint) : null);
}

// A definition list of [term, value, ddAttributes?] rows; null rows are left out.
export function details(rows, attributes = {}) {
  return h(
    "dl",
    { class: "details", ...attributes },
    rows.filter(Boolean).map(([term, value, valueAttributes = {}]) => [h("dt", {}, term), h("dd", valueAttributes, value)]),
  );
}

// Where a form's or an action's error is said: next to it, read out when it changes.
export function errorSlot(id) {
  return h("p", { class: "error", id, role: "alert", "aria-live": "assertive" });
}

export function showError(slot, message) {
  slot.textContent = message || "";
}

export function clear(element) {
  while (element.firstChild) element.firstChild.remove();
}
