// Progressive enhancement shared by every page. Pages work without it.
(function () {
  "use strict";

  // <time data-countdown datetime="ISO">: keeps a "2d 3h left" text current.
  function countdownText(ms) {
    if (ms <= 0) return "expired";
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600),
        m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h left";
    if (h > 0) return h + "h " + m + "m left";
    return m + "m " + (s % 60) + "s left";
  }
  function tickCountdowns() {
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      el.textContent = countdownText(new Date(el.getAttribute("datetime")) - new Date());
    });
  }

  // <div data-live-url="/x/partial" data-live-interval="2000">: re-fetched and replaced while the element
  // keeps data-live-url (the partial drops it once there is nothing more to follow, e.g. a finished run).
  function follow(el) {
    var url = el.getAttribute("data-live-url");
    if (!url) return;
    var interval = parseInt(el.getAttribute("data-live-interval") || "2000", 10);
    setTimeout(function () {
      fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.firstElementChild;
          if (fresh) { el.replaceWith(fresh); follow(fresh); }
        })
        .catch(function () { follow(el); });
    }, interval);
  }

  // <button data-confirm="Really?">
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-confirm]");
    if (target && !window.confirm(target.getAttribute("data-confirm"))) event.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", function () {
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
    document.querySelectorAll("[data-live-url]").forEach(follow);
  });
  window.Portal = { countdownText: countdownText, follow: follow };
})();
