"""bench/snippet_ranking.py runs end to end on a small workspace: the same snippets both ways for every request
that survives the debounce, fewer rankings than keystrokes after the change (the figures are the bench's)."""

import re

from snippet_ranking import main, sources


def test_sources_have_exactly_the_lines_asked_for():
    texts = sources(300)
    assert len(texts) >= 5 and all(t.count("\n") == 300 for t in texts)


def test_small_run_checks_its_snippets_and_ranks_less_often(capsys):
    main(["--docs", "4", "--lines", "300", "--keys", "40"])
    out = capsys.readouterr().out
    assert re.search(r"same snippets for all \d+ surviving requests: yes", out), out
    per_key = re.search(r"rankings per keystroke\s+([\d.]+)\s+([\d.]+)", out)
    assert per_key is not None, out
    assert float(per_key[1]) == 1.0 and 0 < float(per_key[2]) < 1.0, out
