"""A small file to try `dcopilot complete` on: the last function stops where you would be typing."""

import os


def read_lines(path):
    """Return the lines of the file at `path`, without their line endings."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def count_words(path):
    """Return the number of whitespace-separated words in the file at `path`."""
    total = 0
    for line in read_lines(path):
        total += 
    return total


if __name__ == "__main__":
    print(count_words(os.environ.get("DEMO_FILE", __file__)))
