/* Payments and books page: pay form, live order list, ISBN batches, toasts and the status websocket.
 *
 * Plain browser JavaScript, no build step.  Server data is only ever written
 * with textContent / attributes, never parsed as HTML.
 */
(function () {
  "use strict";

  var app = document.getElementById("app");
  if (!app) return;

  var ORDERS_URL = app.dataset.ordersUrl || "/api/orders/";
  var WS_PATH = app.dataset.wsPath || "/ws/status/";
  var LOGIN_URL = app.dataset.loginUrl || "/accounts/login/";

  var PING_INTERVAL_MS = 25000;
  // No frame at all (not even a pong) for this long means the socket is dead.
  var STALE_AFTER_MS = PING_INTERVAL_MS * 2 + 5000;
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 10000;
  var TOAST_MS = 6000;
  var TOAST_MAX = 5;
  var CLOSE_UNAUTHENTICATED = 4401;

  var STATUS_LABELS = {
    pending: "Pending",
    processing: "Processing",
    paid: "Paid",
    declined: "Declined",
    failed: "Failed",
    review: "Needs review",
    settlement_declined: "Settlement declined",
  };
  var FINAL = { paid: true, declined: true, failed: true, review: true, settlement_declined: true };

  var els = {
    form: document.getElementById("pay-form"),
    amount: document.getElementById("amount"),
    nonce: document.getElementById("nonce"),
    pay: document.getElementById("pay"),
    payError: document.getElementById("pay-error"),
    tbody: document.querySelector("#orders tbody"),
    count: document.getElementById("orders-count"),
    connection: document.getElementById("connection"),
    toasts: document.getElementById("toasts"),
  };

  // --- helpers -------------------------------------------------------------

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    // Fallback: the logout form always carries a token.
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function time(value) {
    var t = Date.parse(value);
    return isNaN(t) ? 0 : t;
  }

  function formatDate(value) {
    var t = time(value);
    if (!t) return "";
    var d = new Date(t);
    var today = new Date();
    var sameDay = d.toDateString() === today.toDateString();
    return sameDay
      ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
      : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  // JSON request; resolves to {ok, status, data}.  Never rejects on HTTP errors.
  function api(method, url, body) {
    var opts = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRFToken"] = csrfToken();
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(
      function (res) {
        return res.text().then(function (text) {
          var data = null;
          try {
            data = text ? JSON.parse(text) : null;
          } catch (e) {
            data = null;
          }
          if (res.status === 401) {
            goToLogin();
          }
          return { ok: res.ok, status: res.status, data: data };
        });
      },
      function () {
        return {
          ok: false,
          status: 0,
          data: { code: "network", message: "Could not reach the server. Check your connection and try again." },
        };
      }
    );
  }

  function errorMessage(result) {
    var data = result.data;
    if (data && typeof data.message === "string" && data.message) return data.message;
    if (result.status === 403) return "You are not allowed to do that. Reload the page and try again.";
    return "Something went wrong (HTTP " + result.status + "). Please try again.";
  }

  function goToLogin() {
    var next = encodeURIComponent(location.pathname + location.search);
    location.assign(LOGIN_URL + "?next=" + next);
  }

  // --- toasts --------------------------------------------------------------

  // Keys of toasts shown recently, so one event heard twice (the POST answer
  // and the websocket "queued" event) shows once.
  var recentToasts = {};

  function toast(message, kind, key) {
    if (!message) return null;
    var now = Date.now();
    if (key) {
      Object.keys(recentToasts).forEach(function (k) {
        if (now - recentToasts[k] > 15000) delete recentToasts[k];
      });
      if (recentToasts[key]) return null;
      recentToasts[key] = now;
    }
    kind = kind || "info";
    var node = el("div", "toast toast-" + kind);
    node.setAttribute("role", kind === "error" ? "alert" : "status");
    node.dataset.kind = kind;
    node.appendChild(el("span", "toast-icon", "")).setAttribute("aria-hidden", "true");
    node.appendChild(el("p", "toast-text", message));
    var close = el("button", "toast-close", "\u00d7");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss notification");
    node.appendChild(close);

    var timer = null;
    function dismiss() {
      if (!node.parentNode || node.classList.contains("toast-leaving")) return;
      clearTimeout(timer);
      node.classList.add("toast-leaving");
      setTimeout(function () {
        if (node.parentNode) node.parentNode.removeChild(node);
      }, 200);
    }
    function arm() {
      clearTimeout(timer);
      timer = setTimeout(dismiss, TOAST_MS);
    }
    close.addEventListener("click", dismiss);
    // Reading a toast holds it open.
    node.addEventListener("mouseenter", function () { clearTimeout(timer); });
    node.addEventListener("mouseleave", arm);
    node.addEventListener("focusin", function () { clearTimeout(timer); });
    node.addEventListener("focusout", arm);

    els.toasts.appendChild(node);
    // Too many at once: drop the oldest progress notes before any outcome.
    var live = els.toasts.querySelectorAll(".toast:not(.toast-leaving)");
    var excess = live.length - TOAST_MAX;
    var order = Array.prototype.filter.call(live, function (n) { return n.classList.contains("toast-info"); })
      .concat(Array.prototype.filter.call(live, function (n) { return !n.classList.contains("toast-info"); }));
    for (var i = 0; i < excess; i++) {
      if (order[i] !== node) order[i].parentNode.removeChild(order[i]);
    }
    arm();
    return node;
  }

  // The same event heard twice has the same key; a repeated sentence on a
  // later attempt does not.
  function jobToastKey(jobId, status, attempts, message) {
    return ["job", jobId, status, attempts || 0, message].join("|");
  }

  function toastKindForJob(job) {
    switch (job && job.status) {
      case "ok": return "success";
      case "failed": return "error";
      case "retrying": return "warn";
      default: return "info";
    }
  }

  // --- orders table --------------------------------------------------------

  var orders = {};        // order id (string) -> latest order data
  var jobs = {};          // order id (string) -> latest job report for it
  var totalCount = null;

  function orderRow(id) {
    return els.tbody.querySelector('tr[data-order-id="' + CSS.escape(String(id)) + '"]');
  }

  function buildRow(id) {
    var tr = el("tr", "order-row");
    tr.dataset.orderId = String(id);

    var idCell = el("td", "order-id");
    idCell.textContent = "#" + id;
    tr.appendChild(idCell);

    var created = el("td", "created muted");
    created.appendChild(el("time"));
    tr.appendChild(created);

    tr.appendChild(el("td", "amount num"));

    var statusCell = el("td", "status");
    statusCell.appendChild(el("span", "badge"));
    tr.appendChild(statusCell);

    var progressCell = el("td", "progress-cell");
    var wrap = el("div", "progress-wrap");
    var bar = el("div", "progress");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.setAttribute("aria-label", "Order #" + id + " progress");
    bar.appendChild(el("div", "progress-fill"));
    wrap.appendChild(bar);
    wrap.appendChild(el("span", "progress-note muted small"));
    progressCell.appendChild(wrap);
    tr.appendChild(progressCell);

    tr.appendChild(el("td", "transaction mono"));
    tr.appendChild(el("td", "error"));
    return tr;
  }

  function renderRow(tr, order) {
    var id = String(order.id);
    var status = order.status || "pending";
    tr.dataset.status = status;

    var timeEl = tr.querySelector(".created time");
    timeEl.dateTime = order.created_at || "";
    timeEl.textContent = formatDate(order.created_at);
    timeEl.title = order.created_at ? new Date(time(order.created_at)).toLocaleString() : "";

    tr.querySelector(".amount").textContent = order.amount;

    var statusCell = tr.querySelector(".status");
    statusCell.dataset.status = status;
    var badge = statusCell.querySelector(".badge");
    badge.className = "badge badge-" + status;
    badge.textContent = (STATUS_LABELS[status] || status) + (order.dispute ? " · dispute " + order.dispute : "");

    var txCell = tr.querySelector(".transaction");
    txCell.textContent = order.transaction_id || "—";
    txCell.title = order.transaction_status ? "Gateway status: " + order.transaction_status : "";
    txCell.classList.toggle("muted", !order.transaction_id);

    var errCell = tr.querySelector(".error");
    errCell.textContent = order.error || "";
    errCell.title = order.error || "";

    renderProgress(tr, order, jobs[id]);
  }

  function renderProgress(tr, order, job) {
    var status = order ? order.status : "pending";
    var progress;
    var state;
    if (order && FINAL[status]) {
      // The order is settled; the job cannot tell us anything newer.
      progress = 100;
      state = status === "paid" ? "ok" : "failed";
    } else if (job) {
      progress = Math.max(0, Math.min(100, Number(job.progress) || 0));
      state = job.status;
    } else {
      progress = status === "processing" ? 10 : 0;
      state = status === "processing" ? "running" : "pending";
    }
    var bar = tr.querySelector(".progress");
    bar.dataset.state = state;
    bar.setAttribute("aria-valuenow", String(progress));
    tr.querySelector(".progress-fill").style.width = progress + "%";
    var note = tr.querySelector(".progress-note");
    note.textContent = state === "retrying" ? "Retrying" : progress + "%";
  }

  function clearEmptyRow() {
    var empty = document.getElementById("orders-empty");
    if (empty) empty.parentNode.removeChild(empty);
  }

  function showEmptyRow(text) {
    var empty = document.getElementById("orders-empty");
    if (!empty) {
      empty = el("tr", "empty-row");
      empty.id = "orders-empty";
      var td = el("td");
      td.colSpan = 7;
      empty.appendChild(td);
      els.tbody.appendChild(empty);
    }
    // The template's row starts with a whitespace text node: write into the cell.
    empty.querySelector("td").textContent = text;
  }

  function updateCount() {
    var shown = els.tbody.querySelectorAll("tr[data-order-id]").length;
    if (!shown) {
      els.count.textContent = "";
      showEmptyRow("No orders yet. Make a payment to see it here.");
      return;
    }
    clearEmptyRow();
    var total = totalCount !== null && totalCount > shown ? totalCount : shown;
    els.count.textContent = total > shown
      ? "Showing latest " + shown + " of " + total
      : shown + (shown === 1 ? " order" : " orders");
  }

  // Insert or update one order, keeping rows newest first.
  function upsertOrder(order, fromList) {
    if (!order || order.id === undefined || order.id === null) return;
    var id = String(order.id);
    var known = orders[id];
    // Never let an older answer (a slow fetch) overwrite a newer one.
    if (known && time(order.updated_at) < time(known.updated_at)) return;
    orders[id] = order;

    var tr = orderRow(id);
    if (!tr) {
      tr = buildRow(id);
      if (!fromList && rowsLoaded) tr.classList.add("order-row-new");
      clearEmptyRow();
      var rows = els.tbody.querySelectorAll("tr[data-order-id]");
      var before = null;
      for (var i = 0; i < rows.length; i++) {
        var other = orders[rows[i].dataset.orderId];
        if (isNewer(order, other)) { before = rows[i]; break; }
      }
      els.tbody.insertBefore(tr, before);
      if (!fromList && totalCount !== null) totalCount += 1;
    }
    renderRow(tr, order);
    updateCount();
  }

  function isNewer(a, b) {
    if (!b) return true;
    var ta = time(a.created_at), tb = time(b.created_at);
    if (ta !== tb) return ta > tb;
    return Number(a.id) > Number(b.id);
  }

  var rowsLoaded = false;
  var listGeneration = 0;

  function loadOrders() {
    var generation = ++listGeneration;
    return api("GET", ORDERS_URL).then(function (result) {
      if (generation !== listGeneration) return; // a newer reload is under way
      if (!result.ok || !result.data) {
        if (!rowsLoaded) showEmptyRow("Could not load your orders.");
        toast(errorMessage(result), "error", "list-error");
        return;
      }
      var list = Array.isArray(result.data.results) ? result.data.results : [];
      totalCount = typeof result.data.count === "number" ? result.data.count : list.length;
      // Rebuild from the server's answer: it is the whole truth for page one.
      var keep = {};
      list.forEach(function (o) { keep[String(o.id)] = true; });
      Array.prototype.forEach.call(els.tbody.querySelectorAll("tr[data-order-id]"), function (tr) {
        // Keep rows added meanwhile that are newer than the page (just paid).
        var id = tr.dataset.orderId;
        if (!keep[id] && list.length && !isNewer(orders[id], list[0])) {
          tr.parentNode.removeChild(tr);
          delete orders[id];
        }
      });
      // Orders come newest first; insert oldest first so ordering stays right.
      for (var i = list.length - 1; i >= 0; i--) {
        var fresh = list[i];
        var known = orders[String(fresh.id)];
        if (known && time(fresh.updated_at) < time(known.updated_at)) continue;
        if (known) delete orders[String(fresh.id)]; // accept the list's copy
        upsertOrder(fresh, true);
      }
      rowsLoaded = true;
      updateCount();
    });
  }

  // One fetch per order at a time; an event during a fetch triggers one more.
  var fetching = {};

  function refreshOrder(id) {
    id = String(id);
    if (fetching[id]) {
      fetching[id].again = true;
      return;
    }
    fetching[id] = { again: false };
    api("GET", ORDERS_URL + encodeURIComponent(id) + "/").then(function (result) {
      var again = fetching[id].again;
      delete fetching[id];
      if (result.ok && result.data) {
        upsertOrder(result.data);
      } else if (result.status === 404) {
        var tr = orderRow(id);
        if (tr) tr.parentNode.removeChild(tr);
        delete orders[id];
        updateCount();
        return;
      }
      if (again) refreshOrder(id);
    });
  }

  // --- job events ----------------------------------------------------------

  function orderIdForJob(job) {
    if (!job || !job.subject || job.subject.type !== "orders.order") return null;
    return job.subject.id === undefined || job.subject.id === null ? null : String(job.subject.id);
  }

  // Only the payment job speaks for an order's status and progress.  Other
  // jobs about an order (its receipt email, say) are notes: a toast, nothing
  // more, so a receipt queued after the payment can never move a bar.
  var PAYMENT_KIND = "payment";

  function isPaymentJob(job) {
    return !!job && job.kind === PAYMENT_KIND;
  }

  // The order whose progress this job drives, or null.
  function rememberJob(job) {
    if (!isPaymentJob(job)) return null;
    var orderId = orderIdForJob(job);
    if (!orderId) return null;
    var known = jobs[orderId];
    // Events can arrive out of order; keep the newest state of each job.
    if (known && known.id === job.id && time(job.updated_at) < time(known.updated_at)) return orderId;
    jobs[orderId] = job;
    return orderId;
  }

  function onJobEvent(job, message) {
    if (isBookJob(job)) return onBookJobEvent(job, message);
    var orderId = rememberJob(job);
    if (message) {
      toast(message, toastKindForJob(job), jobToastKey(job.id, job.status, job.attempts, message));
    }
    if (!orderId) return; // not a payment: the toast is all it does
    var tr = orderRow(orderId);
    if (tr) renderProgress(tr, orders[orderId], jobs[orderId]);
    refreshOrder(orderId);
  }

  function onOrderEvent(order, message) {
    upsertOrder(order);
    if (message) {
      var kind = order.status === "paid" && !order.dispute ? "success" : "error";
      toast(message, kind, ["order", order.id, order.status, order.dispute || "", message].join("|"));
    }
  }

  function onSnapshot(list) {
    (list || []).forEach(function (job) {
      // After a reconnect: catch the batch's bar up, without toasts.
      if (batch && job && job.id === batch.jobId) renderBatch(job, job.message);
    });
    (list || []).forEach(rememberJob);
    loadOrders();
  }

  // --- books ---------------------------------------------------------------
  //
  // One batch at a time: the form posts the ISBNs, the table lists the
  // batch's books, the bar follows the batch job, and each book's final
  // event fills its row in and shows one toast (found, or not found).

  var BOOKS_URL = app.dataset.booksUrl || "/api/books/";
  var BOOK_KIND = "book";
  var BATCH_KIND = "book_batch";
  var BOOK_STATUS_LABELS = { pending: "Looking up", found: "Found", not_found: "Not found", failed: "Failed" };

  var books = {
    form: document.getElementById("books-form"),
    input: document.getElementById("isbns"),
    submit: document.getElementById("register-books"),
    error: document.getElementById("books-error"),
    panel: document.getElementById("batch"),
    title: document.getElementById("batch-title"),
    message: document.getElementById("batch-message"),
    bar: document.getElementById("batch-progress"),
    percent: document.getElementById("batch-percent"),
    notes: document.getElementById("batch-notes"),
    tbody: document.querySelector("#books tbody"),
  };
  var batch = null; // {id, jobId, job}

  function splitIsbns(text) {
    return text.split(/[\n\r,;]+/).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function bookRow(id) {
    return books.tbody.querySelector('tr[data-book-id="' + CSS.escape(String(id)) + '"]');
  }

  function addBookRow(id, isbn, status, note) {
    var tr = bookRow(id);
    if (!tr) {
      tr = el("tr", "book-row");
      tr.dataset.bookId = String(id);
      tr.dataset.isbn = isbn;
      ["isbn mono", "title", "authors", "pages num", "published", "status"].forEach(function (cls) {
        tr.appendChild(el("td", cls));
      });
      tr.querySelector(".status").appendChild(el("span", "badge"));
      tr.querySelector(".isbn").textContent = isbn;
      books.tbody.appendChild(tr);
    }
    renderBook(tr, { id: id, isbn: isbn, status: status }, note);
    return tr;
  }

  function renderBook(tr, book, note) {
    var status = book.status || "pending";
    tr.dataset.status = status;
    if (book.title !== undefined) {
      tr.querySelector(".title").textContent = book.title || (status === "found" ? "Untitled" : "");
      tr.querySelector(".authors").textContent = (book.authors || []).map(function (a) { return a.name; }).join(", ");
      tr.querySelector(".pages").textContent = book.pages === null || book.pages === undefined ? "" : book.pages;
      tr.querySelector(".published").textContent = book.publish_date || "";
    }
    var cell = tr.querySelector(".status");
    cell.dataset.status = status;
    var badge = cell.querySelector(".badge");
    badge.className = "badge badge-book-" + status;
    badge.textContent = note || BOOK_STATUS_LABELS[status] || status;
    cell.title = book.error || "";
  }

  function refreshBook(id) {
    api("GET", BOOKS_URL + encodeURIComponent(id) + "/").then(function (result) {
      var tr = bookRow(id);
      if (result.ok && result.data && tr) renderBook(tr, result.data);
    });
  }

  // Events beyond the channel layer's capacity may be dropped under a large
  // batch: when it ends, every row is read back from the API once.
  function refreshBatchBooks(batchId) {
    var url = BOOKS_URL + "?page_size=500&batch=" + encodeURIComponent(batchId);
    (function page(next) {
      api("GET", next).then(function (result) {
        if (!result.ok || !result.data) return;
        (result.data.results || []).forEach(function (book) {
          var tr = bookRow(book.id);
          if (tr) renderBook(tr, book);
        });
        if (result.data.next) page(result.data.next);
      });
    })(url);
  }

  function renderBatch(job, message) {
    if (!batch) return;
    // Events can arrive out of order; never move the bar backwards.
    if (batch.job && time(job.updated_at) < time(batch.job.updated_at)) return;
    batch.job = job;
    var progress = Math.max(0, Math.min(100, Number(job.progress) || 0));
    books.bar.dataset.state = job.status;
    books.bar.setAttribute("aria-valuenow", String(progress));
    books.bar.querySelector(".progress-fill").style.width = progress + "%";
    books.percent.textContent = progress + "%";
    if (message) books.message.textContent = message;
  }

  // A fast worker can finish books before the POST has answered: events for
  // rows not on the page yet are kept a little while and replayed.
  var earlyBookEvents = [];
  var EARLY_EVENTS_MAX = 2000;

  function onBookJobEvent(job, message, replaying) {
    var known = job.kind === BATCH_KIND ? batch && job.id === batch.jobId : job.subject && bookRow(job.subject.id);
    if (!known) {
      if (!replaying) {
        earlyBookEvents.push([job, message]);
        if (earlyBookEvents.length > EARLY_EVENTS_MAX) earlyBookEvents.shift();
      }
      return;
    }
    var key = jobToastKey(job.id, job.status, job.attempts, message);
    if (job.kind === BATCH_KIND) {
      if (!batch || job.id !== batch.jobId) return;
      renderBatch(job, message);
      if (job.status === "ok" || job.status === "failed") {
        toast(message, toastKindForJob(job), key);
        refreshBatchBooks(batch.id);
      }
      return;
    }
    var tr = job.subject && bookRow(job.subject.id);
    if (!tr) return; // a book of another batch, or of another tab
    if (job.status === "ok" || job.status === "failed") {
      toast(message, job.status === "ok" ? "success" : "error", key);
      refreshBook(job.subject.id);
    } else if (job.status === "retrying") {
      renderBook(tr, { status: "pending" }, "Retrying");
    }
  }

  function isBookJob(job) {
    return !!job && (job.kind === BOOK_KIND || job.kind === BATCH_KIND);
  }

  function showBooksError(message) {
    books.error.textContent = message || "";
    books.error.hidden = !message;
    if (message) books.input.setAttribute("aria-invalid", "true");
    else books.input.removeAttribute("aria-invalid");
  }

  function note(text, kind) {
    var li = el("li", "batch-note batch-note-" + kind, text);
    books.notes.appendChild(li);
  }

  function startBatch(result) {
    var data = result.data;
    books.panel.hidden = false;
    books.tbody.textContent = "";
    books.notes.textContent = "";
    books.message.textContent = "";
    batch = data.batch ? { id: data.batch.id, jobId: data.job.id, job: null } : null;
    books.title.textContent = data.batch
      ? "Batch #" + data.batch.id + ": " + data.accepted.length + (data.accepted.length === 1 ? " book" : " books")
      : "Nothing new to look up";
    renderBatch({ progress: data.batch ? 0 : 100, status: data.batch ? "pending" : "ok" }, "");
    data.accepted.forEach(function (a) { addBookRow(a.id, a.isbn, "pending"); });
    data.duplicates.forEach(function (d) {
      note(d.input + ": " + d.reason, "duplicate");
      if (!bookRow(d.id)) {
        addBookRow(d.id, d.isbn, d.status, "Already registered");
        refreshBook(d.id);
      }
    });
    data.invalid.forEach(function (i) { note((i.input || "(empty)") + ": " + i.reason, "invalid"); });
    var early = earlyBookEvents;
    earlyBookEvents = [];
    early.forEach(function (event) { onBookJobEvent(event[0], event[1], true); });
  }

  var registering = false;

  books.form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (registering) return;
    var isbns = splitIsbns(books.input.value);
    if (!isbns.length) {
      showBooksError("Scan or paste at least one ISBN.");
      books.input.focus();
      return;
    }
    registering = true;
    showBooksError("");
    books.submit.disabled = true;
    books.submit.setAttribute("aria-busy", "true");
    api("POST", BOOKS_URL + "bulk/", { isbn: isbns }).then(function (result) {
      registering = false;
      books.submit.disabled = false;
      books.submit.removeAttribute("aria-busy");
      if ((result.status === 202 || result.status === 200) && result.data) {
        startBatch(result);
        books.input.value = "";
        return;
      }
      var message = errorMessage(result);
      showBooksError(message);
      toast(message, "error");
    });
  });

  // --- websocket -----------------------------------------------------------

  var socket = null;
  var reconnectAttempt = 0;
  var reconnectTimer = null;
  var pingTimer = null;
  var lastFrameAt = 0;
  var stopped = false;

  function setConnection(state, text) {
    els.connection.dataset.state = state;
    els.connection.querySelector(".connection-text").textContent = text;
  }

  function wsUrl() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + WS_PATH;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (stopped || socket) return;
    var ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket = ws;

    ws.onopen = function () {
      if (socket !== ws) return;
      reconnectAttempt = 0;
      lastFrameAt = Date.now();
      setConnection("open", "Live");
      startPing();
    };

    ws.onmessage = function (event) {
      if (socket !== ws) return;
      lastFrameAt = Date.now();
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      switch (frame.type) {
        case "snapshot":
          onSnapshot(frame.jobs);
          break;
        case "job":
          if (frame.job) onJobEvent(frame.job, frame.message);
          break;
        case "order":
          // The gateway's word after the payment (settlement, a dispute).
          if (frame.order) onOrderEvent(frame.order, frame.message);
          break;
        case "pong":
          break;
        case "error":
          if (window.console) console.warn("Status socket:", frame.message || frame.error);
          break;
      }
    };

    ws.onclose = function (event) {
      if (socket !== ws) return;
      dropSocket();
      if (event.code === CLOSE_UNAUTHENTICATED) {
        stopped = true;
        setConnection("closed", "Signed out");
        goToLogin();
        return;
      }
      scheduleReconnect();
    };

    ws.onerror = function () {
      // onclose follows and schedules the reconnect.
    };
  }

  function dropSocket() {
    stopPing();
    var ws = socket;
    socket = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        try { ws.close(); } catch (e) { /* already closing */ }
      }
    }
  }

  function scheduleReconnect() {
    if (stopped || reconnectTimer) return;
    setConnection("closed", "Reconnecting…");
    var base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, reconnectAttempt));
    // +-25% jitter so many pages do not come back in step.
    var delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
    reconnectAttempt += 1;
    reconnectTimer = setTimeout(connect, delay);
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(frame));
    }
  }

  function startPing() {
    stopPing();
    pingTimer = setInterval(function () {
      if (Date.now() - lastFrameAt > STALE_AFTER_MS) {
        // The connection died without telling us: start over.
        dropSocket();
        scheduleReconnect();
        return;
      }
      send({ type: "ping" });
    }, PING_INTERVAL_MS);
  }

  function stopPing() {
    clearInterval(pingTimer);
    pingTimer = null;
  }

  // Come back at once when the network returns or the tab is shown again.
  function reconnectNow() {
    if (stopped || socket) return;
    reconnectAttempt = 0;
    connect();
  }
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });
  window.addEventListener("pagehide", function () {
    stopped = true;
    dropSocket();
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      stopped = false;
      reconnectNow();
    }
  });

  // --- pay form ------------------------------------------------------------

  function showFormError(message, fields) {
    els.payError.textContent = message || "";
    els.payError.hidden = !message;
    [els.amount, els.nonce].forEach(function (input) {
      if (fields && fields[input.name]) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    });
  }

  var paying = false;

  els.form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (paying) return;
    paying = true;
    showFormError("");
    els.pay.disabled = true;
    els.pay.setAttribute("aria-busy", "true");
    var body = { amount: els.amount.value.trim(), nonce: els.nonce.value };
    api("POST", ORDERS_URL, body).then(function (result) {
      paying = false;
      els.pay.disabled = false;
      els.pay.removeAttribute("aria-busy");
      if (result.status === 202 && result.data) {
        var order = result.data;
        toast("Payment of " + order.amount + " queued", "info",
          order.job !== null && order.job !== undefined
            ? jobToastKey(order.job, "pending", 0, "Payment of " + order.amount + " queued")
            : null);
        upsertOrder(order);
        refreshOrder(order.id); // it may have moved on while we were answered
        return;
      }
      var message = errorMessage(result);
      showFormError(message, result.data && result.data.fields);
      toast(message, "error");
      if (result.data && result.data.fields && result.data.fields.amount) els.amount.focus();
    });
  });

  // --- start ---------------------------------------------------------------

  loadOrders();
  connect();
})();
