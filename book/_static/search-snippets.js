// Search results: Sphinx builds each result's snippet from the page's main block, which in this theme starts
// with a print-only copy of the title and table of contents, ends with the previous/next links and the page's
// table of contents, and keeps the page's indentation. Snippets then showed the title and "Contents" with
// nothing else. Drop that furniture and collapse white space, so a snippet is the prose around the term.
(function () {
  "use strict";
  function patch() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search.htmlToText.lessonPatched) return;
    const original = Search.htmlToText;
    const patched = (htmlString, anchor) => {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      const chrome = ".onlyprint, #jb-print-docs-body, .prev-next-area, .bd-sidebar-secondary, .bd-footer-article, footer, nav";
      doc.querySelectorAll(chrome).forEach((el) => el.remove());
      return original(doc.documentElement.outerHTML, anchor).replace(/\s+/g, " ").trim();
    };
    patched.lessonPatched = true;
    Search.htmlToText = patched;
  }
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
