/* The orders and books page: pay, follow orders, register ISBNs, follow batches.
 *
 * Live progress comes from the jobs app's widget (jobs/static/jobs/progress.js,
 * rendered by {% job_progress "mine" %} in base.html): one websocket, one
 * toast per job.  This module follows the same socket for what only this page
 * shows: the orders list and the batches with their books.
 *
 * Plain ES module, no build step.  Server data is only ever written with
 * textContent / attributes, never parsed as HTML.
 */

import { FINAL, JobBar, barElement, isNewer, statusSocket, widget } from "./jobs/progress.js";
import { Pager, api, bindConnection, el, formatDate, plainError, plural, time } from "./page.js";

const app = document.getElementById("app");
const region = document.querySelector('[data-job-progress="mine"]');
const socket = statusSocket(region ? region.dataset.wsPath : "/ws/status/");
const toasts = widget(region);

const ORDERS_URL = app.dataset.ordersUrl;
const JOBS_URL = app.dataset.jobsUrl;
const BOOKS_URL = app.dataset.booksUrl;
const CATALOGUE_URL = app.dataset.catalogueUrl;
const BOOKS_MAX = Number(app.dataset.booksMax) || 500;

// The kinds of job this page follows in its own tables, with their names and
// titles as the server declares them (web/views.py): {payment, book, book_batch}.
const KINDS = JSON.parse(document.getElementById("job-kinds").textContent);
const PAYMENT_KIND = KINDS.payment.name;
const BOOK_KIND = KINDS.book.name;
const BATCH_KIND = KINDS.book_batch.name;
const BATCHES_PAGE_SIZE = 10;
const BOOKS_PAGE_SIZE = 100;

bindConnection(socket);

/** What the page calls the job of ``kind`` about subject ``id`` ("Order #12"), as the server does. */
function titled(kind, id) {
  return kind.title.replaceAll("{id}", String(id));
}

// --- orders --------------------------------------------------------------------------

const STATUS_LABELS = {
  pending: "Pending",
  processing: "Processing",
  paid: "Paid",
  declined: "Declined",
  failed: "Failed",
  review: "Needs review",
  settlement_declined: "Settlement declined",
};
const ORDER_FINAL = new Set(["paid", "declined", "failed", "review", "settlement_declined"]);

// A processor's code after its words: "Do Not Honor (2000)".
const CODE = /\s*\(\d+\)$/;

/**
 * The order's state in a sentence.  The order's ``error`` is the gateway's
 * own wording, kept by the API for developers; only a card issuer's reason
 * for a decline ("Do Not Honor") is shown as it is.
 */
function orderNote(order) {
  const error = order.error || "";
  switch (order.status) {
    case "declined":
      if (!error || /^gateway rejected/i.test(error)) return "The payment service refused this card.";
      if (/duplicate/i.test(error)) return "This repeats a payment made a moment ago; nothing was charged.";
      return `Declined by the card issuer: ${error.replace(CODE, "")}.`;
    case "failed":
      return "The payment could not be completed. Please pay again later.";
    case "review":
      return "Held for review: we will check it. Please don't pay again.";
    case "settlement_declined":
      return "The bank declined to settle this payment. Please pay again with another card.";
    case "paid":
      return order.dispute ? `The card holder disputes this payment (${order.dispute}).` : "";
    default:
      return error ? "Delayed by a temporary problem; trying again." : "";
  }
}

const ordersEls = {
  tbody: document.querySelector("#orders tbody"),
  count: document.getElementById("orders-count"),
  more: document.getElementById("orders-more"),
};
const orders = new Map(); // order id (string) -> latest order
const paymentJobs = new Map(); // order id (string) -> latest payment job report
let ordersTotal = null;
let ordersLoaded = false;

function orderRow(id) {
  return document.getElementById(`order-${id}`);
}

function cell(className, label) {
  const td = el("td", className);
  td.dataset.label = label;
  return td;
}

