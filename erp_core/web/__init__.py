"""Server-rendered HTML: Jinja2 templates, catalogs, locale formats and the SVG chart.

One base layout, autoescaped; no JS framework, nothing from a CDN. See docs/web-ui.md
for how a domain adds its pages and its menu entry.
"""
