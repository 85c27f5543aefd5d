/* Tryouts dashboard: a small, safe Markdown renderer for model outputs (no dependency, no build step).
 *
 * window.TryoutsMarkdown.render(text) returns a DocumentFragment built with createElement and text nodes only:
 *  - no innerHTML, no raw HTML ever: a tag in the text (<script>, <img onerror>) stays text;
 *  - links only to http: and https: addresses (checked with the URL parser), with
 *    rel="noopener noreferrer nofollow", opened in a new tab; any other link ([x](javascript:...), data:,
 *    relative) is shown as its source text, not as a link;
 *  - images are never loaded: ![alt](src) becomes the text "[image: alt]";
 *  - bounded work: the first MAX_CHARS characters are rendered, the rest is added as plain text; nesting is
 *    capped at MAX_DEPTH; an unmatched delimiter is not searched for twice.
 * Supported: ATX and setext headings, paragraphs (a single newline is kept as a line break), blockquotes,
 * bullet and numbered lists (nested by indentation), fenced code blocks, GFM tables, horizontal rules;
 * inline code, bold, italic, strikethrough, links, <https://...> and bare http(s) addresses, backslash escapes.
 */
"use strict";

(function () {
  var MAX_CHARS = 100000;
  var MAX_DEPTH = 12;
  var LIST = /^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*))?$/;
  var FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
  var HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
  var RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  var QUOTE = /^ {0,3}> ?(.*)$/;
  var TABLE_RULE = /^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$/;
  var SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
  var PUNCT = /[!-\/:-@\[-`{-~]/;

  function el(tag, cls) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    return node;
  }

  /** An absolute http(s) address, or null. */
  function safeUrl(raw) {
    var url = String(raw || "").trim();
    if (!/^https?:\/\//i.test(url)) return null;
    var parsed;
    try { parsed = new URL(url); } catch (e) { return null; }
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  }

  function link(href, title) {
    var a = el("a");
    a.setAttribute("href", href);
    a.setAttribute("rel", "noopener noreferrer nofollow");
    a.setAttribute("target", "_blank");
    a.setAttribute("referrerpolicy", "no-referrer");
    if (title) a.setAttribute("title", title);
    return a;
  }

  // ---- inline ------------------------------------------------------------------------------------

  /** [label](url "title") starting at src[i] === "[": {label, url, title, end} or null. */
  function parseLink(src, i) {
    var depth = 0;
    var j = i;
    var limit = Math.min(src.length, i + 2048);  // a label is short: the scan stays bounded
    for (; j < limit; j++) {
      var c = src[j];
      if (c === "\\") { j++; continue; }
      if (c === "[") depth++;
      else if (c === "]" && --depth === 0) break;
      else if (c === "\n" && src[j + 1] === "\n") return null;
    }
    if (j >= limit || src[j + 1] !== "(") return null;
    var m = /^\(\s*<?([^\s()<>]*)>?(?:\s+"([^"]*)")?\s*\)/.exec(src.slice(j + 1, j + 1 + 2048));
    if (!m) return null;
    return { label: src.slice(i + 1, j), url: m[1], title: m[2] || "", end: j + 1 + m[0].length };
  }

  function inline(src, parent, depth) {
    var buf = "";
    var closed = {};  // delimiters with no closer left after some position: never searched for again
    function flush() {
      if (buf) parent.append(document.createTextNode(buf));
      buf = "";
    }
    function closer(delim, from) {
      if (closed[delim] !== undefined && from >= closed[delim]) return -1;
      var j = src.indexOf(delim, from);
      while (j >= 0 && (/\s/.test(src[j - 1]) || (delim.length === 1 && src[j + 1] === delim) ||
             (delim === "_" && /[A-Za-z0-9]/.test(src[j + 1] || "")))) {
        j = src.indexOf(delim, j + (delim.length === 1 && src[j + 1] === delim ? 2 : 1));
      }
      if (j < 0) closed[delim] = from;
      return j;
    }
    var i = 0;
    while (i < src.length) {
      var c = src[i];
      var rest;
      if (c === "\\" && i + 1 < src.length && PUNCT.test(src[i + 1])) {
        buf += src[i + 1];
        i += 2;
        continue;
      }
      if (c === "`") {
        var run = /^`+/.exec(src.slice(i, i + 64))[0];
        var key = "`" + run.length;
        var end = closed[key] !== undefined && i >= closed[key] ? -1 : src.indexOf(run, i + run.length);
        while (end >= 0 && (src[end + run.length] === "`" || src[end - 1] === "`")) {
          end = src.indexOf(run, end + run.length + 1);
        }
        if (end < 0) {
          closed[key] = i;
          buf += run;
          i += run.length;
          continue;
        }
        flush();
        var code = src.slice(i + run.length, end).replace(/\n/g, " ");
        if (/^ .*[^ ] $/.test(code)) code = code.slice(1, -1);
        var codeNode = el("code");
        codeNode.textContent = code;
        parent.append(codeNode);
        i = end + run.length;
        continue;
      }
      if (c === "!" && src[i + 1] === "[") {
        var img = parseLink(src, i + 1);
        if (img) {
          flush();
          var shown = el("span", "md-image");
          shown.textContent = "[image: " + (img.label || "no description") + "]";
          shown.setAttribute("title", "Images in outputs are not loaded: " + img.url);
          parent.append(shown);
          i = img.end;
          continue;
        }
      }
      if (c === "[") {
        var lk = parseLink(src, i);
        if (lk) {
          var href = safeUrl(lk.url);
          if (href && depth < MAX_DEPTH) {
            flush();
            var a = link(href, lk.title);
            inline(lk.label, a, depth + 1);
            parent.append(a);
          } else {
            buf += src.slice(i, lk.end);  // not a web address: its source, as text
          }
          i = lk.end;
          continue;
        }
      }
      if (c === "<" && src.substr(i + 1, 4).toLowerCase() === "http") {
        var auto = /^<(https?:\/\/[^\s<>]+)>/i.exec(src.slice(i, i + 2048));
        var autoHref = auto && safeUrl(auto[1]);
        if (autoHref) {
          flush();
          var aa = link(autoHref);
          aa.textContent = auto[1];
          parent.append(aa);
          i += auto[0].length;
          continue;
        }
      }
      if ((c === "h" || c === "H") && (i === 0 || /[\s(]/.test(src[i - 1])) &&
          /^https?:\/\//i.test(src.substr(i, 8))) {
        var bare = /^https?:\/\/[^\s<>()]+/i.exec(src.slice(i, i + 2048));
        if (bare) {
          var url = bare[0].replace(/[.,;:!?'"*_~]+$/, "");
          var bareHref = safeUrl(url);
          if (bareHref) {
            flush();
            var ab = link(bareHref);
            ab.textContent = url;
            parent.append(ab);
            i += url.length;
            continue;
          }
        }
      }
      if ((c === "*" || c === "_" || c === "~") && depth < MAX_DEPTH) {
        var two = src[i + 1] === c;
        var delim = two ? c + c : c;
        rest = src[i + delim.length];
        var leftOk = c !== "_" || i === 0 || !/[A-Za-z0-9]/.test(src[i - 1]);
        if ((c !== "~" || two) && rest !== undefined && !/\s/.test(rest) && leftOk) {
          var close = closer(delim, i + delim.length + 1);
          if (close > 0) {
            flush();
            var tag = c === "~" ? "del" : (two ? "strong" : "em");
            var node = el(tag);
            inline(src.slice(i + delim.length, close), node, depth + 1);
            parent.append(node);
            i = close + delim.length;
            continue;
          }
        }
        buf += delim;
        i += delim.length;
        continue;
      }
      buf += c;
      i += 1;
    }
    flush();
  }

  // ---- blocks ------------------------------------------------------------------------------------

  function blank(line) { return /^\s*$/.test(line); }

  function leading(line) { return /^ */.exec(line)[0].length; }

  function startsBlock(line) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || LIST.test(line);
  }

  function paragraph(text, parent, depth) {
    var p = el("p");
    inline(text, p, depth);
    parent.append(p);
  }

  function cells(line) {
    var row = line.trim().replace(/^\|/, "").replace(/\|$/, "");
    var out = [];
    var cur = "";
    var inCode = false;
    for (var k = 0; k < row.length && out.length < 64; k++) {
      var ch = row[k];
      if (ch === "\\" && row[k + 1] === "|") { cur += "|"; k++; continue; }
      if (ch === "`") inCode = !inCode;
      if (ch === "|" && !inCode) { out.push(cur.trim()); cur = ""; continue; }
      cur += ch;
    }
    out.push(cur.trim());
    return out;
  }

  function table(lines, i, parent, depth) {
    var head = cells(lines[i]);
    var aligns = cells(lines[i + 1]).map(function (s) {
      return /^:-+:$/.test(s) ? "center" : /-:$/.test(s) ? "right" : /^:-/.test(s) ? "left" : "";
    });
    var wrap = el("div", "md-table");
    var t = el("table");
    var thead = el("thead");
    var tr = el("tr");
    head.forEach(function (cell, k) {
      var th = el("th");
      if (aligns[k]) th.style.textAlign = aligns[k];
      inline(cell, th, depth);
      tr.append(th);
    });
    thead.append(tr);
    t.append(thead);
    var tbody = el("tbody");
    i += 2;
    while (i < lines.length && !blank(lines[i]) && lines[i].indexOf("|") >= 0) {
      var row = el("tr");
      var values = cells(lines[i]);
      for (var k = 0; k < head.length; k++) {
        var td = el("td");
        if (aligns[k]) td.style.textAlign = aligns[k];
        inline(values[k] || "", td, depth);
        row.append(td);
      }
      tbody.append(row);
      i++;
    }
    t.append(tbody);
    wrap.append(t);
    parent.append(wrap);
    return i;
  }

  function list(lines, i, parent, depth) {
    var first = LIST.exec(lines[i]);
    var indent = first[1].length;
    var ordered = /\d/.test(first[2]);
    var node = el(ordered ? "ol" : "ul");
    if (ordered && parseInt(first[2], 10) !== 1) node.setAttribute("start", String(parseInt(first[2], 10)));
    while (i < lines.length) {
      var m = LIST.exec(lines[i]);
      if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered || RULE.test(lines[i])) break;
      var item = el("li");
      var body = [m[3] || ""];
      i++;
      while (i < lines.length) {
        var line = lines[i];
        if (blank(line)) {
          var k = i + 1;
          while (k < lines.length && blank(lines[k])) k++;
          if (k < lines.length && leading(lines[k]) > indent) {
            body.push("");
            i++;
            continue;
          }
          break;
        }
        if (leading(line) > indent) {
          body.push(line);
          i++;
          continue;
        }
        if (startsBlock(line)) break;
        body.push(line);  // a lazy continuation of the item's paragraph
        i++;
      }
      var cut = Infinity;
      body.slice(1).forEach(function (l) { if (!blank(l)) cut = Math.min(cut, leading(l)); });
      if (cut === Infinity) cut = 0;
      var inner = [body[0]].concat(body.slice(1).map(function (l) { return l.slice(Math.min(cut, leading(l))); }));
      blocks(inner, item, depth + 1);
      if (item.childNodes.length === 1 && item.firstChild.tagName === "P") {
        var p = item.firstChild;
        while (p.firstChild) item.insertBefore(p.firstChild, p);
        item.removeChild(p);
      }
      node.append(item);
    }
    parent.append(node);
    return i;
  }

  function blocks(lines, parent, depth) {
    if (depth > MAX_DEPTH) {
      var deep = el("p");
      deep.textContent = lines.join("\n");
      parent.append(deep);
      return;
    }
    var i = 0;
    while (i < lines.length) {
      var line = lines[i];
      var m;
      if (blank(line)) {
        i++;
        continue;
      }
      if ((m = FENCE.exec(line))) {
        var fence = m[1];
        var closing = new RegExp("^ {0,3}" + fence[0] + "{" + fence.length + ",}[ \\t]*$");
        var body = [];
        i++;
        while (i < lines.length && !closing.test(lines[i])) {
          body.push(lines[i]);
          i++;
        }
        i++;
        var pre = el("pre", "md-code");
        var code = el("code");
        code.textContent = body.join("\n");
        var lang = m[2].trim().split(/\s+/)[0];
        if (lang) pre.setAttribute("data-lang", lang.slice(0, 40));
        pre.append(code);
        parent.append(pre);
        continue;
      }
      if ((m = HEADING.exec(line))) {
        var h = el("h" + m[1].length);
        inline(m[2] || "", h, depth);
        parent.append(h);
        i++;
        continue;
      }
      if (RULE.test(line)) {
        parent.append(el("hr"));
        i++;
        continue;
      }
      if (QUOTE.test(line)) {
        var quoted = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
          quoted.push(m[1]);
          i++;
        }
        var q = el("blockquote");
        blocks(quoted, q, depth + 1);
        parent.append(q);
        continue;
      }
      if (LIST.test(line) && (LIST.exec(line)[3] || "").trim() !== "") {
        i = list(lines, i, parent, depth);
        continue;
      }
      if (line.indexOf("|") >= 0 && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) &&
          lines[i + 1].indexOf("-") >= 0 && cells(line).length === cells(lines[i + 1]).length) {
        i = table(lines, i, parent, depth);
        continue;
      }
      var para = [line];
      i++;
      while (i < lines.length && !blank(lines[i]) && !startsBlock(lines[i])) {
        if (SETEXT.test(lines[i])) break;
        para.push(lines[i]);
        i++;
      }
      if (i < lines.length && (m = SETEXT.exec(lines[i])) && para.length) {
        var sh = el(m[1][0] === "=" ? "h1" : "h2");
        inline(para.join("\n"), sh, depth);
        parent.append(sh);
        i++;
        continue;
      }
      paragraph(para.join("\n"), parent, depth);
    }
  }

  /** The Markdown of ``text`` as DOM nodes (a DocumentFragment), safe by construction (see the top). */
  function render(text) {
    var source = String(text === null || text === undefined ? "" : text);
    var head = source.length > MAX_CHARS ? source.slice(0, MAX_CHARS) : source;
    var lines = head.replace(/\r\n?/g, "\n").split("\n").map(function (l) {
      return l.replace(/^\t+/, function (tabs) { return new Array(tabs.length + 1).join("    "); });
    });
    var out = document.createDocumentFragment();
    blocks(lines, out, 0);
    if (head.length < source.length) {
      var note = el("p", "md-rest muted");
      note.textContent = "Only the first " + MAX_CHARS.toLocaleString("en-US") + " characters are rendered as " +
        "Markdown; the rest follows as text.";
      var rest = el("pre", "md-code");
      rest.textContent = source.slice(MAX_CHARS);
      out.append(note, rest);
    }
    return out;
  }

  window.TryoutsMarkdown = { render: render, safeUrl: safeUrl };
})();