function buildOrderRow(id) {
  const tr = el("tr", "order-row");
  tr.id = `order-${id}`;
  tr.dataset.orderId = String(id);
  tr.tabIndex = -1;
  const idCell = cell("order-id", "Order");
  idCell.textContent = `#${id}`;
  tr.appendChild(idCell);
  tr.appendChild(cell("created muted", "Created")).appendChild(el("time"));
  tr.appendChild(cell("amount num", "Amount"));
  tr.appendChild(cell("status", "Status")).appendChild(el("span", "badge"));
  const progress = tr.appendChild(cell("progress-cell", "Progress"));
  const wrap = progress.appendChild(el("div", "progress-wrap"));
  const bar = wrap.appendChild(el("div", "progress"));
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  bar.setAttribute("aria-label", `${titled(KINDS.payment, id)} progress`);
  bar.appendChild(el("div", "progress-fill"));
  wrap.appendChild(el("span", "progress-note muted small"));
  tr.appendChild(cell("transaction mono", "Transaction"));
  tr.appendChild(cell("note", "Details"));
  return tr;
}

function renderOrder(tr, order) {
  const status = order.status || "pending";
  tr.dataset.status = status;
  const created = tr.querySelector(".created time");
  created.dateTime = order.created_at || "";
  created.textContent = formatDate(order.created_at);
  tr.querySelector(".amount").textContent = order.amount;
  const statusCell = tr.querySelector(".status");
  statusCell.dataset.status = status;
  const badge = statusCell.querySelector(".badge");
  badge.className = `badge badge-${status}`;
  badge.textContent = (STATUS_LABELS[status] || status) + (order.dispute ? ` · dispute ${order.dispute}` : "");
  const tx = tr.querySelector(".transaction");
  tx.textContent = order.transaction_id || "—";
  tx.classList.toggle("muted", !order.transaction_id);
  tr.querySelector(".note").textContent = orderNote(order);
  renderOrderProgress(tr, order, paymentJobs.get(String(order.id)));
}

function renderOrderProgress(tr, order, job) {
  const status = order ? order.status : "pending";
  let progress;
  let state;
  if (order && ORDER_FINAL.has(status)) {
    // The order is settled; its job cannot tell us anything newer.
    progress = 100;
    state = status === "paid" ? "ok" : "failed";
  } else if (job) {
    progress = Math.max(0, Math.min(100, Number(job.progress) || 0));
    state = job.status;
  } else {
    progress = status === "processing" ? 10 : 0;
    state = status === "processing" ? "running" : "pending";
  }
  const bar = tr.querySelector(".progress");
  bar.dataset.state = state;
  bar.setAttribute("aria-valuenow", String(progress));
  tr.querySelector(".progress-fill").style.width = `${progress}%`;
  tr.querySelector(".progress-note").textContent = state === "retrying" ? "Retrying" : `${progress}%`;
}

function newerOrder(a, b) {
  if (!b) return true;
  const ta = time(a.created_at);
  const tb = time(b.created_at);
  return ta !== tb ? ta > tb : Number(a.id) > Number(b.id);
}

function showOrdersEmpty(text) {
  let empty = document.getElementById("orders-empty");
  if (!text) {
    if (empty) empty.remove();
    return;
  }
  if (!empty) {
    empty = el("tr", "empty-row");
    empty.id = "orders-empty";
    const td = el("td");
    td.colSpan = 7;
    empty.appendChild(td);
    ordersEls.tbody.appendChild(empty);
  }
  empty.querySelector("td").textContent = text;
}

function updateOrdersCount() {
  const shown = orders.size;
  if (!shown) {
    ordersEls.count.textContent = "";
    showOrdersEmpty(ordersLoaded ? "No orders yet. Make a payment to see it here." : "Loading orders…");
    return;
  }
  showOrdersEmpty("");
  const total = ordersTotal !== null && ordersTotal > shown ? ordersTotal : shown;
  ordersEls.count.textContent = total > shown ? `Showing ${shown} of ${total} orders` : plural(shown, "order", "orders");
}

