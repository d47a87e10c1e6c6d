"""A small Sphinx extension that keeps the built site offline and its browser console clean.

Jupyter Book 1 always loads sphinx-thebe, which adds its configuration script twice per page (a console
error: "Identifier 'THEBE_JS_URL' has already been declared") and names a CDN URL for thebe. Live code is
off in this course, so both thebe scripts are dropped from every page.
"""


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    kept = []
    for script in scripts:
        body = getattr(script, "attributes", {}).get("body", "") if not isinstance(script, str) else ""
        name = str(script)
        if "THEBE_JS_URL" in body or name.endswith("sphinx-thebe.js") or "thebe" in name and "unpkg" in name:
            continue
        kept.append(script)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
