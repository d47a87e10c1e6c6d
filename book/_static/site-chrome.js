// Two fixes to the book theme's page furniture, loaded on every page by book/_ext/lesson_site.py.
(function () {
  "use strict";

  // 1. Landmarks: the left sidebar's title link and search button sat outside any landmark (axe's "region"
  //    rule); the whole sidebar becomes the site's navigation. Its own "Main" list stays nested inside.
  function labelSidebar() {
    var sidebar = document.getElementById("pst-primary-sidebar");
    if (sidebar && !sidebar.hasAttribute("role")) {
      sidebar.setAttribute("role", "navigation");
      sidebar.setAttribute("aria-label", "Site");
    }
  }

  // 2. The colour-mode button: the theme cycles auto -> dark -> light (or auto -> light -> dark in a dark
  //    browser), so on a page first shown in the light mode its first click went to "auto", which looks the
  //    same, and nothing visible happened. When the theme's next mode is "auto" and "auto" would show the
  //    colours already on screen, the stored mode is set to "auto" first: the theme's own handler, which
  //    runs next, then moves on to the other colours. Every click changes what the reader sees.
  var prefersDark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function themesNextMode(current, dark) {
    var cycle = dark ? ["auto", "light", "dark"] : ["auto", "dark", "light"];
    return cycle[(cycle.indexOf(current) + 1) % cycle.length];
  }

  function beforeThemeSwitch() {
    var html = document.documentElement;
    var dark = !!(prefersDark && prefersDark.matches);
    var current;
    try {
      current = window.localStorage.getItem("mode");
    } catch (e) {
      return; // no storage: the theme cannot keep a mode either
    }
    current = current || html.dataset.defaultMode || "auto";
    var autoShows = dark ? "dark" : "light";
    if (themesNextMode(current, dark) === "auto" && autoShows === html.dataset.theme) {
      window.localStorage.setItem("mode", "auto");
    }
  }

  document.addEventListener(
    "click",
    function (event) {
      var target = event.target;
      if (target && target.closest && target.closest(".theme-switch-button")) {
        beforeThemeSwitch();
      }
    },
    true // capture: before the theme's listener on the button itself
  );

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", labelSidebar);
  } else {
    labelSidebar();
  }
})();
