/* Tryouts dashboard: how model outputs are shown on the run and diff pages (no framework, no build step).
 *
 *  - Folding. The server marks a long output's box `.output.folded` (more than FOLD_CHARS characters or
 *    FOLD_LINES lines, web/pages.py): CSS clips it to a few lines, so a 234 KB output does not make the page
 *    enormous even before any script runs. This adds under each folded box a "Show all (N KB, M lines)"
 *    button that opens it (a scrolling box of at most 80 % of the window) and folds it again.
 *  - Raw / Markdown. A page-wide switch (#output-mode, remembered in localStorage) shows every output of the
 *    page either as the exact text (the default: <pre>, as stored) or rendered as Markdown by
 *    static/markdown.js, which builds DOM nodes only (no HTML from the text ever runs or loads anything).
 *    Switching back shows the untouched text.
 * Nothing here reads or writes HTML: text goes in with textContent, rendered Markdown as DOM nodes.
 */
"use strict";

(function () {
  var MODE_KEY = "tryouts-output-mode";

  function size(text) {
    var bytes = new TextEncoder().encode(text).length;
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  function lineCount(text) {
    var n = 1;
    for (var i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
    return text.charAt(text.length - 1) === "\n" ? n - 1 : n;  // a final newline ends the last line
  }

  /** The "show all" / "fold" button of a folded box. */
  function addToggle(box) {
    var pre = box.querySelector("pre");
    if (!pre || box.dataset.toggle) return;
    box.dataset.toggle = "1";
    var text = pre.textContent;
    var label = "Show all (" + size(text) + ", " + lineCount(text).toLocaleString("en-US") + " lines)";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "fold-toggle";
    button.textContent = label;
    button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", function () {
      var open = box.classList.toggle("open");
      button.textContent = open ? "Fold" : label;
      button.setAttribute("aria-expanded", open ? "true" : "false");
      if (!open) box.scrollTop = 0;
    });
    box.after(button);
  }

  function rendered(box) {
    var md = box.querySelector(".md");
    if (md) return md;
    var pre = box.querySelector("pre.out");
    md = document.createElement("div");
    md.className = "md";
    md.append(window.TryoutsMarkdown.render(pre.textContent));
    box.append(md);
    return md;
  }

  function setMode(mode, switcher) {
    var markdown = mode === "markdown" && Boolean(window.TryoutsMarkdown);
    document.querySelectorAll(".output").forEach(function (box) {
      var pre = box.querySelector("pre.out");
      if (!pre) return;
      if (markdown) {
        rendered(box).hidden = false;
        pre.hidden = true;
      } else {
        pre.hidden = false;
        var md = box.querySelector(".md");
        if (md) md.hidden = true;
      }
      box.dataset.mode = markdown ? "markdown" : "raw";
    });
    document.body.dataset.outputMode = markdown ? "markdown" : "raw";
    if (switcher) {
      switcher.querySelectorAll("button[data-mode]").forEach(function (b) {
        b.setAttribute("aria-pressed", b.dataset.mode === (markdown ? "markdown" : "raw") ? "true" : "false");
      });
    }
  }

  function init() {
    document.querySelectorAll(".output.folded, .fold.folded").forEach(addToggle);
    var switcher = document.getElementById("output-mode");
    if (!switcher) return;
    switcher.hidden = false;
    var saved = null;
    try { saved = window.localStorage.getItem(MODE_KEY); } catch (e) { saved = null; }
    setMode(saved === "markdown" ? "markdown" : "raw", switcher);
    switcher.querySelectorAll("button[data-mode]").forEach(function (b) {
      b.addEventListener("click", function () {
        setMode(b.dataset.mode, switcher);
        try { window.localStorage.setItem(MODE_KEY, b.dataset.mode); } catch (e) { /* private mode: not kept */ }
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
