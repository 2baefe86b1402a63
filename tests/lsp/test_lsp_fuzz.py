"""Fuzzing the real `dcopilot serve` (stdio and TCP, the deterministic backend): hypothesis throws batches of
random and mutated JSON-RPC frames, ids, params and document edits; after each batch the server must be alive,
answer a valid request, have answered every well-formed request of ours exactly once, and stay under an RSS
bound. Bounded: FUZZ_EXAMPLES batches per transport (default 40, well under a minute for both); derandomized
for CI unless FUZZ_RANDOM=1. FUZZ_REPORT=path writes the counts by class (bench/RESULTS.md quotes them).
"""

import collections
import json
import os
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
RSS_LIMIT_MB = 200  # the server idles at ~45 MB; documents here are small, so growth means a leak
URIS = [f"file:///fuzz/doc{i}.py" for i in range(3)] + ["untitled:Untitled-1", "file:///fuzz/%E6%95%B0.py"]
METHODS = [
    "textDocument/inlineCompletion",
    "textDocument/completion",
    "textDocument/codeAction",
    "codeAction/resolve",
    "dcopilot/inlineEdit",
    "workspace/executeCommand",
    "dcopilot/stats",
    "initialize",
    "x/unknown",
    "textDocument/hover",
    "workspace/didChangeConfiguration",
]
NOTIFICATIONS = [
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didClose",
    "$/cancelRequest",
    "dcopilot/didShowCompletion",
    "dcopilot/didAcceptCompletion",
    "dcopilot/didRejectCompletion",
    "workspace/didChangeConfiguration",
    "$/setTrace",
    "$/unknown",
    "initialized",
]
COUNTS: collections.Counter = collections.Counter()
PEAK_RSS_MB: dict[int, float] = {}  # server pid -> the most resident memory seen after a batch

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16,
)
numbers = st.integers(-3, 60) | st.integers(-(2**40), 2**40) | st.sampled_from([2**31 - 1, 2**31, -(2**31)])
position = st.fixed_dictionaries({"line": numbers, "character": numbers}) | json_values
rng = st.fixed_dictionaries({"start": position, "end": position}) | json_values
pieces = st.sampled_from([*"ab foo()\n\r\t#数😀\x00\ud800", "\r\n", "pri", "ret", "#SLOW"])
texts = st.lists(pieces, max_size=40).map("".join)
doc_ref = st.fixed_dictionaries({"uri": st.sampled_from(URIS)}, optional={"version": numbers | json_values})
params_for = {
    "textDocument/inlineCompletion": st.fixed_dictionaries(
        {
            "textDocument": doc_ref,
            "position": position,
            "context": st.fixed_dictionaries({"triggerKind": st.integers(0, 3)}),
        }
    ),
    "textDocument/completion": st.fixed_dictionaries({"textDocument": doc_ref, "position": position}),
    "textDocument/codeAction": st.fixed_dictionaries(
        {"textDocument": doc_ref, "range": rng, "context": st.just({"diagnostics": []})}
    ),
    "codeAction/resolve": st.fixed_dictionaries(
        {"title": st.text(max_size=5)},
        optional={"data": st.fixed_dictionaries({"textDocument": doc_ref, "range": rng}) | json_values},
    ),
    "dcopilot/inlineEdit": st.fixed_dictionaries(
        {"textDocument": doc_ref, "range": rng}, optional={"instruction": texts}
    ),
    "workspace/executeCommand": st.fixed_dictionaries(
        {
            "command": st.sampled_from(
                ["dcopilot.rewrite", "dcopilot.rewriteWithInstruction", "dcopilot.acceptedCompletion", "nope"]
            )
        },
        optional={
            "arguments": st.lists(
                st.fixed_dictionaries({"textDocument": doc_ref, "range": rng}) | json_values, max_size=2
            )
        },
    ),
    "textDocument/didOpen": st.fixed_dictionaries(
        {
            "textDocument": st.fixed_dictionaries(
                {
                    "uri": st.sampled_from(URIS),
                    "languageId": st.sampled_from(["python", ""]),
                    "version": numbers,
                    "text": texts,
                }
            )
        }
    ),
    "textDocument/didChange": st.fixed_dictionaries(
        {
            "textDocument": st.fixed_dictionaries({"uri": st.sampled_from(URIS), "version": numbers}),
            "contentChanges": st.lists(st.fixed_dictionaries({"text": texts}, optional={"range": rng}), max_size=3),
        }
    ),
    "textDocument/didClose": st.fixed_dictionaries({"textDocument": doc_ref}),
    "$/cancelRequest": st.fixed_dictionaries({"id": st.integers(0, 400) | st.text(max_size=4) | json_values}),
    "workspace/didChangeConfiguration": st.fixed_dictionaries({"settings": json_values}),
}