/** Insert or update one order, keeping rows newest first. */
function upsertOrder(order, { fromList = false } = {}) {
  if (!order || order.id === undefined || order.id === null) return;
  const id = String(order.id);
  const known = orders.get(id);
  // Never let an older answer (a slow fetch) overwrite a newer one.
  if (known && time(order.updated_at) < time(known.updated_at)) return;
  orders.set(id, order);
  let tr = orderRow(id);
  if (!tr) {
    tr = buildOrderRow(id);
    if (!fromList && ordersLoaded) tr.classList.add("row-new");
    const rows = ordersEls.tbody.querySelectorAll("tr[data-order-id]");
    const before = [...rows].find((row) => newerOrder(order, orders.get(row.dataset.orderId))) || null;
    ordersEls.tbody.insertBefore(tr, before);
    if (!fromList && !known && ordersTotal !== null) ordersTotal += 1;
  }
  renderOrder(tr, order);
  updateOrdersCount();
}

async function loadOrders(url) {
  const result = await api("GET", url);
  if (!result.ok || !result.data) {
    if (!orders.size) showOrdersEmpty("Could not load your orders. Reload the page to try again.");
    return ordersPager.next;
  }
  const list = Array.isArray(result.data.results) ? result.data.results : [];
  ordersTotal = typeof result.data.count === "number" ? result.data.count : ordersTotal;
  list.forEach((order) => upsertOrder(order, { fromList: true }));
  ordersLoaded = true;
  updateOrdersCount();
  revealTarget();
  return result.data.next;
}

const ordersPager = new Pager(ordersEls.more, loadOrders);

let ordersPaged = false;

async function loadFirstOrders() {
  const next = await loadOrders(ORDERS_URL);
  // Page one again after a reconnect: the pager keeps how far the user went.
  if (!ordersPaged && ordersLoaded) {
    ordersPaged = true;
    ordersPager.setNext(next);
  }
}

// One fetch per order at a time; an event during a fetch asks for one more.
const fetchingOrders = new Map();

async function refreshOrder(id) {
  id = String(id);
  if (fetchingOrders.has(id)) {
    fetchingOrders.set(id, true);
    return;
  }
  fetchingOrders.set(id, false);
  const result = await api("GET", `${ORDERS_URL}${encodeURIComponent(id)}/`);
  const again = fetchingOrders.get(id);
  fetchingOrders.delete(id);
  if (result.ok && result.data) upsertOrder(result.data);
  if (again) refreshOrder(id);
}

function orderIdOf(job) {
  if (!job || job.kind !== PAYMENT_KIND || !job.subject || job.subject.type !== "orders.order") return null;
  return String(job.subject.id);
}

// Only the payment job speaks for an order's progress: its receipt is a line in the toast.
function rememberPaymentJob(job) {
  const orderId = orderIdOf(job);
  if (!orderId) return null;
  const known = paymentJobs.get(orderId);
  if (!known || known.id !== job.id || isNewer(job, known)) paymentJobs.set(orderId, job);
  return orderId;
}

function onPaymentJob(job) {
  const orderId = rememberPaymentJob(job);
  if (!orderId) return;
  const tr = orderRow(orderId);
  if (tr) renderOrderProgress(tr, orders.get(orderId), paymentJobs.get(orderId));
  refreshOrder(orderId);
}

// --- the pay form ----------------------------------------------------------------------

