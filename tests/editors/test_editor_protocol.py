"""The editor clients spell the server's wire names (lsp/protocol.py, lsp/settings.py) exactly.

Both clients keep their own copy of the names (Lua and TypeScript cannot import Python); this test is what
keeps the copies honest when the server changes.
"""

import json
import re
import typing

import msgspec
import pytest
from dcopilot.lsp import protocol
from dcopilot.lsp.settings import Settings

from editors_harness import ROOT

TS = (ROOT / "editors" / "vscode" / "src" / "protocol.ts").read_text()
TS_SETTINGS = (ROOT / "editors" / "vscode" / "src" / "settings.ts").read_text()
LUA = (ROOT / "editors" / "nvim" / "lua" / "dcopilot" / "protocol.lua").read_text()

# server constant -> (TypeScript constant, Lua field)
NAMES = {
    "DID_SHOW": ("DID_SHOW", "did_show"),
    "DID_ACCEPT": ("DID_ACCEPT", "did_accept"),
    "DID_REJECT": ("DID_REJECT", "did_reject"),
    "STATS": ("STATS", "stats"),
    "STATUS": ("STATUS", "status"),
    "INLINE_EDIT": ("INLINE_EDIT", "inline_edit"),
    "CMD_ACCEPTED": ("CMD_ACCEPTED", "cmd_accepted"),
    "CMD_REWRITE_INSTRUCTION": ("CMD_REWRITE_INSTRUCTION", "cmd_rewrite_instruction"),
}


@pytest.mark.parametrize("server_name", sorted(NAMES))
def test_method_names_match_the_server(server_name):
    ts_name, lua_name = NAMES[server_name]
    wire = getattr(protocol, server_name)
    ts = re.search(rf"export const {ts_name} = '([^']+)'", TS)
    lua = re.search(rf"M\.{lua_name} = '([^']+)'", LUA)
    assert ts and ts[1] == wire, f"protocol.ts {ts_name}"
    assert lua and lua[1] == wire, f"protocol.lua {lua_name}"


def test_vscode_live_settings_are_the_server_settings():
    keys = re.search(r"LIVE_KEYS = \[(.*?)\] as const", TS_SETTINGS, re.S)
    assert keys
    client = set(re.findall(r"'(\w+)'", keys[1])) | {"enable"}
    server = {f.encode_name for f in msgspec.structs.fields(Settings)}
    assert client == server


def test_status_states_are_known_to_the_clients():
    states = set(typing.get_args(typing.get_type_hints(protocol.Status)["state"]))
    assert states
    ts_states = set(re.findall(r"'(\w+)'", re.search(r"export type State = ([^;]+);", TS)[1]))
    assert states <= ts_states


MANIFEST = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text())["contributes"]["configuration"][
    "properties"
]


@pytest.mark.parametrize(
    "field", [f for f in msgspec.structs.fields(Settings) if f.encode_name != "enable"], ids=lambda f: f.encode_name
)
def test_vscode_setting_declares_the_server_type(field):
    """Each live setting in package.json has the server's type, choices and bounds (enable is per language)."""
    prop = MANIFEST[f"dcopilot.{field.encode_name}"]
    hint = typing.get_type_hints(Settings, include_extras=True)[field.name]
    base, meta = hint, None
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        meta = next((m for m in extras if isinstance(m, msgspec.Meta)), None)
    if typing.get_origin(base) is typing.Literal:
        assert prop["type"] == "string" and prop["enum"] == list(typing.get_args(base))
    else:
        assert prop["type"] == {bool: "boolean", int: "integer", float: "number", str: "string"}[base]
    if meta is not None:
        assert (prop.get("minimum"), prop.get("maximum")) == (meta.ge, meta.le)
