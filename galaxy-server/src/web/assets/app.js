// Galaxy's one script (no inline script anywhere: the CSP forbids it). Everything works
// without it; it only adds local times, countdowns and live updates.
(function () {
  "use strict";
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function local(date) {
    try {
      // The zone is named: labels and forms speak UTC, the viewer may not be in it.
      return new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", timeZoneName: "short"
      }).format(date);
    } catch (e) { return date.toString(); }
  }
  // Whole days in the page's language ("6d", "6 T"), as the browser writes them; one
  // formatter per language, made when first needed.
  var dayFormats = {};
  function days(d) {
    var lang = document.documentElement.lang || "";
    try {
      if (!dayFormats[lang]) {
        dayFormats[lang] = new Intl.NumberFormat(lang || undefined, {
          style: "unit", unit: "day", unitDisplay: "narrow"
        });
      }
      return dayFormats[lang].format(d);
    } catch (e) { return d + "d"; }
  }
  function left(ms) {
    if (ms <= 0) { return "0:00:00"; }
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400);
    var h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return (d > 0 ? days(d) + " " : "") + h + ":" + pad(m) + ":" + pad(s % 60);
  }
  function tick() {
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var at = new Date(el.getAttribute("datetime"));
      el.textContent = local(at) + " (" + left(at.getTime() - Date.now()) + ")";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      el.textContent = local(new Date(el.getAttribute("datetime")));
    });
    tick();
    setInterval(tick, 1000);
    // Live updates show the game's news by opening its page again (a GET: the answer
    // to a form is never sent twice), but never under someone typing: then a notice
    // with a link appears instead.
    // A page that shows the answer to a form (an orders verdict, a refused message,
    // race name or other form, each marked `data-answer`) counts as typed into: the
    // answer, and the text kept in its form, stay until the viewer moves on.
    var dirty = document.querySelector("[data-answer]") !== null;
    // Orders are kept in this browser (localStorage: a login may finish in another
    // tab) from the moment they are sent until their answer shows: the game page with
    // a verdict beside the form (`#verdict[data-answer]`) drops them. Orders whose
    // answer never came (an error page, a dropped connection, a session that had ended,
    // whose page of its own, `data-draft`, keeps them too) are given back by that
    // game's orders form for that turn and race (`data-draft-key`) when it is next
    // opened (a day at most), not sent again; signing out drops them.
    var drafts = "galaxy-orders:";
    // Kept a day at most: older drafts go on any page, not only when their game's
    // form is opened again (which may never happen), so no orders linger in this
    // browser for whoever uses it next.
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var name = window.localStorage.key(i);
        if (name && name.indexOf(drafts) === 0) {
          var old = null;
          try { old = JSON.parse(window.localStorage.getItem(name) || "null"); } catch (e) { /* unreadable: goes */ }
          if (!old || typeof old.at !== "number" || Date.now() - old.at >= 86400000) {
            window.localStorage.removeItem(name);
          }
        }
      }
    } catch (e) { /* no storage, or not ours */ }
    var lapsed = document.querySelector("textarea[data-draft]");
    if (lapsed) {
      try {
        window.localStorage.setItem(drafts + lapsed.getAttribute("data-draft"),
          JSON.stringify({ text: lapsed.value, at: Date.now() }));
        var kept = document.querySelector("[data-draft-note]");
        if (kept) { kept.hidden = false; }
      } catch (e) { /* no storage: the page shows the text to copy */ }
    }
    var orders = document.querySelector("textarea[data-draft-key]");
    if (orders) {
      try {
        var key = drafts + orders.getAttribute("data-draft-key");
        var draft = JSON.parse(window.localStorage.getItem(key) || "null");
        window.localStorage.removeItem(key);
        // The answer to the orders sent: the server has them, and the form holds them.
        var answered = document.querySelector("#verdict[data-answer]") !== null;
        if (!answered && draft && typeof draft.text === "string" && Date.now() - draft.at < 86400000) {
          orders.value = draft.text;
          dirty = true;
          var restored = document.querySelector("[data-draft-restored]");
          if (restored) { restored.hidden = false; }
          // A verdict on the orders the editor held is not about these.
          var verdict = document.getElementById("verdict");
          if (verdict) { verdict.hidden = true; }
        }
      } catch (e) { /* no storage, or not ours: the form as the server sent it */ }
    }
    document.addEventListener("input", function () { dirty = true; });
    // A form on its way out is never cut short by a reload (the click would be lost),
    // and is sent once: its buttons are disabled after the submit (not before, which
    // would leave the clicked button's value out) until the page is shown again.
    document.addEventListener("submit", function (event) {
      var form = event.target;
      // Signing out leaves no orders of this account in the browser for the next one.
      var action = form.getAttribute("action") || "";
      if (action === "/logout" || action === "/account/logout-everywhere") {
        try {
          for (var d = window.localStorage.length - 1; d >= 0; d--) {
            var stored = window.localStorage.key(d);
            if (stored && stored.indexOf(drafts) === 0) { window.localStorage.removeItem(stored); }
          }
        } catch (e) { /* no storage: nothing kept */ }
      }
      // An action that cannot be undone asks first (`data-confirm`).
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        return;
      }
      // Orders on their way are kept until their answer shows (see above).
      var sent = form.querySelector("textarea[data-draft-key]");
      if (sent) {
        try {
          window.localStorage.setItem(drafts + sent.getAttribute("data-draft-key"),
            JSON.stringify({ text: sent.value, at: Date.now() }));
        } catch (e) { /* no storage: as without the script */ }
      }
      dirty = true;
      setTimeout(function () {
        form.querySelectorAll("button").forEach(function (button) {
          button.disabled = true;
          button.setAttribute("data-sent", "");
        });
      }, 0);
    });
    // Back to a page the browser kept: its forms may be sent again.
    window.addEventListener("pageshow", function () {
      document.querySelectorAll("button[data-sent]").forEach(function (button) {
        button.disabled = false;
        button.removeAttribute("data-sent");
      });
    });
    var live = document.querySelector("[data-live]");
    function refresh() {
      if (dirty) {
        var note = document.querySelector("[data-live-notice]");
        if (note) { note.hidden = false; }
        return;
      }
      var page = live.getAttribute("data-page") || window.location.pathname;
      if (window.location.pathname === page) {
        window.location.reload();
      } else {
        window.location.assign(page);
      }
    }
    if (live) {
      var url = live.getAttribute("data-live");
      if (window.EventSource) {
        var source = new EventSource(url);
        source.addEventListener("update", function () { source.close(); refresh(); });
        // Refused for good (e.g. 429: too many live pages open): reload by the timer.
        // A dropped stream is retried by the browser itself (readyState CONNECTING).
        source.addEventListener("error", function () {
          if (source.readyState === EventSource.CLOSED) { setTimeout(refresh, 60000); }
        });
      } else {
        setTimeout(refresh, 60000);
      }
    }
  });
})();
