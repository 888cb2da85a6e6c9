"""The admin page of loaded plugins and their hook statistics."""

from __future__ import annotations

from flask import current_app, render_template


def loaded_plugins() -> list[dict]:
    """Every loaded plugin with its hook statistics (all workers)."""
    return list(current_app.extensions["portcullis.plugins"].describe())


def plugins_list():
    return render_template(
        "admin/plugins.html",
        plugins=loaded_plugins(),
        plugins_dir=current_app.config["PLUGINS_DIR"],
    )
