/* Tryouts dashboard: the review parts of the pages (no framework, no build step), beside app.js.
 *
 * The rules of app.js hold here too (the Content-Security-Policy enforces most of them):
 *  - every handler is attached with addEventListener: no inline script, no on* attributes, no eval;
 *  - text from the store (comments, tags, errors) goes into the page with textContent only, never as HTML;
 *  - every state-changing request (POST, PUT, DELETE) sends the X-Tryouts-CSRF header from
 *    <meta name="csrf-token">.
 *
 * On a run page: rate each result good or bad and comment on it (PUT /api/runs/RUN/results/ID/review), add and
 * remove tags, delete the run after a confirm step, re-run one model. On the new comparison page: a Stop button
 * on each model's panel (POST /api/compare/KEY/models/I/stop).
 */
"use strict";

(function () {
  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function $all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
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

  /** JSON from the dashboard's API; writes go with the CSRF header. Throws an Error with the API's detail. */
  function api(path, method, body) {
    var init = { method: method || "GET", headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (init.method !== "GET") {
      init.headers["X-Tryouts-CSRF"] = csrfToken();
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
    }
    return fetch(path, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) throw new Error(errorDetail(data) || (response.status + " " + response.statusText));
        return data;
      });
    });
  }

  function say(node, message) {
    if (!node) return;
    node.textContent = message || "";
    node.hidden = !message;
  }

  function runBase(runId) {
    return "/api/runs/" + encodeURIComponent(runId);
  }

  // ---- ratings and comments --------------------------------------------------------------------------

  function showReview(box, review) {
    var rating = review && review.rating ? review.rating : "";
    box.dataset.rating = rating;
    $all("button.rate", box).forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.rate === rating ? "true" : "false");
    });
    var area = $("textarea", box);
    area.value = review ? review.comment : "";
    area.dataset.saved = area.value;
  }

  function saveReview(runId, box, rating) {
    var state = $(".review-state", box);
    var comment = $("textarea", box).value;
    state.textContent = "saving…";
    box.dataset.busy = "1";
    var path = runBase(runId) + "/results/" + encodeURIComponent(box.dataset.result) + "/review";
    return api(path, "PUT", { rating: rating || null, comment: comment }).then(function (out) {
      showReview(box, out.review);
      state.textContent = out.review ? "saved" : "cleared";
      box.dataset.saved = String(Date.now());
    }).catch(function (err) {
      state.textContent = err.message;
    }).then(function () { delete box.dataset.busy; });
  }

  function initReviews(runId) {
    $all(".review[data-result]").forEach(function (box) {
      $("textarea", box).dataset.saved = $("textarea", box).value;
      $all("button.rate", box).forEach(function (button) {
        button.addEventListener("click", function () {
          var rating = box.dataset.rating === button.dataset.rate ? null : button.dataset.rate;  // a second click clears
          saveReview(runId, box, rating);
        });
      });
      $("button.review-save", box).addEventListener("click", function () {
        saveReview(runId, box, box.dataset.rating || null);
      });
    });
  }

  // ---- tags and delete -------------------------------------------------------------------------------

  function showTags(runId, tags) {
    var list = $("#tag-list");
    list.replaceChildren();
    tags.forEach(function (tag) {
      var item = document.createElement("li");
      item.className = "chip tag";
      item.dataset.tag = tag;
      var link = document.createElement("a");
      link.href = "/runs?tag=" + encodeURIComponent(tag);
      link.textContent = tag;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "tag-remove";
      remove.dataset.tag = tag;
      remove.title = "Remove";
      remove.setAttribute("aria-label", "Remove the tag " + tag);
      remove.textContent = "×";
      item.append(link, remove);
      list.append(item);
    });
  }

  function initTags(runId) {
    var form = $("#tag-form");
    var input = $("#tag-input");
    var error = $("#tag-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var tag = input.value.trim();
      if (!tag) return;
      say(error, "");
      api(runBase(runId) + "/tags", "POST", { tags: [tag] }).then(function (out) {
        showTags(runId, out.tags);
        input.value = "";
      }).catch(function (err) { say(error, err.message); });
    });
    $("#tag-list").addEventListener("click", function (event) {
      var button = event.target.closest("button.tag-remove");
      if (!button) return;
      say(error, "");
      api(runBase(runId) + "/tags/" + encodeURIComponent(button.dataset.tag), "DELETE").then(function (out) {
        showTags(runId, out.tags);
      }).catch(function (err) { say(error, err.message); });
    });
  }

  function initDelete(runId) {
    var start = $("#delete-run");
    var confirmBox = $("#delete-confirm");
    var error = $("#delete-error");
    start.addEventListener("click", function () {
      confirmBox.hidden = false;
      start.hidden = true;
      $("#delete-no").focus();
    });
    $("#delete-no").addEventListener("click", function () {
      confirmBox.hidden = true;
      start.hidden = false;
    });
    $("#delete-yes").addEventListener("click", function () {
      say(error, "");
      api(runBase(runId), "DELETE").then(function () {
        window.location.assign("/runs");
      }).catch(function (err) {
        confirmBox.hidden = true;
        start.hidden = false;
        say(error, err.message);
      });
    });
  }

  // ---- per model: re-run -----------------------------------------------------------------------------

  function initRerun(runId) {
    $all("td.model-actions button.rerun").forEach(function (button) {
      button.addEventListener("click", function () {
        var cell = button.closest("td");
        var error = $(".rerun-error", cell);
        say(error, "");
        button.disabled = true;
        button.textContent = "Starting…";
        api(runBase(runId) + "/models/" + encodeURIComponent(button.dataset.model) + "/rerun", "POST", {}).then(function (out) {
          if (out.page) window.location.assign(out.page);
          else button.textContent = "Started";
        }).catch(function (err) {
          button.disabled = false;
          button.textContent = "Re-run";
          say(error, err.message);
        });
      });
    });
  }

  // ---- the new comparison page: stop one model --------------------------------------------------------

  function initStopModel() {
    var box = $("#panels");
    if (!box) return;

    function update() {
      var running = box.dataset.state === "running" && box.dataset.key;
      $all("article.panel", box).forEach(function (panel) {
        var header = $("header", panel);
        var button = $("button.stop-model", panel);
        if (!button && header) {
          button = document.createElement("button");
          button.type = "button";
          button.className = "stop-model";
          button.textContent = "Stop";
          button.setAttribute("aria-label", "Stop this model");
          button.addEventListener("click", function () {
            button.disabled = true;
            var path = "/api/compare/" + encodeURIComponent(box.dataset.key) + "/models/" +
              encodeURIComponent(panel.dataset.model) + "/stop";
            api(path, "POST", {}).catch(function (err) {
              var error = $("p.error", panel);
              if (error) say(error, err.message);
            });
          });
          header.append(button);
        }
        if (button) button.hidden = !running || !!panel.dataset.final;
      });
    }

    new MutationObserver(update).observe(box, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["data-state", "data-final", "data-key"],
    });
  }

  function init() {
    var review = $("#run-review");
    if (review) {
      var runId = review.dataset.run;
      initReviews(runId);
      initTags(runId);
      initDelete(runId);
      initRerun(runId);
    }
    if (document.body.dataset.page === "compare") initStopModel();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