const pay = {
  form: document.getElementById("pay-form"),
  amount: document.getElementById("amount"),
  nonce: document.getElementById("nonce"),
  button: document.getElementById("pay"),
  error: document.getElementById("pay-error"),
};
// The API's own rule: more than zero, below 100,000,000, at most two decimals.
const AMOUNT = /^([1-9][0-9]{0,7}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$/;
const AMOUNT_HELP = "Enter an amount above zero, such as 12.50, with at most two decimals.";

function showPayError(message, field) {
  pay.error.textContent = message || "";
  pay.error.hidden = !message;
  [pay.amount, pay.nonce].forEach((input) => {
    if (message && input.name === field) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  });
}

let paying = false;

pay.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (paying) return;
  // "12,50" is how half the world writes it.
  const amount = pay.amount.value.trim().replace(/^(\d+),(\d{1,2})$/, "$1.$2");
  if (!AMOUNT.test(amount)) {
    showPayError(AMOUNT_HELP, "amount");
    pay.amount.focus();
    return;
  }
  paying = true;
  showPayError("");
  pay.button.disabled = true;
  pay.button.setAttribute("aria-busy", "true");
  const result = await api("POST", ORDERS_URL, { amount, nonce: pay.nonce.value });
  paying = false;
  pay.button.disabled = false;
  pay.button.removeAttribute("aria-busy");
  if (result.status === 202 && result.data) {
    const order = result.data;
    if (toasts && order.job !== null && order.job !== undefined) {
      // Shown at once; the job's own events take it from here.
      toasts.track(
        { id: order.job, kind: PAYMENT_KIND, title: titled(KINDS.payment, order.id), status: "pending",
          progress: 0, updated_at: null, subject: { type: "orders.order", id: String(order.id) } },
        `Payment of ${order.amount} queued`,
      );
    }
    upsertOrder(order);
    refreshOrder(order.id); // it may have moved on while we were answered
    return;
  }
  const field = result.data && result.data.fields ? Object.keys(result.data.fields)[0] : null;
  showPayError(
    plainError(result, {
      fields: { amount: AMOUNT_HELP, nonce: "Choose a test card from the list." },
      fallback: "The payment could not be accepted. Check the amount and try again.",
      busy: "Too many payments at once. Wait a minute, then try again.",
    }),
    field,
  );
  if (field === "amount") pay.amount.focus();
});

// --- books: registering -------------------------------------------------------------------

const books = {
  form: document.getElementById("books-form"),
  input: document.getElementById("isbns"),
  submit: document.getElementById("register-books"),
  error: document.getElementById("books-error"),
  result: document.getElementById("register-result"),
  summary: document.getElementById("register-summary"),
  notes: document.getElementById("register-notes"),
  list: document.getElementById("batches"),
  empty: document.getElementById("batches-empty"),
  count: document.getElementById("batches-count"),
  more: document.getElementById("batches-more"),
};
const BOOK_STATUS = { pending: "Looking up", found: "Found", not_found: "Not found", failed: "Failed" };

function splitIsbns(text) {
  return text.split(/[\n\r,;]+/).map((s) => s.trim()).filter(Boolean);
}

function showBooksError(message) {
  books.error.textContent = message || "";
  books.error.hidden = !message;
  if (message) books.input.setAttribute("aria-invalid", "true");
  else books.input.removeAttribute("aria-invalid");
}

function showRegistration(data) {
  books.result.hidden = false;
  books.notes.textContent = "";
  books.summary.textContent = data.batch
    ? `${titled(KINDS.book_batch, data.batch.id)}: ${plural(data.accepted.length, "new book", "new books")} to look up.`
    : "Nothing new to look up.";
  const note = (text, kind, isbn) => {
    const li = books.notes.appendChild(el("li", `batch-note batch-note-${kind}`, text));
    if (isbn && CATALOGUE_URL) {
      const a = li.appendChild(el("a", "batch-note-link", "See it"));
      a.href = `${CATALOGUE_URL}?search=${encodeURIComponent(isbn)}`;
    }
  };
  // A book registered before (not one repeated in this very list) can be looked at in the catalogue.
  const ours = new Set(data.accepted.map((a) => a.id));
  data.duplicates.forEach((d) => note(`${d.input}: ${d.reason}`, "duplicate", ours.has(d.id) ? null : d.isbn));
  data.invalid.forEach((i) => note(`${i.input || "(empty)"}: ${i.reason}`, "invalid"));
}

let registering = false;

