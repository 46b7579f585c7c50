"""``python -m dashboards``: regenerate the provisioned dashboard JSON."""

from dashboards.generate import write

if __name__ == "__main__":
    for path in write():
        print(path)  # noqa: T201 - the command's output
