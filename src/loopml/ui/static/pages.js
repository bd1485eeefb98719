// loopml UI, the review pages: parts of a page that follow a live process (a canary rollout) reload
// themselves. An element with data-refresh="URL" is replaced every data-refresh-seconds (default 5) by the
// HTML fragment the server renders at URL (escaped there, like every page). Nothing runs on other pages.
(function () {
  "use strict";

  function follow(element) {
    var url = element.getAttribute("data-refresh");
    var seconds = Number(element.getAttribute("data-refresh-seconds") || "5");
    var busy = false;
    function tick() {
      if (busy || document.hidden) {
        return;
      }
      busy = true;
      fetch(url, { credentials: "same-origin", redirect: "manual", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.status !== 200) {
            return null; // logged out or gone: keep what is shown
          }
          return response.text();
        })
        .then(function (html) {
          if (html !== null && html !== element.innerHTML) {
            element.innerHTML = html;
          }
        })
        .catch(function () {})
        .then(function () {
          busy = false;
        });
    }
    window.setInterval(tick, Math.max(1, seconds) * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var found = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < found.length; i++) {
      follow(found[i]);
    }
  });
})();