books.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (registering) return;
  const isbns = splitIsbns(books.input.value);
  if (!isbns.length) {
    showBooksError("Scan or paste at least one ISBN.");
    books.input.focus();
    return;
  }
  if (isbns.length > BOOKS_MAX) {
    showBooksError(`That is ${isbns.length} ISBNs; up to ${BOOKS_MAX} can be looked up at once. Send the rest in another batch.`);
    books.input.focus();
    return;
  }
  registering = true;
  showBooksError("");
  books.submit.disabled = true;
  books.submit.setAttribute("aria-busy", "true");
  const result = await api("POST", `${BOOKS_URL}bulk/`, { isbn: isbns });
  registering = false;
  books.submit.disabled = false;
  books.submit.removeAttribute("aria-busy");
  if ((result.status === 202 || result.status === 200) && result.data) {
    const data = result.data;
    showRegistration(data);
    books.input.value = "";
    if (data.batch) {
      const job = {
        id: data.job.id, kind: BATCH_KIND, title: titled(KINDS.book_batch, data.batch.id), status: "pending",
        progress: 0, message: "", updated_at: null,
        created_at: new Date().toISOString(), subject: { type: "books.bookbatch", id: String(data.batch.id) },
      };
      const message = `Looking up ${plural(data.batch.total, "book", "books")} at OpenLibrary`;
      if (toasts) toasts.track(job, message);
      const batch = addBatch(job, { open: true, total: data.batch.total, live: true });
      data.accepted.forEach((a) => batchBookRow(batch, { id: a.id, isbn: a.isbn, status: "pending" }));
      if (batch.bar.job === null) batch.bar.render(job, message);
    }
    return;
  }
  showBooksError(
    plainError(result, {
      fields: { isbn: "The ISBNs could not be read. Paste them one per line, or separated by commas." },
      busy: "Too many lookups at once. Wait a minute, then try again.",
    }),
  );
});

// --- books: batches and their books ----------------------------------------------------------

const batches = new Map(); // batch id (string) -> {id, jobId, node, bar, tbody, details, count, loaded, total}
let batchesTotal = null;
let batchesLoaded = false;

function batchIdOf(job) {
  return job && job.subject ? String(job.subject.id) : null;
}

/** The batch's panel, made the first time it is heard of; ``live`` when it is new since the list was read. */
function addBatch(job, { open = false, total = null, live = false } = {}) {
  const id = batchIdOf(job);
  let batch = batches.get(id);
  if (batch) {
    if (total !== null) setBatchTotal(batch, total);
    if (open && !batch.details.open) batch.details.open = true;
    return batch;
  }
  const node = el("article", "batch");
  node.id = `batch-${id}`;
  node.dataset.batchId = id;
  node.dataset.jobId = String(job.id);
  node.tabIndex = -1;
  if (live) node.classList.add("row-new");

  const head = node.appendChild(el("header", "batch-head"));
  const title = titled(KINDS.book_batch, id);
  head.appendChild(el("h4", "batch-title", title));
  const count = head.appendChild(el("span", "batch-count muted small"));
  const created = head.appendChild(el("time", "batch-created muted small"));
  created.dateTime = job.created_at || "";
  created.textContent = formatDate(job.created_at);

  const progress = node.appendChild(barElement(`${title} progress`));
  const details = node.appendChild(el("details", "batch-books"));
  details.appendChild(el("summary", "", "Books"));
  const wrap = details.appendChild(el("div", "table-wrap"));
  const table = wrap.appendChild(el("table", "grid books"));
  const headRow = table.appendChild(el("thead")).appendChild(el("tr"));
  ["ISBN", "Title", "Authors", "Pages", "Published", "Status"].forEach((label) => {
    const th = headRow.appendChild(el("th", label === "Pages" ? "num" : "", label));
    th.scope = "col";
  });
  const tbody = table.appendChild(el("tbody"));

  batch = { id, jobId: Number(job.id), node, details, tbody, count, loaded: false, total: null, refreshTimer: null };
  batches.set(id, batch);
  batch.bar = new JobBar(progress, { socket, jobId: job.id, jobUrl: `${JOBS_URL}${job.id}/` });
  if (job.updated_at) batch.bar.render(job, job.message);
  if (total !== null) setBatchTotal(batch, total);

  details.addEventListener("toggle", () => {
    if (details.open && !batch.loaded) loadBatchBooks(batch);
  });
  details.open = open;

  // Newest first, whichever way it arrived (a page of the list, the snapshot, the form).
  const before = [...books.list.querySelectorAll(".batch")].find((other) => {
    const otherBatch = batches.get(other.dataset.batchId);
    return otherBatch && otherBatch !== batch && Number(batch.jobId) > Number(otherBatch.jobId);
  }) || null;
  books.list.insertBefore(node, before);
  if (live && batchesTotal !== null) batchesTotal += 1;
  updateBatchesCount();
  return batch;
}

