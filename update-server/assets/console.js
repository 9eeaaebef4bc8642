// Nightlatch console: refreshes the live parts of a page. Elements with
// data-poll="URL" get their content replaced by the fragment at URL every
// data-interval milliseconds (default 3000), until the fragment says the
// thing is no longer live. Everything works without this script.
(function () {
  "use strict";
  function poll(el) {
    var url = el.getAttribute("data-poll");
    var every = parseInt(el.getAttribute("data-interval") || "3000", 10);
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (!r.ok) { throw new Error("status " + r.status); }
          var live = r.headers.get("X-Nightlatch-Live") !== "0";
          return r.text().then(function (html) { return { html: html, live: live }; });
        })
        .then(function (res) {
          var doc = new DOMParser().parseFromString(res.html, "text/html");
          el.replaceChildren.apply(el, Array.prototype.slice.call(doc.body.childNodes));
          if (res.live) { setTimeout(tick, every); }
        })
        .catch(function () { setTimeout(tick, every * 2); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-poll]"), poll);
  });
})();
