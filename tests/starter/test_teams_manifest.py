"""deploy/teams/: the app it installs has the bot the service answers as, every command of the grammar the
endpoint parses, and the two icons Teams wants (192 x 192 colour, 32 x 32 outline)."""

from __future__ import annotations

import json
import struct

from settings import ROOT
from starter.http.slack import VERBS

APP = ROOT / "deploy" / "teams"


def manifest() -> dict:
    loaded: dict = json.loads((APP / "manifest.json").read_text())
    return loaded


def png_size(name: str) -> tuple[int, int]:
    data = (APP / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_icons_are_the_sizes_teams_wants() -> None:
    icons = manifest()["icons"]
    assert png_size(icons["color"]) == (192, 192)
    assert png_size(icons["outline"]) == (32, 32)


def test_the_bot_is_the_apps_own_registration_in_channels_chats_and_personal() -> None:
    m = manifest()
    (bot,) = m["bots"]
    assert bot["botId"] == m["id"], "one Azure app registration: the app's id is its bot's"
    assert {"team", "personal", "groupChat"} <= set(bot["scopes"])
    assert m["manifestVersion"] == "1.19" and m["$schema"].endswith("/v1.19/MicrosoftTeams.schema.json")


def test_every_command_the_endpoint_parses_is_offered_and_none_else() -> None:
    (bot,) = manifest()["bots"]
    assert all(len(listed["commands"]) <= 10 for listed in bot["commandLists"])  # the schema's most per list
    offered = {c["title"] for listed in bot["commandLists"] for c in listed["commands"]}
    grammar = {"declare", "help", *VERBS} - {"acknowledge"}  # `acknowledge` is `ack`'s long form
    assert offered == grammar