function setBatchTotal(batch, total) {
  batch.total = total;
  batch.count.textContent = plural(total, "book", "books");
}

function batchBookRow(batch, book) {
  let tr = batch.tbody.querySelector(`tr[data-book-id="${CSS.escape(String(book.id))}"]`);
  if (!tr) {
    tr = el("tr", "book-row");
    tr.dataset.bookId = String(book.id);
    tr.dataset.isbn = book.isbn;
    [["isbn mono", "ISBN"], ["title", "Title"], ["authors", "Authors"], ["pages num", "Pages"],
      ["published", "Published"], ["status", "Status"]].forEach(([cls, label]) => tr.appendChild(cell(cls, label)));
    tr.querySelector(".status").appendChild(el("span", "badge"));
    tr.querySelector(".isbn").textContent = book.isbn;
    batch.tbody.appendChild(tr);
  }
  renderBook(tr, book);
  return tr;
}

function renderBook(tr, book, note) {
  const status = book.status || "pending";
  tr.dataset.status = status;
  if (book.title !== undefined) {
    tr.querySelector(".title").textContent = book.title || (status === "found" ? "Untitled" : "");
    tr.querySelector(".authors").textContent = (book.authors || []).map((a) => a.name).join(", ");
    tr.querySelector(".pages").textContent = book.pages === null || book.pages === undefined ? "" : book.pages;
    tr.querySelector(".published").textContent = book.publish_date || "";
  }
  const statusCell = tr.querySelector(".status");
  statusCell.dataset.status = status;
  const badge = statusCell.querySelector(".badge");
  badge.className = `badge badge-book-${status}`;
  badge.textContent = note || BOOK_STATUS[status] || status;
}

/** Every book of the batch, read back from the API: on opening it, and once it ends. */
async function loadBatchBooks(batch) {
  batch.loaded = true;
  let url = `${BOOKS_URL}?batch=${encodeURIComponent(batch.id)}&page_size=${BOOKS_PAGE_SIZE}`;
  while (url) {
    const result = await api("GET", url);
    if (!result.ok || !result.data) return;
    if (typeof result.data.count === "number") setBatchTotal(batch, result.data.count);
    (result.data.results || []).forEach((book) => batchBookRow(batch, book));
    url = result.data.next;
  }
}

// Many books end at once on a busy batch: read the batch back at most once a second.
function scheduleBatchRefresh(batch) {
  if (batch.refreshTimer) return;
  batch.refreshTimer = setTimeout(() => {
    batch.refreshTimer = null;
    if (batch.details.open) loadBatchBooks(batch);
  }, 1000);
}