def params_strategy(method):
    return st.one_of(params_for[method], json_values) if method in params_for else json_values


@st.composite
def request(draw):
    method = draw(st.sampled_from(METHODS))
    return ("request", method, draw(params_strategy(method)))


@st.composite
def notification(draw):
    method = draw(st.sampled_from(NOTIFICATIONS))
    return ("notification", method, draw(params_strategy(method)))


@st.composite
def random_message(draw):
    """Any JSON at all, or an object with JSON-RPC's keys holding anything (never one of our ids)."""
    keys = {
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | scalars,
        "id": scalars | json_values,
        "method": st.sampled_from(METHODS + NOTIFICATIONS) | scalars,
        "params": json_values,
        "result": json_values,
        "error": json_values,
    }
    body = draw(json_values | st.fixed_dictionaries({}, optional=keys))
    return ("random", None, body)


@st.composite
def mutated_frame(draw):
    """A valid request whose bytes or framing are damaged (sent last in its batch: it may swallow what follows)."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": draw(st.integers(10**6, 10**7)),
            "method": draw(st.sampled_from(METHODS)),
            "params": draw(json_values),
        }
    ).encode()
    kind = draw(
        st.sampled_from(
            [
                "flip",
                "truncate",
                "insert",
                "length+",
                "length-",
                "no header",
                "huge length",
                "digits",
                "long header",
                "bad utf-8",
                "two headers",
            ]
        )
    )
    header = b"Content-Length: %d\r\n\r\n" % len(body)
    if kind == "flip" and body:
        i = draw(st.integers(0, len(body) - 1))
        body = body[:i] + bytes([draw(st.integers(0, 255))]) + body[i + 1 :]
        header = b"Content-Length: %d\r\n\r\n" % len(body)
    elif kind == "truncate":
        body = body[: draw(st.integers(0, len(body)))]
        header = b"Content-Length: %d\r\n\r\n" % len(body)
    elif kind == "insert":
        i = draw(st.integers(0, len(body)))
        body = body[:i] + draw(st.binary(max_size=20)) + body[i:]
        header = b"Content-Length: %d\r\n\r\n" % len(body)
    elif kind == "length+":
        header = b"Content-Length: %d\r\n\r\n" % (len(body) + draw(st.integers(1, 200)))
    elif kind == "length-":
        header = b"Content-Length: %d\r\n\r\n" % max(0, len(body) - draw(st.integers(1, 50)))
    elif kind == "no header":
        header = b""
    elif kind == "huge length":
        header = b"Content-Length: %d\r\n\r\n" % draw(st.integers(64 * 1024 * 1024 + 1, 10**15))
    elif kind == "digits":
        header = b"Content-Length: " + b"7" * draw(st.integers(13, 6000)) + b"\r\n\r\n"
    elif kind == "long header":
        header = b"X-Pad: " + b"z" * draw(st.integers(60_000, 140_000)) + b"\r\n" + header
    elif kind == "bad utf-8":
        body = body.replace(b'"2.0"', b'"2.0\xff\xfe"', 1)
        header = b"Content-Length: %d\r\n\r\n" % len(body)
    elif kind == "two headers":
        header = b"Content-Length: 5\r\nContent-Length: %d\r\n\r\n" % len(body)
    return ("frame", kind, header + body)


batches = st.tuples(
    st.lists(
        st.one_of(request(), request(), notification(), notification(), random_message()), min_size=1, max_size=25
    ),
    st.none() | mutated_frame(),
)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(x for x in f if x.startswith("VmRSS:")).split()[1]) / 1024


@pytest.fixture(scope="module", params=["stdio", "tcp"])
def target(request, tmp_path_factory):
    import lsp_support
    from rawclient import RawClient

    options = {"debounceMs": 0, "candidates": 2, "completionItems": "always"}
    caps = {
        "workspace": {"applyEdit": True},
        "textDocument": {"codeAction": {"resolveSupport": {"properties": ["edit"]}}},
    }
    if request.param == "stdio":
        client = RawClient(lsp_support.SERVE, lsp_support.server_env())
        client.initialize(options=options, caps=caps)
        daemon = None
    else:
        daemon = lsp_support.Daemon(tmp_path_factory.mktemp("fuzz"))
        client = daemon.client(options=options, caps=caps)
    client.wait_status("ready")
    client.fuzz_ids = []  # every well-formed request of ours; each must be answered exactly once
    yield client
    ids = collections.Counter(m["id"] for m in client.log if "id" in m and "method" not in m)
    assert not [i for i in client.fuzz_ids if ids[i] != 1]
    if daemon is None:
        assert client.close() == 0
    else:
        client.close()
        assert daemon.stop() == 0
    report = os.environ.get("FUZZ_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump(
                {**COUNTS, "peak RSS MB": sorted(round(v) for v in PEAK_RSS_MB.values())}, f, indent=1, sort_keys=True
            )


def our_id(client) -> str:
    return f"\u2603fuzz-{client.request_id()}"  # a prefix hypothesis' short texts never produce


# No shrinking: the server carries state from batch to batch, so a failure is reported as the batch that
# showed it (hypothesis prints it) rather than minimised against a server that has moved on.
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
@given(batch=batches)
def test_fuzz_batches(target, batch):
    client = target
    actions, frame = batch
    expected = []
    for what, method, body in actions:
        if what == "request":
            rid = our_id(client)
            expected.append(rid)
            client.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": body})
        elif what == "notification":
            client.send({"jsonrpc": "2.0", "method": method, "params": body})
        else:
            client.send_bytes(json.dumps(body).encode())
        COUNTS[f"{what} {method}" if what != "random" else "random JSON"] += 1
    if frame is not None:
        COUNTS[f"mutated frame: {frame[1]}"] += 1
        client.send_raw(frame[2])
        client.send_raw(b"\r\n" * 300)  # a length that overstates its body swallows this, not the next request
    sentinel = our_id(client)
    client.send({"jsonrpc": "2.0", "id": sentinel, "method": "dcopilot/stats"})
    assert "result" in client.wait(sentinel, timeout=30), "the server stopped answering"
    deadline = time.monotonic() + 30
    for rid in expected:
        client.wait(rid, timeout=max(0.1, deadline - time.monotonic()))
    client.fuzz_ids.extend([*expected, sentinel])
    for rid in [*expected, sentinel]:
        assert len(client.responses[rid]) == 1, f"{rid} answered {len(client.responses[rid])} times"
        reply = client.responses[rid][0]
        assert "Traceback" not in json.dumps(reply.get("error", {}))
    assert client.proc.poll() is None
    rss = rss_mb(client.proc.pid)
    PEAK_RSS_MB[client.proc.pid] = max(rss, PEAK_RSS_MB.get(client.proc.pid, 0))
    assert rss < RSS_LIMIT_MB
