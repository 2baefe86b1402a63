"""End to end over stdio: pytest-lsp drives the real `dcopilot serve` subprocess (deterministic backend, real
worker thread and service), one server shared by the module. Exact suggestions come from det_backend.WORDS."""

import asyncio
import itertools

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient

from det_backend import DEFAULT
from lsp_support import SERVE, server_env

pytestmark = pytest.mark.asyncio(loop_scope="module")

_uris = (f"file:///work/proto_{i}.py" for i in itertools.count())

CAPS = types.ClientCapabilities(
    window=types.WindowClientCapabilities(work_done_progress=True),
    workspace=types.WorkspaceClientCapabilities(apply_edit=True, configuration=True),
    text_document=types.TextDocumentClientCapabilities(
        code_action=types.CodeActionClientCapabilities(
            resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]),
            code_action_literal_support=types.ClientCodeActionLiteralOptions(
                code_action_kind=types.ClientCodeActionKindOptions(value_set=[types.CodeActionKind.RefactorRewrite])
            ),
        ),
        inline_completion=types.InlineCompletionClientCapabilities(),
    ),
)


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVE, server_env=server_env()))
async def client(lsp_client: LanguageClient):
    lsp_client.statuses = []
    lsp_client.applied = []
    lsp_client.feature("dcopilot/status")(lambda params: lsp_client.statuses.append(params))

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams):
        lsp_client.applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    lsp_client.init_result = await lsp_client.initialize_session(types.InitializeParams(capabilities=CAPS))
    await _until_ready(lsp_client)
    yield
    await lsp_client.shutdown_session()


async def _until_ready(client: LanguageClient) -> None:
    for _ in range(400):
        if any(_get(s, "state") == "ready" for s in client.statuses):
            break
        await asyncio.sleep(0.025)


def _get(obj, key):
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


def open_doc(client: LanguageClient, text: str, version: int = 1) -> str:
    uri = next(_uris)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        )
    )
    return uri


def edit(client: LanguageClient, uri: str, version: int, line: int, char: int, text: str, end=None):
    end_line, end_char = end or (line, char)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(line, char), types.Position(end_line, end_char)), text=text
                )
            ],
        )
    )


def inline(client: LanguageClient, uri: str, line: int, char: int, invoked: bool = False):
    kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
    return client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=char),
            context=types.InlineCompletionContext(trigger_kind=kind),
        )
    )


