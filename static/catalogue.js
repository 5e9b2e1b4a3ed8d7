/* The catalogue: every registered book with its authors, searchable, a page at a time.
 *
 * Reads /api/books/ (?search=, ?author=); a book whose lookup ends while it
 * is on screen is read again.  Plain ES module, no build step; server data is
 * only ever written with textContent.
 */

import { FINAL, statusSocket } from "./jobs/progress.js";
import { Pager, api, bindConnection, el, plural } from "./page.js";

const root = document.getElementById("catalogue-app");
const BOOKS_URL = root.dataset.booksUrl;
const AUTHORS_URL = root.dataset.authorsUrl;
const PAGE_SIZE = 25;
const STATUS = { pending: "Looking up", found: "Found", not_found: "Not found", failed: "Failed" };

const els = {
  form: document.getElementById("catalogue-search"),
  search: document.getElementById("search"),
  filters: document.getElementById("catalogue-filters"),
  tbody: document.querySelector("#catalogue tbody"),
  count: document.getElementById("catalogue-count"),
  more: document.getElementById("catalogue-more"),
};

const region = document.querySelector('[data-job-progress="mine"]');
const socket = statusSocket(region ? region.dataset.wsPath : "/ws/status/");
bindConnection(socket);

let shown = 0;
let generation = 0;

function query() {
  return new URLSearchParams(location.search);
}

function listUrl() {
  const params = new URLSearchParams({ page_size: String(PAGE_SIZE) });
  const current = query();
  for (const name of ["search", "author"]) {
    if (current.get(name)) params.set(name, current.get(name));
  }
  return `${BOOKS_URL}?${params}`;
}

function cell(tr, className, label) {
  const td = tr.appendChild(el("td", className));
  td.dataset.label = label;
  return td;
}

function renderBook(tr, book) {
  tr.dataset.status = book.status;
  const title = tr.querySelector(".title");
  title.textContent = book.title || (book.status === "found" ? "Untitled" : "—");
  if (book.subtitle) title.appendChild(el("span", "subtitle", book.subtitle));
  const authors = tr.querySelector(".authors");
  authors.textContent = "";
  (book.authors || []).forEach((author, index) => {
    if (index) authors.appendChild(document.createTextNode(", "));
    const link = authors.appendChild(el("button", "author-link", author.name));
    link.type = "button";
    link.title = `Books by ${author.name}`;
    link.addEventListener("click", () => filterBy({ author: String(author.id) }));
  });
  tr.querySelector(".pages").textContent = book.pages ?? "";
  tr.querySelector(".published").textContent = book.publish_date || "";
  const badge = tr.querySelector(".badge");
  badge.className = `badge badge-book-${book.status}`;
  badge.textContent = STATUS[book.status] || book.status;
}

function addBook(book) {
  let tr = els.tbody.querySelector(`tr[data-book-id="${CSS.escape(String(book.id))}"]`);
  if (!tr) {
    tr = el("tr", "book-row");
    tr.dataset.bookId = String(book.id);
    tr.dataset.isbn = book.isbn;
    cell(tr, "title", "Title");
    cell(tr, "authors", "Authors");
    cell(tr, "isbn mono", "ISBN").textContent = book.isbn;
    cell(tr, "pages num", "Pages");
    cell(tr, "published", "Published");
    cell(tr, "status", "Status").appendChild(el("span", "badge"));
    els.tbody.appendChild(tr);
    shown += 1;
  }
  renderBook(tr, book);
}

function setEmpty(text) {
  let empty = document.getElementById("catalogue-empty");
  if (!text) {
    if (empty) empty.remove();
    return;
  }
  if (!empty) {
    empty = els.tbody.appendChild(el("tr", "empty-row"));
    empty.id = "catalogue-empty";
    empty.appendChild(el("td")).colSpan = 6;
  }
  empty.querySelector("td").textContent = text;
}

async function loadPage(url, mine = generation) {
  const result = await api("GET", url);
  if (mine !== generation) return null; // a newer search started meanwhile
  if (!result.ok || !result.data) {
    setEmpty(shown ? "" : "Could not load the catalogue. Reload the page to try again.");
    return pager.next;
  }
  (result.data.results || []).forEach(addBook);
  const total = result.data.count || 0;
  setEmpty(shown ? "" : query().toString() ? "No books match." : "No books yet. Register some ISBNs to see them here.");
  els.count.textContent = total > shown ? `Showing ${shown} of ${total} books` : shown ? plural(shown, "book", "books") : "";
  return result.data.next;
}

const pager = new Pager(els.more, (url) => loadPage(url));

async function reload() {
  generation += 1;
  shown = 0;
  els.tbody.textContent = "";
  setEmpty("Loading the catalogue…");
  pager.setNext(null);
  showFilters();
  const mine = generation;
  const next = await loadPage(listUrl(), mine);
  if (mine === generation) pager.setNext(next);
}

function filterBy(changes) {
  const params = query();
  Object.entries(changes).forEach(([name, value]) => {
    if (value) params.set(name, value);
    else params.delete(name);
  });
  const search = params.toString();
  history.pushState(null, "", search ? `?${search}` : location.pathname);
  els.search.value = params.get("search") || "";
  reload();
}

async function showFilters() {
  els.filters.textContent = "";
  const author = query().get("author");
  if (!author) return;
  const chip = els.filters.appendChild(el("span", "chip"));
  const label = chip.appendChild(el("span", "", "By one author"));
  const clear = chip.appendChild(el("button", "", "\u00d7"));
  clear.type = "button";
  clear.setAttribute("aria-label", "Show every author");
  clear.addEventListener("click", () => filterBy({ author: "" }));
  const result = await api("GET", `${AUTHORS_URL}${encodeURIComponent(author)}/`);
  if (result.ok && result.data) label.textContent = `By ${result.data.name}`;
}

els.form.addEventListener("submit", (event) => {
  event.preventDefault();
  filterBy({ search: els.search.value.trim() });
});
window.addEventListener("popstate", () => {
  els.search.value = query().get("search") || "";
  reload();
});

// A job about a book on screen just ended (its lookup, or any other): read the book again.
socket.addEventListener("job", async (event) => {
  const { job } = event.detail;
  if (!FINAL.has(job.status) || !job.subject || job.subject.type !== "books.book") return;
  const tr = els.tbody.querySelector(`tr[data-book-id="${CSS.escape(String(job.subject.id))}"]`);
  if (!tr) return;
  const result = await api("GET", `${BOOKS_URL}${encodeURIComponent(job.subject.id)}/`);
  if (result.ok && result.data) renderBook(tr, result.data);
});

reload();
