/* What the pages share: JSON requests, plain-language errors, the connection
 * badge, dates, and loading the next page of a list on scroll.
 *
 * Plain ES module, no build step.  Server data is only ever written with
 * textContent / attributes, never parsed as HTML.
 */

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function time(value) {
  const t = Date.parse(value);
  return Number.isNaN(t) ? 0 : t;
}

export function formatDate(value) {
  const t = time(value);
  if (!t) return "";
  const d = new Date(t);
  return d.toDateString() === new Date().toDateString()
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (match) return decodeURIComponent(match[1]);
  // The logout form always carries a token.
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

export function goToLogin() {
  const login = document.body.dataset.loginUrl || "/accounts/login/";
  location.assign(`${login}?next=${encodeURIComponent(location.pathname + location.search)}`);
}

/** A JSON request; resolves to {ok, status, data} and never rejects. */
export async function api(method, url, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.headers["X-CSRFToken"] = csrfToken();
    options.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, options);
  } catch (e) {
    return { ok: false, status: 0, data: null };
  }
  let data = null;
  try {
    const text = await res.text();
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (res.status === 401) goToLogin();
  return { ok: res.ok, status: res.status, data };
}

/**
 * What to tell a person when a request failed.  The API's own messages are
 * precise and meant for developers ("Send the amount as a string like
 * …"); the page says it plainly.  ``fields`` maps a field the API names to
 * the sentence for it; ``fallback`` is for any other refusal.
 */
export function plainError(result, { fields = {}, fallback, busy } = {}) {
  switch (result.status) {
    case 0:
      return "Could not reach the server. Check your connection and try again.";
    case 403:
      return "Your session has expired. Reload the page and try again.";
    case 413:
      return "That is too much to send at once. Send less, in several goes.";
    case 429:
      return busy || "Too many requests at once. Wait a minute, then try again.";
  }
  if (result.status === 400) {
    const named = result.data && result.data.fields ? Object.keys(result.data.fields) : [];
    const known = named.find((name) => fields[name]);
    if (known) return fields[known];
    return fallback || "That could not be accepted. Check what you entered and try again.";
  }
  return "Something went wrong on our side. Please try again in a moment.";
}

/** The header's "Live" badge, following the socket; a signed-out socket goes to the login page. */
export function bindConnection(socket) {
  const badge = document.getElementById("connection");
  const show = (state) => {
    if (state === "signed-out") {
      goToLogin();
      return;
    }
    if (!badge) return;
    const text = { open: "Live", connecting: "Connecting…", closed: "Reconnecting…" }[state] || "Reconnecting…";
    badge.dataset.state = state === "open" ? "open" : "closed";
    badge.querySelector(".connection-text").textContent = text;
  };
  socket.addEventListener("state", (event) => show(event.detail.state));
  if (socket.state === "open" || socket.state === "signed-out") show(socket.state);
}

/**
 * A list's "show more": the next page is loaded when the button is clicked,
 * or when it scrolls into view.  ``load(url)`` returns a promise of the
 * next page's URL, or null at the end.
 */
export class Pager {
  constructor(button, load) {
    this.button = button;
    this.load = load;
    this.next = null;
    this.loading = false;
    button.addEventListener("click", () => this.more());
    if ("IntersectionObserver" in window) {
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.more();
      }, { rootMargin: "0px 0px 200px 0px" });
      this.observer.observe(button);
    }
  }

  setNext(url) {
    this.next = url || null;
    this.button.hidden = !this.next;
  }

  async more() {
    if (!this.next || this.loading) return;
    this.loading = true;
    this.button.disabled = true;
    this.button.setAttribute("aria-busy", "true");
    try {
      this.setNext(await this.load(this.next));
    } finally {
      this.loading = false;
      this.button.disabled = false;
      this.button.removeAttribute("aria-busy");
    }
    // Still in view (a tall screen): the observer will not fire again by itself.
    if (this.next && this.inView()) this.more();
  }

  inView() {
    if (this.button.hidden) return false;
    const box = this.button.getBoundingClientRect();
    return box.top < window.innerHeight + 200 && box.bottom > 0;
  }
}