def plain(value):
    """pygls' client hands custom results over as namedtuples; compare them as JSON."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


async def custom(client: LanguageClient, method: str, params) -> dict:
    return plain(await client.protocol.send_request_async(method, params))


async def stats(client: LanguageClient) -> dict:
    return await custom(client, "dcopilot/stats", {})


def rng(l1, c1, l2, c2) -> types.Range:
    return types.Range(start=types.Position(line=l1, character=c1), end=types.Position(line=l2, character=c2))


async def test_initialize_capabilities_progress_and_status(client: LanguageClient):
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.position_encoding == types.PositionEncodingKind.Utf16
    sync = caps.text_document_sync
    assert sync.change == types.TextDocumentSyncKind.Incremental and sync.open_close
    assert caps.code_action_provider.resolve_provider
    assert {"dcopilot.rewrite", "dcopilot.rewriteWithInstruction", "dcopilot.acceptedCompletion"} <= set(
        caps.execute_command_provider.commands
    )
    states = [_get(s, "state") for s in client.statuses]
    assert states[0] == "loading" and states[-1] == "ready"
    (reports,) = client.progress_reports.values()
    # The status notification goes out at once; the progress messages go through their own queue after the token
    # is created, so "end" may land just after "ready".
    for _ in range(100):
        if reports and reports[-1].kind == "end":
            break
        await asyncio.sleep(0.05)
    kinds = [r.kind for r in reports]
    assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds


async def test_inline_completion_inserts_at_cursor(client: LanguageClient):
    uri = open_doc(client, "def main():\n    pri\n")
    result = await inline(client, uri, 1, 7)
    (item,) = result.items
    assert item.insert_text == "nt('hello')"
    assert item.range == rng(1, 7, 1, 7)
    assert item.command.command == "dcopilot.acceptedCompletion"


async def test_replaces_auto_closed_bracket_to_line_end(client: LanguageClient):
    uri = open_doc(client, "x = foo()\n")
    (item,) = (await inline(client, uri, 0, 8)).items
    assert item.insert_text == "a, b)"
    assert item.range == rng(0, 8, 0, 9)  # the `)` the editor auto-closed is replaced, not duplicated


async def test_invoked_trigger_returns_several_items(client: LanguageClient):
    uri = open_doc(client, "    ret")
    result = await inline(client, uri, 0, 7, invoked=True)
    assert [i.insert_text for i in result.items] == ["urn total", "urn total  # 1", "urn total  # 2"]


async def test_typing_through_a_suggestion_is_served_from_cache(client: LanguageClient):
    uri = open_doc(client, "if ok:\n    \n")
    (first,) = (await inline(client, uri, 1, 4)).items
    assert first.insert_text == DEFAULT
    before = await stats(client)
    for version, ch in enumerate("_va", start=2):  # the user types the first three characters of the ghost text
        edit(client, uri, version, 1, 4 + version - 2, ch)
    (rest,) = (await inline(client, uri, 1, 7)).items
    after = await stats(client)
    assert rest.insert_text == DEFAULT[3:]
    assert rest.range == rng(1, 7, 1, 7)
    assert after["answeredFromCache"] == before["answeredFromCache"] + 1
    assert after["engineRuns"] == before["engineRuns"]  # no model call


async def test_cancel_request_answers_request_cancelled_and_stops_engine(client: LanguageClient):
    uri = open_doc(client, "#SLOW\nx = ")
    before = await stats(client)
    future = client.protocol.send_request(
        types.TEXT_DOCUMENT_INLINE_COMPLETION,
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(1, 4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked),
        ),
        msg_id="cancel-me",
    )
    await asyncio.sleep(0.4)  # the engine is now between its (slow) denoising steps
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="cancel-me"))
    with pytest.raises(JsonRpcException) as err:
        await asyncio.wrap_future(future)
    assert err.value.code == -32800
    for _ in range(100):
        after = await stats(client)
        if after["engineCancelled"] > before["engineCancelled"]:
            break
        await asyncio.sleep(0.05)
    assert after["engineCancelled"] == before["engineCancelled"] + 1
    assert after["cancelled"] >= before["cancelled"] + 1


async def test_newer_request_supersedes_older_one(client: LanguageClient):
    uri = open_doc(client, "#SLOW\ny = ")
    older = asyncio.ensure_future(inline(client, uri, 1, 4, invoked=True))
    await asyncio.sleep(0.3)
    edit(client, uri, 2, 0, 0, "", end=(0, 5))  # drop the #SLOW marker: the newer request is fast
    newer = await inline(client, uri, 1, 4, invoked=True)
    with pytest.raises(JsonRpcException) as err:
        await older
    assert err.value.code == -32800
    assert newer.items[0].insert_text == DEFAULT


async def test_result_for_changed_document_is_not_returned(client: LanguageClient):
    uri = open_doc(client, "#SLOW\nz = ")
    pending = asyncio.ensure_future(inline(client, uri, 1, 4, invoked=True))
    await asyncio.sleep(0.3)
    before = await stats(client)
    edit(client, uri, 2, 1, 4, "1")  # the document moves on; no new request for it
    result = await pending
    assert list(result.items) == []
    assert (await stats(client))["stale"] == before["stale"] + 1


async def test_model_error_gives_empty_result_and_keeps_serving(client: LanguageClient):
    uri = open_doc(client, "#BOOM\nw = ")
    assert list((await inline(client, uri, 1, 4, invoked=True)).items) == []
    ok = open_doc(client, "    pri")
    assert (await inline(client, ok, 0, 7, invoked=True)).items[0].insert_text == "nt('hello')"


async def test_code_action_resolves_to_versioned_workspace_edit(client: LanguageClient):
    uri = open_doc(client, "def foo():\n    return foo\n", version=7)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng(0, 0, 1, 14),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    titles = [a.title for a in actions]
    assert titles == ["Rewrite with dcopilot", "Rewrite with dcopilot (instruction)…"]
    assert actions[0].edit is None  # computed only on resolve
    resolved = await client.code_action_resolve_async(actions[0])
    (change,) = resolved.edit.document_changes
    assert change.text_document.version == 7
    (text_edit,) = change.edits
    assert text_edit.new_text == "def bar():\n    return bar"
    assert text_edit.range == rng(0, 0, 1, 14)


async def test_code_action_on_moved_document_is_disabled(client: LanguageClient):
    uri = open_doc(client, "foo = 1\n")
    (action, _) = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng(0, 0, 0, 3),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    edit(client, uri, 2, 0, 0, "#")
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is None and "version" in resolved.disabled.reason


async def test_execute_command_applies_versioned_edit(client: LanguageClient):
    uri = open_doc(client, "foo()\n", version=3)
    args = {
        "textDocument": {"uri": uri, "version": 3},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}},
    }
    result = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="dcopilot.rewrite", arguments=[args])
    )
    result = plain(result)
    assert result["applied"] is True
    (applied,) = [a for a in client.applied if a.edit.document_changes[0].text_document.uri == uri]
    assert applied.edit.document_changes[0].text_document.version == 3
    assert applied.edit.document_changes[0].edits[0].new_text == "bar()"
    with pytest.raises(JsonRpcException) as err:  # the instruction variant needs an instruction
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="dcopilot.rewriteWithInstruction", arguments=[args])
        )
    assert err.value.code == -32602


async def test_inline_edit_request_and_version_check(client: LanguageClient):
    uri = open_doc(client, "a = 1\nb = 2\n", version=4)
    params = {
        "textDocument": {"uri": uri, "version": 4},
        "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 5}},
        "instruction": "explain",
    }
    result = await custom(client, "dcopilot/inlineEdit", params)
    assert result["textDocument"] == {"uri": uri, "version": 4}
    assert result["edits"] == [{"range": params["range"], "newText": "b = 2  # explain"}]
    params["textDocument"]["version"] = 3
    with pytest.raises(JsonRpcException) as err:
        await custom(client, "dcopilot/inlineEdit", params)
    assert err.value.code == -32801  # ContentModified: never an edit against another version


async def test_completion_fallback_items(client: LanguageClient):
    uri = open_doc(client, "    pri")
    params = types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(0, 7))
    assert await client.text_document_completion_async(params) is None  # "auto": this client has inline completion
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"completionItems": "always"})
    )
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(0, 7))
    )
    (item,) = result.items
    # The edit replaces the typed `pri`, so clients that filter by the typed word keep the item.
    assert item.text_edit.new_text == "print('hello')" and item.text_edit.range == rng(0, 4, 0, 7)
    assert item.label == item.filter_text == "print('hello')"
    assert item.label_details.description == "dcopilot AI" and "AI" in item.detail
    assert result.is_incomplete
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"completionItems": "auto"}))


async def test_telemetry_and_stats(client: LanguageClient):
    uri = open_doc(client, "    pri")
    (item,) = (await inline(client, uri, 0, 7)).items
    sid = item.command.arguments[0]["id"]
    before = await stats(client)
    client.protocol.notify("dcopilot/didShowCompletion", {"id": sid})
    client.protocol.notify("dcopilot/didAcceptCompletion", {"id": sid, "acceptedLength": 3})
    client.protocol.notify("dcopilot/didShowCompletion", {"id": sid})
    await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
    )
    client.protocol.notify("dcopilot/didShowCompletion", {"id": sid})
    client.protocol.notify("dcopilot/didRejectCompletion", {"id": sid})
    after = await stats(client)
    assert after["shown"] - before["shown"] == 3
    assert after["partiallyAccepted"] - before["partiallyAccepted"] == 1
    assert after["accepted"] - before["accepted"] == 1
    assert after["rejected"] - before["rejected"] == 1
    assert after["acceptedChars"] - before["acceptedChars"] == 3 + len("nt('hello')")
    assert 0 < after["acceptanceRate"] <= 1
    assert after["latency"]["count"] >= 1 and after["latency"]["p95Ms"] >= after["latency"]["p50Ms"]


async def test_settings_update_live(client: LanguageClient):
    uri = open_doc(client, "    pri")
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"dcopilot": {"enable": False}})
    )
    assert list((await inline(client, uri, 0, 7, invoked=True)).items) == []
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"dcopilot": {"enable": "yes"}})
    )
    await asyncio.sleep(0.2)
    assert any("invalid dcopilot setting" in m.message for m in client.messages)
    assert list((await inline(client, uri, 0, 7, invoked=True)).items) == []  # the bad value changed nothing
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"enable": True, "candidates": 1})
    )
    assert len((await inline(client, uri, 0, 7, invoked=True)).items) == 1
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"candidates": 3}))


async def test_speculative_suggestion_after_accept(client: LanguageClient):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"speculative": True}))
    uri = open_doc(client, "    pri")
    (item,) = (await inline(client, uri, 0, 7)).items
    client.protocol.notify("dcopilot/didShowCompletion", {"id": item.command.arguments[0]["id"]})
    await asyncio.sleep(0.3)  # the speculative suggestion is computed in the background
    before = await stats(client)
    edit(client, uri, 2, 0, 7, item.insert_text)  # the user accepts
    (follow,) = (await inline(client, uri, 0, 7 + len(item.insert_text))).items
    after = await stats(client)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"speculative": False}))
    assert follow.insert_text == DEFAULT
    assert after["answeredFromCache"] == before["answeredFromCache"] + 1
    assert after["engineRuns"] == before["engineRuns"]


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=SERVE, server_env=server_env(DCOPILOT_SERVER_APPLY_EDIT_TIMEOUT_S="0.5")),
)
async def mute_client(lsp_client: LanguageClient):
    """An editor that receives workspace/applyEdit but does not answer until `answer` is set."""
    lsp_client.answer = asyncio.Event()
    lsp_client.statuses = []
    lsp_client.feature("dcopilot/status")(lambda params: lsp_client.statuses.append(params))

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    async def apply_edit(params: types.ApplyWorkspaceEditParams):
        await lsp_client.answer.wait()
        return types.ApplyWorkspaceEditResult(applied=True)

    await lsp_client.initialize_session(types.InitializeParams(capabilities=CAPS))
    await _until_ready(lsp_client)
    yield
    lsp_client.answer.set()
    await lsp_client.shutdown_session()


async def test_rewrite_gives_up_on_an_editor_that_does_not_answer_apply_edit(mute_client: LanguageClient):
    uri = open_doc(mute_client, "foo()\n")
    whole_call = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 5}}
    args = {"textDocument": {"uri": uri}, "range": whole_call}
    command = types.ExecuteCommandParams(command="dcopilot.rewrite", arguments=[args])
    result = plain(await asyncio.wait_for(mute_client.workspace_execute_command_async(command), 10))
    assert result["applied"] is False
    assert result["message"] == "the editor did not answer workspace/applyEdit within 0.5 s"
    assert result["edit"]["documentChanges"][0]["edits"][0]["newText"] == "bar()"
    mute_client.answer.set()  # the late answer must not disturb the server
    await asyncio.sleep(0.1)
    later = open_doc(mute_client, "def main():\n    pri\n")
    (item,) = (await asyncio.wait_for(inline(mute_client, later, 1, 7), 10)).items
    assert item.insert_text == "nt('hello')"