function onBookJob(job) {
  if (job.kind === BATCH_KIND) {
    const batch = batches.get(batchIdOf(job));
    if (!batch) {
      // A batch sent from another tab or client: it joins the list.
      if (batchesLoaded) addBatch(job, { open: !FINAL.has(job.status), live: true });
      return;
    }
    if (FINAL.has(job.status)) {
      clearTimeout(batch.refreshTimer);
      batch.refreshTimer = null;
      loadBatchBooks(batch);
    }
    return;
  }
  const tr = job.subject && books.list.querySelector(`tr[data-book-id="${CSS.escape(String(job.subject.id))}"]`);
  if (!tr) return;
  const batch = batches.get(tr.closest(".batch").dataset.batchId);
  if (job.status === "retrying") renderBook(tr, { status: "pending" }, "Retrying");
  else if (FINAL.has(job.status) && batch) scheduleBatchRefresh(batch);
}

function updateBatchesCount() {
  const shown = batches.size;
  books.empty.hidden = shown > 0 || !batchesLoaded;
  if (!shown) {
    books.count.textContent = "";
    if (batchesLoaded) books.empty.textContent = "No batches yet. Look some ISBNs up to see them here.";
    return;
  }
  const total = batchesTotal !== null && batchesTotal > shown ? batchesTotal : shown;
  books.count.textContent = total > shown ? `Showing ${shown} of ${total} batches` : plural(shown, "batch", "batches");
}

async function loadBatches(url) {
  const result = await api("GET", url);
  if (!result.ok || !result.data) {
    if (!batches.size) books.empty.textContent = "Could not load your batches. Reload the page to try again.";
    return batchesPager.next;
  }
  batchesTotal = typeof result.data.count === "number" ? result.data.count : batchesTotal;
  batchesLoaded = true;
  (result.data.results || []).forEach((job) => addBatch(job, { open: !FINAL.has(job.status) }));
  updateBatchesCount();
  revealTarget();
  return result.data.next;
}

const batchesPager = new Pager(books.more, loadBatches);

// --- the socket -------------------------------------------------------------------------------

socket.addEventListener("job", (event) => {
  const { job } = event.detail;
  if (job.kind === PAYMENT_KIND) onPaymentJob(job);
  else if (job.kind === BOOK_KIND || job.kind === BATCH_KIND) onBookJob(job);
});

socket.addEventListener("order", (event) => {
  // The gateway's word after the payment: a settlement declined, a dispute.
  const { order, message } = event.detail;
  upsertOrder(order);
  if (toasts && message) {
    toasts.note({
      subject: { type: "orders.order", id: String(order.id) },
      text: message,
      tone: order.status === "paid" && !order.dispute ? "success" : "error",
      title: titled(KINDS.payment, order.id),
    });
  }
});

socket.addEventListener("snapshot", (event) => {
  // After a (re)connect: catch up without toasts.  Every unfinished batch is
  // in the snapshot, so a page reloaded mid-batch gets it back with its progress.
  event.detail.jobs.forEach((job) => {
    if (job.kind === PAYMENT_KIND) {
      const orderId = rememberPaymentJob(job);
      const tr = orderId && orderRow(orderId);
      if (tr) renderOrderProgress(tr, orders.get(orderId), paymentJobs.get(orderId));
    } else if (job.kind === BATCH_KIND && !FINAL.has(job.status)) {
      addBatch(job, { open: true });
    }
  });
  loadFirstOrders();
});

// --- links to an order or a batch (#order-12, #batch-3) ------------------------------------

function revealTarget() {
  const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (!target || target.dataset.revealed === location.hash) return;
  target.dataset.revealed = location.hash;
  const details = target.querySelector("details");
  if (details) details.open = true;
  target.scrollIntoView({ block: "center" });
  target.classList.remove("row-flash");
  void target.offsetWidth; // restart the animation
  target.classList.add("row-flash");
  target.focus({ preventScroll: true });
}

window.addEventListener("hashchange", () => {
  const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target) delete target.dataset.revealed;
  revealTarget();
});

// --- start -------------------------------------------------------------------------------------

pay.button.disabled = false;
books.submit.disabled = false;
updateOrdersCount();
loadFirstOrders();
loadBatches(`${JOBS_URL}?kind=${encodeURIComponent(BATCH_KIND)}&page_size=${BATCHES_PAGE_SIZE}`).then((next) => batchesPager.setNext(next));
