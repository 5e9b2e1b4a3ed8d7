/* Live job progress for any Django template: toasts for "my jobs", bars bound to one job.
 *
 * Rendered by {% job_progress %} (jobs/templatetags/job_progress.py), which
 * loads this module; a page's own module may import it too:
 *
 *   import { statusSocket, widget, JobBar } from "/static/jobs/progress.js";
 *
 * One websocket per page (/ws/status/), shared by every widget, reconnecting
 * by itself with backoff.  On connect the server sends a snapshot of the
 * user's jobs, then a "job" event on every change.  A plain ES module: no
 * build step, no dependencies.  Server text is only ever written with
 * textContent, never parsed as HTML.
 */

const PING_INTERVAL_MS = 25000;
// No frame at all (not even a pong) for this long means the socket is dead.
const STALE_AFTER_MS = PING_INTERVAL_MS * 2 + 5000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 10000;
const CLOSE_UNAUTHENTICATED = 4401;

export const FINAL = new Set(["ok", "failed"]);
const RANK = { pending: 0, running: 1, retrying: 1, ok: 2, failed: 2 };
const TONE = { pending: "info", running: "info", retrying: "warn", ok: "success", failed: "error" };
const STATUS_TEXT = {
  pending: "Queued",
  running: "In progress",
  retrying: "Delayed; trying again",
  ok: "Done",
  failed: "Failed",
};

// Shared by every copy of this module on the page (it may be loaded under
// two URLs): one socket per path, one widget per element.
const shared = (globalThis.__jobProgress ||= { sockets: new Map(), widgets: new WeakMap() });

// --- small helpers ---------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function time(value) {
  const t = Date.parse(value);
  return Number.isNaN(t) ? 0 : t;
}

function clampProgress(value) {
  return Math.max(0, Math.min(100, Math.round(Number(value) || 0)));
}

/** Whether report ``a`` is newer than ``b`` (events can arrive out of order, or twice). */
export function isNewer(a, b) {
  if (!b) return true;
  const ta = time(a.updated_at);
  const tb = time(b.updated_at);
  if (ta !== tb) return ta > tb;
  return (RANK[a.status] ?? 0) > (RANK[b.status] ?? 0) || Number(a.progress) > Number(b.progress);
}

/** "type:id" of the row a job works on, e.g. "orders.order:12". */
export function subjectKey(subject) {
  return subject && subject.type ? `${subject.type}:${subject.id}` : "";
}

function fill(template, subject) {
  return template ? template.replaceAll("{id}", encodeURIComponent(String(subject?.id ?? ""))) : "";
}

/**
 * What a job says to a person.  The job's message, except while it waits to
 * retry: that message carries the error that caused the wait (a vendor's
 * words), so the sentence is made here from the retry's time instead.
 */
export function describe(job, message) {
  if (job.status === "retrying") {
    const seconds = Math.round((time(job.next_attempt_at) - Date.now()) / 1000);
    return seconds >= 2
      ? `Delayed by a temporary problem; trying again in ${seconds} s`
      : "Delayed by a temporary problem; trying again shortly";
  }
  return message || job.message || STATUS_TEXT[job.status] || job.status;
}

export function tone(job) {
  return TONE[job.status] || "info";
}

// --- the socket ------------------------------------------------------------------

/**
 * The page's one connection to /ws/status/.  Events (``addEventListener``):
 * ``state`` {state: "connecting" | "open" | "closed" | "signed-out"},
 * ``snapshot`` {jobs}, ``job`` {job, message}, ``order`` {order, message}.
 * ``latest(id)`` is the newest {job, message} heard of a job, so a widget
 * made late starts from what the page already knows.
 */
export class StatusSocket extends EventTarget {
  constructor(path) {
    super();
    this.path = path;
    this.state = "connecting";
    this.ws = null;
    this.attempt = 0;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.lastFrameAt = 0;
    this.stopped = false;
    this.started = false;
    this.jobs = new Map();
    this.snapshotSeen = false;
  }

