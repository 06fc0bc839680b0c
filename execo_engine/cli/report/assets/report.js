/* execo-sweep report: the tables (sort, filter, pages), the figures (plotly), and the reload
 * of a watched report. Every user text goes into the page as text (textContent), never as
 * markup; the data comes from <script type="application/json"> elements (see page.py). */
(function () {
  "use strict";

  var PAGE_SIZES = [50, 100, 500, 1000];
  var STATE_KEY = "execo-report:" + location.pathname;
  var saved = readState();

  function readState() {
    try { return JSON.parse(sessionStorage.getItem(STATE_KEY) || "{}"); } catch (e) { return {}; }
  }

  function jsonOf(id) {
    var element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function utc(seconds) {
    var d = new Date(seconds * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + "Z";
  }

  /* One column of a table: its values decoded on demand, their text, their sort order. */
  function Column(spec, rows) {
    this.name = spec.name;
    this.type = spec.type;          // "number", "time" or "text"
    this.pre = !!spec.pre;
    this.nowrap = !!spec.nowrap;
    this.levels = spec.levels || null;
    this.codes = spec.codes || null;
    this.values = spec.values || null;
    this.rows = rows;
    this.lower = null;
  }
  Column.prototype.value = function (i) {
    return this.levels ? this.levels[this.codes[i]] : this.values[i];
  };
  Column.prototype.text = function (i) {
    var v = this.value(i);
    if (v === null || v === undefined) return "";
    if (this.type === "time" && typeof v === "number") return utc(v);
    return String(v);
  };
  Column.prototype.lowered = function () {
    if (!this.lower) {
      this.lower = new Array(this.rows);
      for (var i = 0; i < this.rows; i++) this.lower[i] = this.text(i).toLowerCase();
    }
    return this.lower;
  };
  function compareValues(a, b) {
    var na = a === null || a === undefined, nb = b === null || b === undefined;
    if (na || nb) return na === nb ? 0 : na ? 1 : -1;  // empty cells last
    var ta = typeof a === "number", tb = typeof b === "number";
    if (ta !== tb) return ta ? -1 : 1;                   // numbers before text
    return a < b ? -1 : a > b ? 1 : 0;
  }
  /* A key per row that sorts as the values do (levels are ranked once). */
  Column.prototype.sortKeys = function () {
    var keys = new Array(this.rows), i;
    if (this.levels) {
      var order = this.levels.map(function (v, k) { return k; });
      var levels = this.levels;
      order.sort(function (a, b) { return compareValues(levels[a], levels[b]); });
      var rank = new Array(levels.length);
      order.forEach(function (k, r) { rank[k] = r; });
      for (i = 0; i < this.rows; i++) keys[i] = rank[this.codes[i]];
    } else {
      for (i = 0; i < this.rows; i++) keys[i] = this.values[i];
    }
    return keys;
  };

  /* A filter typed in a column's box: ">3", "<=0.5", "=2", "!=a" compare (numbers as numbers),
   * anything else keeps the rows whose text contains it (case ignored). */
  function matcher(column, typed) {
    var m = /^\s*(<=|>=|!=|<|>|=)\s*(.*)$/.exec(typed);
    if (m) {
      var op = m[1], operand = m[2], number = Number(operand);
      var numeric = operand.trim() !== "" && !isNaN(number);
      return function (i) {
        var v = column.value(i);
        var left = numeric && typeof v === "number" ? v : column.text(i);
        var right = numeric && typeof v === "number" ? number : operand;
        switch (op) {
          case "<": return left < right;
          case ">": return left > right;
          case "<=": return left <= right;
          case ">=": return left >= right;
          case "=": return left === right;
          default: return left !== right;
        }
      };
    }
    var needle = typed.toLowerCase(), lower = column.lowered();
    return function (i) { return lower[i].indexOf(needle) !== -1; };
  }

  /* A sortable, filterable table shown a page at a time, in place of `holder`. */
  function Table(holder, spec) {
    var self = this;
    this.id = spec.id;
    this.rows = spec.rows;
    this.columns = spec.columns.map(function (c) { return new Column(c, spec.rows); });
    /* what the reader had before a reload, by column name (columns may come and go) */
    var state = (saved.tables || {})[this.id] || {}, index = {};
    this.columns.forEach(function (column, k) { index[column.name] = k; });
    this.filters = {};
    Object.keys(state.filters || {}).forEach(function (name) {
      if (name in index) self.filters[index[name]] = state.filters[name];
    });
    this.search = state.search || "";
    this.sortBy = state.sortBy in index ? index[state.sortBy] : -1;
    this.descending = !!state.descending;
    this.pageSize = state.pageSize || PAGE_SIZES[1];
    this.page = state.page || 0;

    var toolbar = make("div", "toolbar");
    this.searchBox = make("input");
    this.searchBox.type = "search";
    this.searchBox.placeholder = "filter every column";
    this.searchBox.value = this.search;
    this.searchBox.setAttribute("aria-label", "filter every column of " + this.id);
    this.prev = make("button", "", "\u2190 previous");
    this.next = make("button", "", "next \u2192");
    this.size = make("select");
    PAGE_SIZES.forEach(function (n) {
      var option = make("option", "", n + " rows");
      option.value = n;
      if (n === self.pageSize) option.selected = true;
      self.size.appendChild(option);
    });
    this.count = make("span", "count");
    [this.searchBox, this.prev, this.next, this.size, this.count].forEach(function (e) {
      toolbar.appendChild(e);
    });

    var refilter = debounce(function () { self.refilter(); });
    var table = make("table", "data");
    table.id = "table-" + this.id;
    var head = make("thead"), names = make("tr"), filters = make("tr", "filters");
    this.headers = this.columns.map(function (column, k) {
      var th = make("th", "sortable" + (column.type === "text" ? "" : " num"), column.name);
      th.title = "sort by " + column.name;
      th.addEventListener("click", function () { self.sort(k); });
      names.appendChild(th);
      var cell = make("th"), box = make("input");
      box.type = "search";
      box.placeholder = column.type === "text" ? "contains" : "e.g. >3";
      box.value = self.filters[k] || "";
      box.setAttribute("aria-label", "filter " + column.name);
      box.addEventListener("input", function () {  // kept at once, applied once typing stops
        self.filters[k] = box.value;
        self.page = 0;
        refilter();
      });
      cell.appendChild(box);
      filters.appendChild(cell);
      return th;
    });
    head.appendChild(names);
    head.appendChild(filters);
    table.appendChild(head);
    this.body = make("tbody");
    table.appendChild(this.body);

    this.searchBox.addEventListener("input", function () {
      self.search = self.searchBox.value;
      self.page = 0;
      refilter();
    });
    this.prev.addEventListener("click", function () { self.page -= 1; self.draw(); });
    this.next.addEventListener("click", function () { self.page += 1; self.draw(); });
    this.size.addEventListener("change", function () {
      self.pageSize = Number(self.size.value);
      self.page = 0;
      self.draw();
    });

    var scroll = make("div", "scroll");
    scroll.appendChild(table);
    holder.appendChild(toolbar);
    holder.appendChild(scroll);
    this.order = null;
    this.refilter();
  }
  Table.prototype.refilter = function () {
    var tests = [], self = this;
    this.columns.forEach(function (column, k) {
      var typed = self.filters[k];
      if (typed && typed.trim()) tests.push(matcher(column, typed.trim()));
    });
    var needle = this.search.trim().toLowerCase();
    var lowered = needle ? this.columns.map(function (c) { return c.lowered(); }) : [];
    var kept = [];
    for (var i = 0; i < this.rows; i++) {
      var ok = true;
      for (var t = 0; ok && t < tests.length; t++) ok = tests[t](i);
      if (ok && needle) {
        ok = false;
        for (var c = 0; !ok && c < lowered.length; c++) ok = lowered[c][i].indexOf(needle) !== -1;
      }
      if (ok) kept.push(i);
    }
    this.order = kept;
    this.applySort();
    this.draw();
  };
  Table.prototype.sort = function (k) {
    if (this.sortBy === k) this.descending = !this.descending;
    else { this.sortBy = k; this.descending = false; }
    this.applySort();
    this.draw();
  };
  Table.prototype.applySort = function () {
    var self = this;
    this.headers.forEach(function (th, k) {
      if (k === self.sortBy) th.setAttribute("aria-sort", self.descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    if (this.sortBy < 0 || this.sortBy >= this.columns.length) return;
    var keys = this.columns[this.sortBy].sortKeys(), sign = this.descending ? -1 : 1;
    this.order.sort(function (a, b) { return sign * compareValues(keys[a], keys[b]) || a - b; });
  };
  Table.prototype.draw = function () {
    var pages = Math.max(1, Math.ceil(this.order.length / this.pageSize));
    this.page = Math.min(Math.max(0, this.page), pages - 1);
    var first = this.page * this.pageSize;
    var last = Math.min(this.order.length, first + this.pageSize);
    var body = make("tbody");
    for (var r = first; r < last; r++) {
      var i = this.order[r], tr = make("tr");
      for (var k = 0; k < this.columns.length; k++) {
        var column = this.columns[k];
        var className = column.pre ? "pre" : column.type === "text" ? "" : "num";
        if (column.nowrap) className += " nowrap";
        tr.appendChild(make("td", className, column.text(i)));
      }
      body.appendChild(tr);
    }
    this.body.parentNode.replaceChild(body, this.body);
    this.body = body;
    var filtered = this.order.length === this.rows ? "" : " (filtered from " + this.rows + ")";
    this.count.textContent = (this.order.length ? (first + 1) + "\u2013" + last : "0") +
      " of " + this.order.length + filtered;
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
  };
  Table.prototype.state = function () {
    var filters = {}, self = this;
    Object.keys(this.filters).forEach(function (k) {
      filters[self.columns[k].name] = self.filters[k];
    });
    var sortBy = this.sortBy >= 0 ? this.columns[this.sortBy].name : null;
    return { filters: filters, search: this.search, sortBy: sortBy,
             descending: this.descending, pageSize: this.pageSize, page: this.page };
  };

  function debounce(f) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(f, 200); };
  }

  var tables = [];
  (jsonOf("report-tables") || []).forEach(function (spec) {
    var holder = document.getElementById("holder-" + spec.id);
    if (holder) tables.push(new Table(holder, spec));
  });

  /* Figures: drawn one at a time once the page has shown, so that the tables answer at once;
   * the page says when the last one is drawn (ms since the navigation started). */
  var figures = jsonOf("report-figures") || [];
  var template = jsonOf("report-template");
  var config = { displaylogo: false, responsive: true };
  function drawFrom(k) {
    if (k >= figures.length || typeof Plotly === "undefined") {
      document.documentElement.setAttribute("data-ready-ms", Math.round(performance.now()));
      return;
    }
    var holder = document.getElementById("figure-" + k);
    if (holder) {
      figures[k].layout.template = template;
      Plotly.newPlot(holder, figures[k].data, figures[k].layout, config);
    }
    setTimeout(function () { drawFrom(k + 1); }, 0);
  }
  requestAnimationFrame(function () { setTimeout(function () { drawFrom(0); }, 0); });

  /* A watched report reloads itself (the command rewrites the file), keeping where the reader
   * was: scroll, table filters, sort and page, and whether reloading is paused. */
  var reload = Number(document.body.getAttribute("data-reload") || 0);
  var pause = document.getElementById("pause-reload");
  if (pause && saved.paused) pause.checked = true;
  if (saved.scroll) window.scrollTo(0, saved.scroll);
  function keep() {
    var state = { scroll: window.scrollY, paused: !!(pause && pause.checked), tables: {} };
    tables.forEach(function (t) { state.tables[t.id] = t.state(); });
    try { sessionStorage.setItem(STATE_KEY, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }
  if (reload > 0) {
    window.addEventListener("beforeunload", keep);
    setInterval(function () { if (!(pause && pause.checked)) location.reload(); }, reload * 1000);
  } else {
    try { sessionStorage.removeItem(STATE_KEY); } catch (e) { /* private mode */ }
  }
})();
