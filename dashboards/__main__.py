"""``python -m dashboards``: regenerate the provisioned dashboard JSON."""

from dashboards.generate import write

for path in write():
    print(path)  # noqa: T201 - the command's output
