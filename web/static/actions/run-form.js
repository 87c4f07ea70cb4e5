// Action forms: the entity pickers' text filter fetches matching choices as you type (without JavaScript the
// Filter button reloads the form with the filter applied). Everything else is plain HTML.
(function () {
  "use strict";

  function refresh(form) {
    var key = form.getAttribute("data-input");
    var name = key === "entity" ? "entity" : "properties." + key;
    var filter = document.querySelector('input[form="' + form.id + '"][type="search"]');
    var select = document.querySelector('select[name="' + CSS.escape(name) + '"]');
    if (!filter || !select) return;
    var params = new URLSearchParams();
    params.set("input", key);
    params.set("filter." + key, filter.value);
    form.querySelectorAll('input[type="hidden"]').forEach(function (input) {
      if (input.name === "entity" && key !== "entity") params.set("entity", input.value);
    });
    Array.prototype.forEach.call(select.selectedOptions, function (option) {
      if (option.value) params.append(name, option.value);
    });
    fetch(form.getAttribute("data-options-url") + "?" + params.toString(),
          { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector(".picker-results");
        var current = select.closest(".picker-results");
        if (fresh && current) current.replaceWith(fresh);
      })
      .catch(function () { /* keep the current choices; the Filter button still works */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.filter-form[data-options-url]").forEach(function (form) {
      var timer = null;
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        refresh(form);
      });
      var filter = document.querySelector('input[form="' + form.id + '"][type="search"]');
      if (filter) {
        filter.addEventListener("input", function () {
          clearTimeout(timer);
          timer = setTimeout(function () { refresh(form); }, 250);
        });
      }
    });
  });
})();
