"""report.md's sections, one module each; `markdown.render_markdown` puts them in order."""