  start() {
    if (this.started) return this;
    this.started = true;
    const now = () => this.reconnectNow();
    // Come back at once when the network returns or the tab is shown again.
    window.addEventListener("online", now);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") now();
    });
    window.addEventListener("pagehide", () => {
      this.stopped = true;
      this.drop();
    });
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) {
        this.stopped = false;
        now();
      }
    });
    this.connect();
    return this;
  }

  latest(jobId) {
    return this.jobs.get(Number(jobId)) || null;
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state) {
    this.state = state;
    this.emit("state", { state });
  }

  remember(job, message) {
    if (!job || job.id === undefined || job.id === null) return false;
    const known = this.jobs.get(Number(job.id));
    if (known && !isNewer(job, known.job)) return false;
    this.jobs.set(Number(job.id), { job, message: message ?? job.message });
    return true;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.path}`;
  }

  connect() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.stopped || this.ws) return;
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.lastFrameAt = Date.now();
      this.setState("open");
      this.startPing();
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      if (frame.type === "snapshot") {
        const jobs = Array.isArray(frame.jobs) ? frame.jobs : [];
        jobs.forEach((job) => this.remember(job, job.message));
        this.snapshotSeen = true;
        this.emit("snapshot", { jobs });
      } else if (frame.type === "job" && frame.job) {
        // A stale or repeated event is still passed on: listeners decide.
        this.remember(frame.job, frame.message);
        this.emit("job", { job: frame.job, message: frame.message || "" });
      } else if (frame.type === "order" && frame.order) {
        this.emit("order", { order: frame.order, message: frame.message || "" });
      } else if (frame.type === "error" && window.console) {
        console.warn("Status socket:", frame.message || frame.error);
      }
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.drop();
      if (event.code === CLOSE_UNAUTHENTICATED) {
        this.stopped = true;
        this.setState("signed-out");
        return;
      }
      this.scheduleReconnect();
    };
    ws.onerror = () => {
      // onclose follows and schedules the reconnect.
    };
  }

  drop() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      try {
        ws.close();
      } catch (e) {
        /* already closing */
      }
    }
  }

  scheduleReconnect() {
    if (this.stopped || this.reconnectTimer) return;
    this.setState("closed");
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    // +-25% jitter, so many pages do not come back in step.
    const delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  startPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastFrameAt > STALE_AFTER_MS) {
        // The connection died without telling us: start over.
        this.drop();
        this.scheduleReconnect();
        return;
      }
      this.send({ type: "ping" });
    }, PING_INTERVAL_MS);
  }
}

/** The page's socket for ``path``, started on first use. */
export function statusSocket(path = "/ws/status/") {
  let socket = shared.sockets.get(path);
  if (!socket) {
    socket = new StatusSocket(path);
    shared.sockets.set(path, socket);
    socket.start();
  }
  return socket;
}

// --- a bar bound to one job ---------------------------------------------------------

/** The markup of a bar (the template tag renders the same). */
export function barElement(label = "Progress") {
  const root = el("div", "job-progress");
  const row = el("div", "job-progress-row");
  const bar = el("div", "job-bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", label);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-valuenow", "0");
  bar.appendChild(el("div", "job-bar-fill"));
  row.appendChild(bar);
  // The bar itself tells assistive technology its value; the note is for the eye.
  row.appendChild(el("span", "job-bar-note", "0%")).setAttribute("aria-hidden", "true");
  root.appendChild(row);
  const text = el("p", "job-progress-text");
  text.setAttribute("aria-live", "polite");
  root.appendChild(text);
  return root;
}

function paintBar(bar, note, job) {
  const progress = clampProgress(job.progress);
  bar.dataset.status = job.status;
  bar.setAttribute("aria-valuenow", String(progress));
  bar.querySelector(".job-bar-fill").style.width = `${progress}%`;
  if (note) note.textContent = `${progress}%`;
}

/**
 * A progress bar and its sentence, following one job: from the socket's
 * events, and from the API (``jobUrl``) when the snapshot does not name it
 * (a job finished long ago).
 */
export class JobBar {
  constructor(element, { socket, jobId, jobUrl = null, describe: say = describe } = {}) {
    this.element = element;
    this.jobId = Number(jobId);
    this.jobUrl = jobUrl;
    this.say = say;
    this.job = null;
    this.socket = socket || statusSocket(element.dataset.wsPath);
    this.bar = element.querySelector(".job-bar");
    this.note = element.querySelector(".job-bar-note");
    this.text = element.querySelector(".job-progress-text");
    this.onJob = (event) => {
      if (Number(event.detail.job.id) === this.jobId) this.render(event.detail.job, event.detail.message);
    };
    this.onSnapshot = (event) => {
      const listed = event.detail.jobs.find((job) => Number(job.id) === this.jobId);
      if (listed) this.render(listed, listed.message);
      else this.fetch();
    };
    this.socket.addEventListener("job", this.onJob);
    this.socket.addEventListener("snapshot", this.onSnapshot);
    const known = this.socket.latest(this.jobId);
    if (known) this.render(known.job, known.message);
    else if (this.socket.snapshotSeen) this.fetch();
    shared.widgets.set(element, this);
  }

  render(job, message) {
    if (this.job && !isNewer(job, this.job)) return;
    this.job = job;
    this.element.dataset.status = job.status;
    paintBar(this.bar, this.note, job);
    if (this.text) this.text.textContent = this.say(job, message);
  }

  fetch() {
    if (!this.jobUrl || this.fetching) return;
    this.fetching = true;
    fetch(this.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((res) => (res.ok ? res.json() : null))
      .then((job) => {
        if (job) this.render(job, job.message);
      })
      .catch(() => {})
      .finally(() => {
        this.fetching = false;
      });
  }

  destroy() {
    this.socket.removeEventListener("job", this.onJob);
    this.socket.removeEventListener("snapshot", this.onSnapshot);
  }
}

// --- toasts for "my jobs" -------------------------------------------------------------

/**
 * One toast per job, updated in place from queued to running (with its bar)
 * to its outcome, titled by the job's ``title`` and linked by its subject.
 * Only a job with a title gets a toast: the server gives one to every kind
 * that wants it ("Order #12") and to every task not declared without one.
 * A job without a title about the subject of an open toast (a payment's
 * receipt) adds one line to that toast when it ends, and is not shown
 * otherwise.  A snapshot updates the toasts on screen and opens none.
 */
export class JobToasts {
  constructor(region, options = {}) {
    const data = region.dataset;
    this.region = region;
    this.socket = options.socket || statusSocket(data.wsPath);
    this.links = options.links ?? parse(data.links);
    this.say = options.describe || describe;
    this.max = options.max || 5;
    this.lingerMs = options.lingerMs || 6000;
    this.errorLingerMs = options.errorLingerMs || 12000;
    this.toasts = new Map(); // key -> toast state
    this.closed = new Map(); // job id -> status it had when its toast went away
    this.socket.addEventListener("job", (event) => this.update(event.detail.job, event.detail.message, true));
    this.socket.addEventListener("snapshot", (event) => {
      event.detail.jobs.forEach((job) => this.update(job, job.message, false));
    });
    shared.widgets.set(region, this);
  }

  /** Show (or update) a job's toast now: for a job the page itself just started. */
  track(job, message) {
    this.update(job, message, true);
  }

  /** A word about a subject that is not a job's (an order settled after its payment): into its toast, or a new one. */
  note({ subject, text, tone: noteTone = "info", title = "" }) {
    const key = subjectKey(subject);
    let toast = [...this.toasts.values()].find((t) => t.subjectKey === key && !t.closing);
    if (!toast) {
      toast = this.open(`note:${key}`, { subject, title });
    }
    toast.text.textContent = text;
    toast.node.dataset.tone = noteTone;
    toast.progress.hidden = true;
    toast.final = true;
    this.linger(toast);
  }

  /** Whether the job has a toast of its own: the server titles every job that should. */
  isPrimary(job) {
    return Boolean(job.title);
  }

  update(job, message, live) {
    if (!job || job.id === undefined || job.id === null) return;
    if (!this.isPrimary(job)) {
      this.line(job, message, live);
      return;
    }
    const key = `job:${job.id}`;
    let toast = this.toasts.get(key);
    if (toast && toast.closing) toast = null;
    if (!toast) {
      if (!live) return;
      // A toast that went away stays away, unless its job starts a new run (a retry from the admin).
      const closed = this.closed.get(job.id);
      if (closed && !(FINAL.has(closed.status) && !FINAL.has(job.status) && isNewer(job, closed))) return;
      this.closed.delete(job.id);
      toast = this.open(key, { subject: job.subject, kind: job.kind, jobId: job.id, title: job.title });
    } else if (toast.job && !isNewer(job, toast.job)) {
      return;
    }
    this.paint(toast, job, message);
  }

  paint(toast, job, message) {
    toast.job = job;
    if (job.title && job.title !== toast.title) this.entitle(toast, job.title);
    const final = FINAL.has(job.status);
    toast.node.dataset.status = job.status;
    toast.node.dataset.tone = tone(job);
    toast.text.textContent = this.say(job, message);
    toast.progress.hidden = final;
    paintBar(toast.bar, toast.note, job);
    if (final && !toast.final) {
      toast.final = true;
      this.linger(toast);
    } else if (!final) {
      toast.final = false;
      clearTimeout(toast.timer);
    }
  }

  line(job, message, live) {
    // Only how it ended: one line at most, never a toast of its own.
    if (!FINAL.has(job.status)) return;
    const key = subjectKey(job.subject);
    if (!key) return; // about nothing in particular: no toast is about it
    const toast = [...this.toasts.values()].find((t) => t.subjectKey === key && t.jobId !== undefined && !t.closing);
    if (!toast) return;
    let item = toast.lines.querySelector(`[data-job-id="${CSS.escape(String(job.id))}"]`);
    if (!item) {
      if (!live) return;
      item = el("li", "job-toast-line");
      item.dataset.jobId = String(job.id);
      toast.lines.appendChild(item);
    } else if (item.job && !isNewer(job, item.job)) {
      return;
    }
    item.job = job;
    item.dataset.kind = job.kind;
    item.dataset.tone = job.status === "failed" ? "error" : "note";
    item.textContent = this.say(job, message);
    // Time to read it, if the toast was about to go.
    if (toast.final) this.linger(toast);
  }

  open(key, { subject, kind, jobId, title }) {
    const node = el("div", "job-toast");
    if (jobId !== undefined) node.dataset.jobId = String(jobId);
    if (kind) node.dataset.kind = kind;
    node.appendChild(el("span", "job-toast-icon")).setAttribute("aria-hidden", "true");
    const body = node.appendChild(el("div", "job-toast-body"));
    const head = body.appendChild(el("p", "job-toast-title"));
    const href = fill(this.links[subject?.type], subject);
    if (href) head.appendChild(el("a", "job-toast-link")).href = href;
    const text = body.appendChild(el("p", "job-toast-text"));
    const progress = barElement();
    progress.querySelector(".job-progress-text").remove();
    progress.className = "job-progress job-toast-progress";
    body.appendChild(progress);
    const lines = body.appendChild(el("ul", "job-toast-lines"));
    const close = el("button", "job-toast-close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss notification");
    node.appendChild(close);

    const toast = {
      key, node, head, text, lines, jobId, subjectKey: subjectKey(subject), title: null,
      progress, bar: progress.querySelector(".job-bar"), note: progress.querySelector(".job-bar-note"),
      timer: null, final: false, closing: false, held: false, job: null,
    };
    this.entitle(toast, title || "");
    close.addEventListener("click", () => this.close(toast));
    // Reading a toast (the pointer on it, or the keyboard in it) holds it open.
    const holding = { pointer: false, focus: false };
    const hold = (how, on) => {
      holding[how] = on;
      toast.held = holding.pointer || holding.focus;
      if (toast.held) clearTimeout(toast.timer);
      else if (toast.final) this.linger(toast);
    };
    node.addEventListener("mouseenter", () => hold("pointer", true));
    node.addEventListener("mouseleave", () => hold("pointer", false));
    node.addEventListener("focusin", () => hold("focus", true));
    node.addEventListener("focusout", (event) => hold("focus", node.contains(event.relatedTarget)));

    this.toasts.set(key, toast);
    this.region.appendChild(node);
    this.trim(toast);
    return toast;
  }

  /** The toast's heading (a link where its subject has one, "Details" while it has no title) and its bar's name. */
  entitle(toast, title) {
    toast.title = title;
    const link = toast.head.querySelector("a");
    if (link) link.textContent = title || "Details";
    else toast.head.textContent = title;
    toast.head.hidden = !title && !link;
    toast.bar.setAttribute("aria-label", title ? `${title} progress` : "Progress");
  }

  linger(toast) {
    clearTimeout(toast.timer);
    if (toast.held) return;
    const ms = toast.node.dataset.tone === "error" ? this.errorLingerMs : this.lingerMs;
    toast.timer = setTimeout(() => this.close(toast), ms);
  }

  close(toast) {
    if (toast.closing) return;
    toast.closing = true;
    clearTimeout(toast.timer);
    if (toast.jobId !== undefined) {
      this.closed.set(toast.jobId, toast.job || { status: "pending", updated_at: null });
    }
    this.toasts.delete(toast.key);
    toast.node.classList.add("job-toast-leaving");
    setTimeout(() => toast.node.remove(), 200);
  }

  trim(keep) {
    // Too many at once: the oldest finished ones go first, then the oldest.
    const open = [...this.toasts.values()].filter((t) => !t.closing);
    const excess = open.length - this.max;
    if (excess <= 0) return;
    const order = [...open.filter((t) => t.final), ...open.filter((t) => !t.final)].filter((t) => t !== keep);
    order.slice(0, excess).forEach((t) => this.close(t));
  }
}

function parse(json) {
  if (!json) return {};
  try {
    const value = JSON.parse(json);
    return value && typeof value === "object" ? value : {};
  } catch (e) {
    return {};
  }
}

// --- binding what the template tag rendered ---------------------------------------------

/** The widget bound to ``element`` (a JobToasts or a JobBar), if any. */
export function widget(element) {
  return element ? shared.widgets.get(element) || null : null;
}

/** Bind every ``[data-job-progress]`` under ``root`` not bound yet; runs once on load by itself. */
export function init(root = document) {
  root.querySelectorAll("[data-job-progress]").forEach((element) => {
    if (shared.widgets.has(element)) return;
    const target = element.dataset.jobProgress;
    if (target === "mine") new JobToasts(element);
    else new JobBar(element, { jobId: target, jobUrl: element.dataset.jobUrl || null });
  });
}

init();
