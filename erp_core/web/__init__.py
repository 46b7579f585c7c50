"""Server-rendered HTML: safe string templates, formatting and SVG charts, no JS framework.

Plants run offline and Jinja2 is not a dependency, so pages are built from small
Python templates in which every value is escaped unless it is already ``Html``.
"""
