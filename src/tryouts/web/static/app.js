/* Tryouts dashboard: the live parts of the pages (no framework, no build step).
 *
 * Rules this file keeps (the page's Content-Security-Policy enforces most of them):
 *  - every handler is attached with addEventListener: no inline script, no on* attributes, no eval;
 *  - model output and anything else from the store is put into the page with textContent / text nodes only,
 *    never as HTML;
 *  - every state-changing request sends the X-Tryouts-CSRF header from <meta name="csrf-token">.
 *
 * Pages opt in through <body data-page="...">: "compare" (live comparison over server-sent events), "run"
 * (Plotly charts, SVG traces only) and "arena" (blind votes and the ranking).
 */
"use strict";

(function () {
  // ---- small helpers -----------------------------------------------------------------------------

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function $all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  /** An element with attributes (class, text, dataset, or plain attributes) and children (nodes or text). */
  function h(tag, props) {
    var node = document.createElement(tag);
    var p = props || {};
    Object.keys(p).forEach(function (key) {
      var value = p[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "dataset") Object.keys(value).forEach(function (k) { node.dataset[k] = String(value[k]); });
      else if (/^on/i.test(key)) throw new Error("inline handlers are not allowed: " + key);
      else node.setAttribute(key, value === true ? "" : String(value));
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function errorDetail(data) {
    if (!data) return "";
    var d = data.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) {
      return d.map(function (e) { return (e.loc || []).slice(1).join(".") + ": " + e.msg; }).join("; ");
    }
    return "";
  }

  /** JSON from the dashboard's API; POST bodies go with the CSRF header. Throws an Error with the API's detail. */
  function api(path, options) {
    var opts = options || {};
    var init = { method: opts.method || "GET", headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (opts.body !== undefined || init.method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-Tryouts-CSRF"] = csrfToken();
      init.body = JSON.stringify(opts.body === undefined ? {} : opts.body);
    }
    return fetch(path, init).then(function (response) {
      return response.text().then(function (body) {
        var data = null;
        try { data = body ? JSON.parse(body) : null; } catch (e) { data = null; }
        if (!response.ok) {
          throw new Error(errorDetail(data) || (response.status + " " + response.statusText));
        }
        return data;
      });
    });
  }

  function showError(node, message) {
    if (!node) return;
    node.textContent = message || "";
    node.hidden = !message;
  }

  // ---- formatting (the same rules as the server-rendered pages) ----------------------------------

  function num(value, digits) {
    var d = digits === undefined ? 1 : digits;
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    return Number(value).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  }

  function cost(value, source) {
    if (value === null || value === undefined) return "unknown";
    var f = Number(value);
    if (f === 0) return source === "local" ? "0 (local)" : source === "cache" ? "0 (cached)" : "$0";
    return Math.abs(f) < 0.01 ? "$" + f.toFixed(6) : "$" + num(f, 4);
  }

  function tokens(value, estimated) {
    if (value === null || value === undefined) return "–";
    return (estimated ? "~" : "") + String(value);
  }

  /** A model reference shortened for headers: local paths to their last part, URLs to host and name. */
  function shortLabel(ref) {
    var i = ref.indexOf(":");
    if (i < 0) return ref;
    var provider = ref.slice(0, i);
    var model = ref.slice(i + 1);
    if (model.indexOf("#") >= 0 && model.indexOf("://") >= 0) {
      var cut = model.lastIndexOf("#");
      var host = model.slice(0, cut).split("://")[1].split("/")[0];
      return provider + ":" + host + "#" + model.slice(cut + 1);
    }
    if (/^[.\/~]/.test(model)) {
      var parts = model.replace(/\/+$/, "").split("/");
      return provider + ":" + parts[parts.length - 1];
    }
    return ref;
  }

  // ---- new comparison ----------------------------------------------------------------------------

  /** "Run a suite": POST /api/suite-runs, then follow its progress and open its page when it ends. */
  function initSuiteForm() {
    var form = $("#suite-form");
    if (!form) return;
    var status = $("#suite-status");
    var error = $("#suite-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.hidden = true;
      status.textContent = "Starting…";
      api("/api/suite-runs", { method: "POST", body: { path: $("#suite-path").value.trim() } }).then(function (started) {
        function poll() {
          api("/api/suite-runs/" + encodeURIComponent(started.run_id)).then(function (p) {
            status.textContent = "Run " + p.run_id + ": " + p.done + " of " + p.cells + " cells · " + p.status;
            if (p.status === "running") setTimeout(poll, 500);
            else window.location.href = started.page;
          }).catch(function (err) { showError(error, err.message); });
        }
        poll();
      }).catch(function (err) { status.textContent = ""; showError(error, err.message); });
    });
  }

  function initCompare() {
    initSuiteForm();
    var form = $("#compare-form");
    var chosenList = $("#chosen");
    var emptyNote = $("#models-empty");
    var catalogPick = $("#catalog-pick");
    var refInput = $("#model-ref");
    var startButton = $("#start");
    var stopButton = $("#stop");
    var statusLine = $("#live-status");
    var errorLine = $("#compare-error");
    var panelsBox = $("#panels");
    var runLink = $("#run-link");
    var providers = {};
    var chosen = [];
    var live = null;

    function providerOf(ref) {
      var i = ref.indexOf(":");
      return i < 0 ? "" : ref.slice(0, i);
    }

    function readiness(ref) {
      var info = providers[providerOf(ref)];
      if (!info) return { ready: false, text: Object.keys(providers).length ? "unknown provider" : "…" };
      return { ready: info.ready, text: info.ready ? "ready" : info.status };
    }

    function renderChosen() {
      chosenList.replaceChildren();
      chosen.forEach(function (ref, i) {
        var state = readiness(ref);
        var remove = h("button", { type: "button", class: "remove", "aria-label": "Remove " + ref, text: "×" });
        remove.addEventListener("click", function () {
          chosen.splice(i, 1);
          renderChosen();
        });
        chosenList.append(h("li", { dataset: { ref: ref } },
          h("code", { text: ref }), " ",
          h("span", { class: "readiness " + (state.ready ? "ready" : "not-ready"), text: state.text }), " ",
          remove));
      });
      emptyNote.hidden = chosen.length > 0;
    }

    function addModel(ref) {
      var value = (ref || "").trim();
      showError(errorLine, "");
      if (!value) return;
      if (value.indexOf(":") <= 0) {
        showError(errorLine, "A model reference is PROVIDER:MODEL, e.g. openai:gpt-6-luna, hf:/path/to/folder, " +
          "llamacpp:/path/model.gguf or openai-compat:http://127.0.0.1:8080/v1#name.");
        return;
      }
      if (chosen.indexOf(value) >= 0) {
        showError(errorLine, value + " is already chosen.");
        return;
      }
      if (chosen.length >= 12) {
        showError(errorLine, "At most 12 models at once.");
        return;
      }
      chosen.push(value);
      renderChosen();
    }

    function fillProviders(list) {
      var body = $("#providers-body");
      body.replaceChildren();
      list.forEach(function (p) {
        providers[p.name] = p;
        body.append(h("tr", { class: p.ready ? "ready" : "" },
          h("td", null, h("code", { text: p.name })),
          h("td", { text: p.local ? "local" : "API" }),
          h("td", { class: p.ready ? "pass" : "fail", text: p.ready ? "yes" : "no" }),
          h("td", { text: p.status })));
      });
    }

    function fillCatalog(catalog) {
      var groups = {};
      catalog.models.forEach(function (m) {
        (m.routes || []).forEach(function (route) {
          var provider = providerOf(route);
          (groups[provider] = groups[provider] || []).push({ route: route, name: m.name });
        });
      });
      catalogPick.replaceChildren(h("option", { value: "", text: "Choose a model…" }));
      Object.keys(groups).sort(function (a, b) {
        var ra = providers[a] && providers[a].ready ? 0 : 1;
        var rb = providers[b] && providers[b].ready ? 0 : 1;
        return ra - rb || a.localeCompare(b);
      }).forEach(function (provider) {
        var state = readiness(provider + ":");
        var group = h("optgroup", { label: provider + " — " + state.text });
        groups[provider].forEach(function (item) {
          group.append(h("option", { value: item.route, text: item.name + " — " + item.route }));
        });
        catalogPick.append(group);
      });
    }

    Promise.all([api("/api/providers"), api("/api/models")]).then(function (results) {
      fillProviders(results[0]);
      fillCatalog(results[1]);
      renderChosen();
    }).catch(function (err) {
      catalogPick.replaceChildren(h("option", { value: "", text: "The catalog could not be loaded" }));
      showError(errorLine, "Could not load the catalog or providers: " + err.message);
    });

    $("#add-catalog").addEventListener("click", function () { addModel(catalogPick.value); });
    $("#add-ref").addEventListener("click", function () {
      addModel(refInput.value);
      if (chosen.indexOf(refInput.value.trim()) >= 0) refInput.value = "";
    });
    refInput.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        $("#add-ref").click();
      }
    });
    try {
      JSON.parse(chosenList.dataset.prefill || "[]").forEach(addModel);
    } catch (e) { /* a hand-made address: ignore */ }
    renderChosen();

    // the live panels -------------------------------------------------------------------------------

    function makePanel(ref, index) {
      var stat = function (key, label, unit) {
        return h("div", null, h("dt", { text: label }),
          h("dd", null, h("span", { class: "v", dataset: { stat: key, value: "" }, text: "–" }), unit ? " " + unit : ""));
      };
      var panel = h("article", { class: "panel", dataset: { model: index, state: "waiting", deltas: 0 } },
        h("header", null, h("h3", { title: ref, text: shortLabel(ref) }), h("span", { class: "pstate", text: "waiting" })),
        h("dl", { class: "pstats" }, stat("ttft", "TTFT", "ms"), stat("tps", "tok/s"), stat("tokens", "tokens"),
          stat("cost", "cost"), stat("e2e", "E2E", "ms"), stat("checks", "checks"), stat("f1", "token F1")),
        h("pre", { class: "out" }),
        h("p", { class: "error", hidden: true }));
      var out = panel.querySelector("pre.out");
      var textNode = document.createTextNode("");
      out.append(textNode);
      return { node: panel, text: textNode, chunks: 0, first: null, last: null };
    }

    function setStat(panel, key, text, value, provisional) {
      var node = panel.node.querySelector('[data-stat="' + key + '"]');
      node.textContent = text;
      node.dataset.value = value === null || value === undefined ? "" : String(value);
      node.classList.toggle("provisional", Boolean(provisional));
    }

    function setState(panel, state, text) {
      panel.node.dataset.state = state;
      panel.node.querySelector(".pstate").textContent = text || state;
    }

    function onDelta(panel, event) {
      var out = panel.text.parentNode;
      var following = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
      panel.text.appendData(event.text);
      if (following) out.scrollTop = out.scrollHeight;  // keep up with the text unless the reader scrolled up
      panel.chunks += 1;
      panel.node.dataset.deltas = String(panel.chunks);
      if (panel.first === null) panel.first = event.elapsed_ms;
      panel.last = event.elapsed_ms;
      if (panel.node.dataset.final) return;
      setState(panel, "streaming", "streaming…");
      setStat(panel, "ttft", num(panel.first), panel.first, true);
      setStat(panel, "tokens", "~" + panel.chunks + " chunks", null, true);
      if (panel.chunks > 1 && panel.last > panel.first) {
        var rate = (panel.chunks - 1) / ((panel.last - panel.first) / 1000);
        setStat(panel, "tps", num(rate), null, true);
      }
    }

    function onResult(panel, r) {
      panel.node.dataset.final = "1";
      panel.node.dataset.resultId = String(r.id);
      panel.text.data = r.text || "";
      panel.text.parentNode.hidden = !r.ok && !r.text;
      setStat(panel, "ttft", r.batch ? "n/a (batch)" : num(r.ttft_ms), r.ttft_ms);
      setStat(panel, "tps", r.batch ? "n/a (batch)" : num(r.output_tokens_per_s), r.output_tokens_per_s);
      setStat(panel, "tokens", tokens(r.output_tokens, r.tokens_estimated), r.output_tokens);
      setStat(panel, "cost", cost(r.cost_usd, r.cost_source), r.cost_usd);
      setStat(panel, "e2e", r.batch ? "n/a (batch)" : num(r.e2e_ms), r.e2e_ms);
      var scores = r.scores || {};
      if (scores.assert) {
        var checks = scores.assert.results || [];
        var passed = checks.filter(function (c) { return c.passed; }).length;
        setStat(panel, "checks", (scores.assert.passed ? "✓ " : "✗ ") + passed + "/" + checks.length,
          scores.assert.passed ? 1 : 0);
        var failedCheck = checks.filter(function (c) { return !c.passed; })[0];
        if (failedCheck && r.ok) panel.node.querySelector('[data-stat="checks"]').title = failedCheck.type + ": " + (failedCheck.reason || "failed");
      }
      if (scores.reference && scores.reference.token_f1 !== undefined) {
        setStat(panel, "f1", scores.reference.token_f1.toFixed(3), scores.reference.token_f1);
      }
      var state = r.ok ? "done" : (r.error_kind === "stopped" ? "stopped" : "failed");
      setState(panel, state, state);
      showError(panel.node.querySelector("p.error"), r.ok ? "" : (r.error || "failed"));
    }

    function finish(message) {
      if (live && live.source) live.source.close();
      live = null;
      startButton.disabled = false;
      stopButton.disabled = true;
      statusLine.textContent = message;
    }

    function start(body) {
      panelsBox.replaceChildren();
      runLink.hidden = true;
      runLink.replaceChildren();
      var panels = body.models.map(makePanel);
      panels.forEach(function (p) { panelsBox.append(p.node); });
      panelsBox.dataset.state = "starting";
      startButton.disabled = true;
      // the buttons, the status line and the panels in view (a long prompt or form pushes them below the fold)
      startButton.closest(".actions").scrollIntoView({ block: "start", behavior: "smooth" });
      statusLine.textContent = "Starting…";
      api("/api/compare", { method: "POST", body: body }).then(function (out) {
        var source = new EventSource(out.events);
        live = { key: out.key, source: source, panels: panels };
        panelsBox.dataset.key = out.key;  // review.js: each panel's own Stop button
        stopButton.disabled = false;
        panelsBox.dataset.state = "running";
        statusLine.textContent = "Running…";
        source.addEventListener("message", function (message) {
          var event = JSON.parse(message.data);
          var panel = typeof event.model === "number" ? panels[event.model] : null;
          if (event.type === "run") {
            panelsBox.dataset.run = event.run_id;
            statusLine.textContent = "Running as run " + event.run_id + "…";
          } else if (event.type === "loading" && panel) {
            setState(panel, "loading", "loading the model…");
          } else if (event.type === "started" && panel) {
            setState(panel, "started", "waiting for the first token…");
          } else if (event.type === "delta" && panel) {
            onDelta(panel, event);
          } else if (event.type === "result" && panel) {
            onResult(panel, event.result);
          } else if (event.type === "error") {
            showError(errorLine, event.message);
          } else if (event.type === "end") {
            panels.forEach(function (p) { if (!p.node.dataset.final) setState(p, "stopped", "stopped"); });
            panelsBox.dataset.state = "ended";
            panelsBox.dataset.status = event.status;
            var runId = event.run_id || panelsBox.dataset.run;
            if (runId) {
              runLink.replaceChildren("Stored as run ", h("a", { href: "/runs/" + encodeURIComponent(runId), text: runId }),
                " · ", h("a", { href: "/arena/" + encodeURIComponent(runId), text: "vote blind on it" }));
              runLink.hidden = false;
            }
            finish("Finished: " + event.status + ".");
          }
        });
        source.addEventListener("error", function () {
          if (live && live.source === source && source.readyState === EventSource.CLOSED) {
            finish("The connection to the dashboard was lost; the run continues on the server (see Runs).");
          }
        });
      }).catch(function (err) {
        panelsBox.replaceChildren();
        panelsBox.dataset.state = "";
        showError(errorLine, err.message);
        finish("");
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      showError(errorLine, "");
      var pending = refInput.value.trim();
      if (pending && chosen.indexOf(pending) < 0) addModel(pending);
      var prompt = $("#prompt").value;
      if (!chosen.length) return showError(errorLine, "Choose at least one model (two or more to compare).");
      if (!prompt.trim()) return showError(errorLine, "Type a prompt.");
      var maxTokens = parseInt($("#max-tokens").value, 10);
      if (!(maxTokens >= 1)) return showError(errorLine, "Max tokens must be a whole number of at least 1.");
      var temperatureText = $("#temperature").value.trim();
      var temperature = temperatureText === "" ? null : Number(temperatureText);
      if (temperature !== null && !(temperature >= 0)) return showError(errorLine, "Temperature must be 0 or more.");
      var system = $("#system").value;
      var expected = $("#expected").value;
      var asserts = $("#asserts").value.split("\n").map(function (line) { return line.trim(); })
        .filter(function (line) { return line; });
      start({ prompt: prompt, models: chosen.slice(), system: system.trim() ? system : null, max_tokens: maxTokens,
              temperature: temperature, expected: expected.trim() ? expected : null, asserts: asserts });
    });

    stopButton.addEventListener("click", function () {
      if (!live) return;
      stopButton.disabled = true;
      statusLine.textContent = "Stopping…";
      api("/api/compare/" + encodeURIComponent(live.key) + "/stop", { method: "POST" }).catch(function (err) {
        showError(errorLine, err.message);
      });
    });
  }

  // ---- run page: charts --------------------------------------------------------------------------

  /** Plotly reads a few HTML-like tags in labels; show a label as typed instead. */
  function plotText(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  var PLOT_CONFIG = { displaylogo: false, responsive: true };

  /** The page's palette (app.css's custom properties: light or dark, as the system says), read when drawing. */
  function palette() {
    var css = window.getComputedStyle(document.documentElement);
    var get = function (name, fallback) { return css.getPropertyValue(name).trim() || fallback; };
    return { fg: get("--fg", "#1d2026"), muted: get("--muted", "#5f6672"), line: get("--line", "#dde1e7") };
  }

  /** The colours of a chart's text, axes and grid from the palette (Plotly's defaults are for white paper). */
  function themed(chartLayout) {
    var c = palette();
    chartLayout.font = Object.assign({}, chartLayout.font, { color: c.fg });
    chartLayout.title = Object.assign({}, chartLayout.title);
    chartLayout.title.font = Object.assign({}, chartLayout.title.font, { color: c.fg });
    chartLayout.legend = Object.assign({}, chartLayout.legend, { font: { color: c.fg } });
    ["xaxis", "yaxis"].forEach(function (axis) {
      chartLayout[axis] = Object.assign({}, chartLayout[axis], {
        color: c.fg, gridcolor: c.line, linecolor: c.muted, zerolinecolor: c.line,
        tickfont: { color: c.fg }
      });
      chartLayout[axis].title = Object.assign({}, chartLayout[axis].title, { font: { color: c.fg } });
    });
    return chartLayout;
  }

  function layout(title, xTitle, yTitle, extra) {
    var base = {
      title: { text: title, font: { size: 15 } },
      margin: { l: 60, r: 20, t: 44, b: 56 },
      xaxis: { title: { text: xTitle }, zeroline: false },
      yaxis: { title: { text: yTitle }, zeroline: false },
      legend: { orientation: "h", y: -0.22 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12 },
      hovermode: "closest",
      height: 380
    };
    Object.keys(extra || {}).forEach(function (k) { base[k] = extra[k]; });
    return base;
  }

  /** Quality axes: the 0–1 scale with room for the labels above the points. */
  function qualityAxis(chartLayout, models) {
    var inUnit = models.every(function (m) {
      return m.quality === null || (m.quality_low === null ? m.quality : m.quality_low) >= 0 &&
        (m.quality_high === null ? m.quality : m.quality_high) <= 1;
    });
    if (inUnit) chartLayout.yaxis.range = [-0.05, 1.12];
    return chartLayout;
  }

  /** One scatter trace per model (so each has its legend entry), with quality intervals as error bars. */
  function pointTraces(models, x, y, withInterval, xFormat, yFormat) {
    return models.map(function (m) {
      var trace = {
        type: "scatter", mode: "markers+text", name: plotText(m.label), x: [x(m)], y: [y(m)],
        text: [plotText(shortLabel(m.label))], textposition: "top center", marker: { size: 12 },
        hovertemplate: plotText(m.label) + "<br>" + xFormat + ": %{x}<br>" + yFormat + ": %{y}<extra></extra>"
      };
      if (withInterval && m.quality_low !== null && m.quality_high !== null) {
        trace.error_y = { type: "data", symmetric: false, array: [m.quality_high - m.quality],
                          arrayminus: [m.quality - m.quality_low], thickness: 1.5, width: 4 };
      }
      return trace;
    });
  }

  /** Draw a chart, or say why there is nothing to draw. */
  function plot(id, traces, chartLayout) {
    var node = document.getElementById(id);
    if (!traces.length) {
      node.replaceChildren(h("p", { class: "muted empty-chart", text: chartLayout.title.text + ": nothing to plot " +
        "(no model of this run has both figures)." }));
      return;
    }
    node.replaceChildren();  // the server's SVG chart, replaced by the interactive one
    Plotly.newPlot(node, traces, themed(chartLayout), PLOT_CONFIG);
  }

  function note(id, text) {
    var node = document.getElementById(id);
    if (node) node.textContent = text;
  }

  function missing(models, test, what) {
    var left = models.filter(function (m) { return !test(m); }).map(function (m) { return m.label; });
    return left.length ? " Not shown (" + what + "): " + left.join(", ") + "." : "";
  }

  function drawCharts(data) {
    var models = data.models;
    var hasQuality = data.primary !== null && models.some(function (m) { return m.quality !== null; });
    var quality = "quality (" + (data.primary || "none") + ")";
    var withCost = function (m) { return m.cost_per_1k_usd !== null; };
    var withQuality = function (m) { return m.quality !== null; };

    // 1. quality vs cost (or, with no quality scores, cost vs time to first token)
    if (hasQuality) {
      var qc = models.filter(function (m) { return withCost(m) && withQuality(m); });
      plot("chart-cost", pointTraces(qc, function (m) { return m.cost_per_1k_usd; },
        function (m) { return m.quality; }, true, "USD per 1k requests", quality),
        qualityAxis(layout("Quality vs cost", "USD per 1k requests", quality), qc));
      note("chart-cost-note", "Up and to the left is better; bars are 95% intervals." +
        missing(models, function (m) { return withCost(m) && withQuality(m); }, "unknown cost or no quality score"));
    } else {
      var ct = models.filter(function (m) { return withCost(m) && m.ttft_p50_ms !== null; });
      plot("chart-cost", pointTraces(ct, function (m) { return m.ttft_p50_ms; },
        function (m) { return m.cost_per_1k_usd; }, false, "TTFT p50 ms", "USD per 1k requests"),
        layout("Cost vs time to first token", "TTFT p50 (ms)", "USD per 1k requests"));
      note("chart-cost-note", "This run has no quality scores (a suite with assertions or scorers has): cost is " +
        "plotted against speed instead. Down and to the left is better." +
        missing(models, function (m) { return withCost(m) && m.ttft_p50_ms !== null; }, "unknown cost or no timing"));
    }

    // 2. quality vs speed (or tokens/s vs TTFT)
    if (hasQuality) {
      var qs = models.filter(function (m) { return withQuality(m) && m.tokens_per_s_p50 !== null; });
      plot("chart-speed", pointTraces(qs, function (m) { return m.tokens_per_s_p50; },
        function (m) { return m.quality; }, true, "output tokens/s p50", quality),
        qualityAxis(layout("Quality vs speed", "output tokens/s (p50)", quality), qs));
      note("chart-speed-note", "Up and to the right is better." +
        missing(models, function (m) { return withQuality(m) && m.tokens_per_s_p50 !== null; }, "no score or no timing"));
    } else {
      var sp = models.filter(function (m) { return m.tokens_per_s_p50 !== null && m.ttft_p50_ms !== null; });
      plot("chart-speed", pointTraces(sp, function (m) { return m.ttft_p50_ms; },
        function (m) { return m.tokens_per_s_p50; }, false, "TTFT p50 ms", "output tokens/s p50"),
        layout("Speed", "TTFT p50 (ms)", "output tokens/s (p50)"));
      note("chart-speed-note", "Up and to the left is better." +
        missing(models, function (m) { return m.tokens_per_s_p50 !== null && m.ttft_p50_ms !== null; }, "no timing"));
    }

    // 3. latency distributions: TTFT and end-to-end per model, as box plots with every sample
    var traces = [["TTFT", "ttft_ms"], ["End to end", "e2e_ms"]].filter(function (pair) {
      return models.some(function (m) { return m[pair[1]].length > 0; });
    }).map(function (pair) {
      var xs = [];
      var ys = [];
      models.forEach(function (m) {
        m[pair[1]].forEach(function (v) { xs.push(plotText(shortLabel(m.label))); ys.push(v); });
      });
      return { type: "box", name: pair[0], x: xs, y: ys, boxpoints: "all", jitter: 0.4, pointpos: 0,
               marker: { size: 4 }, hovertemplate: "%{x}<br>%{y:.1f} ms<extra>" + pair[0] + "</extra>" };
    });
    plot("chart-latency", traces, layout("Latency distributions", "", "milliseconds", { boxmode: "group" }));
    note("chart-latency-note", "Fresh, successful results only; each dot is one request." +
      missing(models, function (m) { return m.e2e_ms.length > 0; }, "no successful fresh result"));
  }

  /** Plotly's 4.8 MB bundle, loaded once per page and only when wanted (the browser caches the file). */
  var plotlyLoading = null;

  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyLoading) {
      plotlyLoading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = "/static/plotly.min.js";
        script.addEventListener("load", function () { resolve(window.Plotly); });
        script.addEventListener("error", function () {
          plotlyLoading = null;
          reject(new Error("plotly.min.js could not be loaded (pip install 'tryouts[web]' installs it)"));
        });
        document.head.append(script);
      });
    }
    return plotlyLoading;
  }

  /** The run page's charts are SVG drawn on the server, there at the first paint; Plotly's interactive charts
   * replace them after it (runs of up to run_charts.PLOTLY_AUTO_MAX results: data-interactive="auto") or on a
   * click of "Interactive charts". They follow the page's palette, and a change of the system's light or dark
   * setting recolours them. */
  function initRun() {
    var box = $("#charts");
    if (!box) return;
    var errorLine = $("#charts-error");
    var button = $("#charts-interactive");
    var status = $("#charts-status");
    var started = false;

    function upgrade() {
      if (started) return;
      started = true;
      if (button) button.disabled = true;
      if (status) status.textContent = "Loading the interactive charts…";
      Promise.all([loadPlotly(), api("/api/runs/" + encodeURIComponent(box.dataset.run) + "/charts")])
        .then(function (results) {
          drawCharts(results[1]);
          box.dataset.drawn = "1";
          if (button) button.hidden = true;
          if (status) status.textContent = "";
        }).catch(function (err) {
          started = false;
          if (button) { button.disabled = false; button.hidden = false; }
          if (status) status.textContent = "";
          showError(errorLine, "The interactive charts could not be drawn (the charts above stay): " + err.message);
        });
    }

    if (button) button.addEventListener("click", upgrade);
    if (box.dataset.interactive === "auto") {
      var idle = window.requestIdleCallback || function (fn) { return setTimeout(fn, 200); };
      var later = function () { idle(upgrade, { timeout: 1500 }); };
      if (document.readyState === "complete") later();
      else window.addEventListener("load", later);
    }
    var scheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
    if (scheme && scheme.addEventListener) {
      scheme.addEventListener("change", function () {
        if (!window.Plotly || box.dataset.drawn !== "1") return;
        $all(".chart", box).forEach(function (node) {
          if (node.layout) Plotly.relayout(node, themed({ font: node.layout.font, title: node.layout.title,
            legend: node.layout.legend, xaxis: node.layout.xaxis, yaxis: node.layout.yaxis }));
        });
      });
    }
  }

  // ---- arena ---------------------------------------------------------------------------------------

  var VERDICTS = { a: "A is better", b: "B is better", tie: "a tie", both_bad: "both bad" };

  function rankText(row, rows) {
    // 1 + the models whose whole interval lies above; "=" when another model shares the rank (tied)
    if (row.rank === null || row.rank === undefined) return "";
    var shared = rows.some(function (o) { return o !== row && o.rank === row.rank; });
    return String(row.rank) + (shared ? "=" : "");
  }

  function ratingText(row) {
    if (!row || row.rating === null) return "–";
    return num(row.rating, 0) + (row.low !== null ? " [" + num(row.low, 0) + "–" + num(row.high, 0) + "]" : "");
  }

  function renderRanking(box, data) {
    box.replaceChildren();
    var sources = Object.keys(data.rankings);
    if (!sources.length) {
      box.append(h("p", { class: "muted", text: "No votes yet: the ranking appears with the first vote." }));
      return;
    }
    var styled = false;
    sources.sort(function (a, b) { return (a === "human" ? 0 : 1) - (b === "human" ? 0 : 1) || a.localeCompare(b); });
    sources.forEach(function (source) {
      var rank = data.rankings[source];
      var title = source === "human" ? "Your votes" : "LLM judge (" + source.replace(/^judge:?/, "") + ")";
      var sc = rank.style_control || null;
      var byModel = {};
      if (sc) {
        styled = true;
        sc.ratings.forEach(function (row) { byModel[row.model] = row; });
      }
      var body = h("tbody");
      rank.ratings.forEach(function (row) {
        var range = row.rank_range ? (row.rank_range[0] === row.rank_range[1] ? String(row.rank_range[0]) :
          row.rank_range[0] + "–" + row.rank_range[1]) : "";
        var tr = h("tr", { dataset: { model: row.model, rank: row.rank === null ? "" : row.rank } },
          h("td", { class: "num", text: rankText(row, rank.ratings) }),
          h("td", { class: "label", text: row.model }),
          h("td", { class: "num", text: ratingText(row) }),
          h("td", { class: "num rank-range", text: range }));
        if (sc) {
          var s = byModel[row.model];
          tr.append(h("td", { class: "num style", text: ratingText(s) }),
            h("td", { class: "num style-rank", text: s ? rankText(s, sc.ratings) : "" }));
        }
        tr.append(h("td", { class: "num", text: row.wins }), h("td", { class: "num", text: row.losses }),
          h("td", { class: "num", text: row.ties }), h("td", { class: "num", text: row.both_bad }));
        body.append(tr);
      });
      var head = h("tr", null, h("th", { class: "num", text: "#" }), h("th", { text: "Model" }),
        h("th", { class: "num", text: "Rating [95% CI]" }), h("th", { class: "num", text: "Ranks" }));
      if (sc) {
        head.append(h("th", { class: "num", text: "Style-controlled [95% CI]" }), h("th", { class: "num", text: "Style #" }));
      }
      head.append(h("th", { class: "num", text: "Wins" }), h("th", { class: "num", text: "Losses" }),
        h("th", { class: "num", text: "Ties" }), h("th", { class: "num", text: "Both bad" }));
      var section = h("section", { class: "ranking", dataset: { source: source } },
        h("h3", { text: title + " · " + rank.votes + " vote" + (rank.votes === 1 ? "" : "s") +
          " (" + rank.decisive + " rated" + (rank.identical ? ", " + rank.identical + " on identical answers, as ties" : "") + ")" }),
        h("table", { class: "rank" }, h("thead", null, head), body));
      if (sc) {
        section.append(h("p", { class: "muted small style-coefficients", text: "Style coefficients (" + sc.votes +
          " votes): " + sc.coefficients.map(function (c) {
            return c.feature + " " + (c.coef === null ? "n/a" : (c.coef >= 0 ? "+" : "") + num(c.coef, 2) +
              (c.low !== null ? " [" + num(c.low, 2) + ", " + num(c.high, 2) + "]" : ""));
          }).join(", ") }));
      }
      box.append(section);
    });
    box.append(h("p", { class: "muted", text: "Bradley–Terry ratings on an Elo-like scale (1000 = average); an " +
      "interval is where the rating lies with 95% confidence. # is 1 + the number of models whose whole interval " +
      "lies above (as the LMSYS leaderboard ranks): models the votes do not separate share a rank, marked =; " +
      "Ranks is the range of ranks the intervals allow. \"Both bad\" votes are counted, not rated; a vote on two " +
      "identical answers counts as a tie." + (styled ? " Style-controlled: refitted with the differences in " +
      "length, headers, list items and bold as covariates, so a rating rewards substance rather than style." : "") }));
  }

  function initArena() {
    var box = $("#arena");
    var run = box.dataset.run;
    var base = "/api/runs/" + encodeURIComponent(run);
    var statusLine = $("#arena-status");
    var pairBox = $("#arena-pair");
    var reveal = $("#arena-reveal");
    var errorLine = $("#arena-error");
    var buttons = $all("button.vote", box);
    var rankingBox = $("#ranking");
    var current = null;

    function enable(on) { buttons.forEach(function (b) { b.disabled = !on; }); }

    var styleBox = $("#style-control");

    function loadRanking() {
      var query = "/rank?resamples=300" + (styleBox && styleBox.checked ? "&style_control=true" : "");
      return api(base + query).then(function (data) { renderRanking(rankingBox, data); })
        .catch(function (err) { showError(errorLine, "Ranking: " + err.message); });
    }

    function next() {
      enable(false);
      return api(base + "/arena/next").then(function (data) {
        if (!data.pair) {
          current = null;
          pairBox.hidden = true;
          box.dataset.done = "1";
          statusLine.textContent = "No pair left to vote on: every pair of answers in this run has a vote." +
            (data.identical ? " (" + data.identical + " pair" + (data.identical === 1 ? "" : "s") +
              " of identical answers are never shown.)" : "");
          return;
        }
        current = data.pair;
        var prompt = $("#arena-prompt");
        prompt.replaceChildren();
        (data.messages || []).forEach(function (m) {
          prompt.append(h("div", { class: "msg" }, h("span", { class: "role", text: m.role }),
            h("pre", { class: "text", text: m.content })));
        });
        $("#answer-a").textContent = data.a;
        $("#answer-b").textContent = data.b;
        pairBox.hidden = false;
        box.dataset.pair = data.pair;
        statusLine.textContent = data.remaining + " pair" + (data.remaining === 1 ? "" : "s") + " left to vote on.";
        enable(true);
      }).catch(function (err) { showError(errorLine, err.message); });
    }

    function vote(verdict) {
      if (!current) return;
      var pair = current;
      current = null;
      enable(false);
      api(base + "/arena/vote", { method: "POST", body: { pair: pair, verdict: verdict } }).then(function (out) {
        reveal.replaceChildren("You voted ", h("strong", { text: VERDICTS[verdict] }), ": A was ",
          h("strong", { text: out.a }), ", B was ", h("strong", { text: out.b }), ".");
        return Promise.all([next(), loadRanking()]);
      }).catch(function (err) {
        showError(errorLine, err.message);
        return next();
      });
    }

    buttons.forEach(function (b) {
      b.addEventListener("click", function () { vote(b.dataset.verdict); });
    });
    document.addEventListener("keydown", function (event) {
      if (event.target && /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) return;
      var key = { "1": "a", "2": "b", "3": "tie", "4": "both_bad" }[event.key];
      if (key && current) vote(key);
    });
    if (styleBox) styleBox.addEventListener("change", loadRanking);
    next();
    loadRanking();
  }

  // ---- start ---------------------------------------------------------------------------------------

  var PAGES = { compare: initCompare, run: initRun, arena: initArena };

  function init() {
    var page = PAGES[document.body.dataset.page];
    if (page) page();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
