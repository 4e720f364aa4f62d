"""Call notes (通话记录): saved with the call, read back, shown in the caller's history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from queue_engine import TicketState as T

from .conftest import CALLER, HALL, OFFICER, SUPERVISOR, Hot

AGENT, OTHER = "W0101", "W0102"
BASE = f"/api/halls/{HALL}"


async def take_call(hot: Hot, sid: str, auth: dict[str, str]) -> int:
    """A call rings, is offered to the signed-in agent and accepted: its ticket id."""
    tid = await hot.queue_call(sid)
    assert (await hot.act(AGENT, "accept", auth)).status_code == 200
    assert (await hot.ticket(tid)).state == T.SERVING
    return tid


async def put(hot: Hot, tid: int, text: str, auth: dict[str, str], status: int = 200) -> Any:
    r = await hot.client.put(f"{BASE}/tickets/{tid}/notes", json={"text": text}, headers=auth)
    assert r.status_code == status, r.text
    return r.json()


async def get(hot: Hot, path: str, auth: dict[str, str], status: int = 200, **params: Any) -> Any:
    r = await hot.client.get(BASE + path, headers=auth, params=params)
    assert r.status_code == status, r.text
    return r.json()


def texts(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(n["author"], n["text"]) for n in body["notes"]]


async def test_save_and_read_back(hot: Hot) -> None:
    auth = await hot.sign_in(AGENT, "H01")
    tid = await take_call(hot, "CAN1", auth)
    assert await get(hot, f"/tickets/{tid}/notes", auth) == {
        "ticket_id": tid, "number": (await hot.ticket(tid)).number, "notes": [],
    }  # fmt: skip
    note = await put(hot, tid, "  来电人称已向物业反映，未处理。\n", auth)
    assert note == {"ticket_id": tid, "author": AGENT, "author_name": note["author_name"],
                    "text": "来电人称已向物业反映，未处理。", "at": hot.clock.now()}  # fmt: skip
    assert note["author_name"]  # the staffer's name from the hall's roster
    assert texts(await get(hot, f"/tickets/{tid}/notes", auth)) == [(AGENT, note["text"])]


async def test_the_latest_note_per_author_and_every_version_for_supervisors(hot: Hot) -> None:
    auth = await hot.sign_in(AGENT, "H01")
    sup = await hot.login(SUPERVISOR)
    tid = await take_call(hot, "CAN2", auth)
    await put(hot, tid, "来电人", auth)
    hot.clock.advance(5)
    first = await put(hot, tid, "来电人反映路灯损坏", auth)
    hot.clock.advance(5)
    again = await put(hot, tid, "来电人反映路灯损坏", auth)  # an autosave with nothing new
    assert again["at"] == first["at"]
    hot.clock.advance(5)
    await put(hot, tid, "已核实，转市场监管", sup)  # a supervisor may write too
    current = await get(hot, f"/tickets/{tid}/notes", auth)
    assert texts(current) == [(SUPERVISOR, "已核实，转市场监管"), (AGENT, "来电人反映路灯损坏")]

    await get(hot, f"/tickets/{tid}/notes", auth, 403, versions=True)  # the audit is theirs
    audit = await get(hot, f"/tickets/{tid}/notes", sup, versions=True)
    assert texts(audit) == [(SUPERVISOR, "已核实，转市场监管"), (AGENT, "来电人反映路灯损坏"),
                            (AGENT, "来电人")]  # fmt: skip

    hot.clock.advance(5)
    assert (await put(hot, tid, "   ", auth))["text"] == ""  # cleared
    assert texts(await get(hot, f"/tickets/{tid}/notes", sup)) == [
        (SUPERVISOR, "已核实，转市场监管")
    ]
    assert len((await get(hot, f"/tickets/{tid}/notes", sup, versions=True))["notes"]) == 4


async def test_the_callers_history_carries_each_calls_notes(hot: Hot) -> None:
    auth = await hot.sign_in(AGENT, "H01")
    first = await take_call(hot, "CAN3", auth)
    await put(hot, first, "咨询公积金提取，已告知材料", auth)
    await hot.status("CAN3", "completed")  # the caller hangs up: done, the agent wraps up
    hot.clock.advance(60)
    second = await hot.queue_call("CAN4")  # the same number rings again
    other = await hot.login(OTHER)
    for path in (f"/tickets/{second}/caller", f"/callers/{CALLER}"):
        history = await get(hot, path, other)  # whoever answers sees what was said before
        by_id = {t["id"]: t for t in history["tickets"]}
        assert [n["text"] for n in by_id[first]["notes"]] == ["咨询公积金提取，已告知材料"]
        assert by_id[first]["notes"][0]["author"] == AGENT
        assert by_id[second]["notes"] == []


async def test_only_the_agent_on_the_call_writes(hot: Hot) -> None:
    auth = await hot.sign_in(AGENT, "H01")
    tid = await take_call(hot, "CAN5", auth)
    await put(hot, tid, "原记录", auth)
    other = await hot.login(OTHER)
    body = await put(hot, tid, "不是我的来电", other, 403)
    assert body["error"]["code"] == "forbidden" and body["error"]["message_zh"]
    assert texts(await get(hot, f"/tickets/{tid}/notes", other)) == [(AGENT, "原记录")]
    officer = await hot.login(OFFICER)  # department officers are not hotline agents
    await get(hot, f"/tickets/{tid}/notes", officer, 403)
    await put(hot, tid, "x", officer, 403)


async def test_unknown_ticket_is_404(hot: Hot) -> None:
    auth = await hot.login(SUPERVISOR)
    assert (await put(hot, 987654, "x", auth, 404))["error"]["code"] == "ticket_not_found"
    body = await get(hot, "/tickets/987654/notes", auth, 404)
    assert body["error"]["code"] == "ticket_not_found"


async def test_a_hall_ticket_carries_no_call_notes(hot: Hot) -> None:
    sup = await hot.login(SUPERVISOR)
    visit = (await hot.engine.take_ticket("social_insurance")).ticket
    body = await put(hot, visit.id, "x", sup, 409)
    assert body["error"]["code"] == "not_a_call"
    assert body["error"]["message_zh"] and body["error"]["message_en"]
    assert (await get(hot, f"/tickets/{visit.id}/notes", sup, 409))["error"]["code"] == "not_a_call"


async def test_text_over_2000_characters_is_a_422(hot: Hot) -> None:
    auth = await hot.sign_in(AGENT, "H01")
    tid = await take_call(hot, "CAN6", auth)
    body = await put(hot, tid, "记" * 2001, auth, 422)
    assert body["error"]["code"] == "invalid_request"
    assert body["error"]["message_zh"] and body["error"]["details"]
    assert (await put(hot, tid, " " + "记" * 2000 + " ", auth))["text"] == "记" * 2000
    r = await hot.client.put(f"{BASE}/tickets/{tid}/notes", json={"note": "x"}, headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


async def test_notes_survive_a_restart(make_hot: Callable[..., Any]) -> None:
    async with make_hot() as hot:
        auth = await hot.sign_in(AGENT, "H01")
        tid = await take_call(hot, "CAN7", auth)
        await put(hot, tid, "来电人下周一再来电", auth)
    async with make_hot() as hot:  # the same SQLite file
        sup = await hot.login(SUPERVISOR)
        assert texts(await get(hot, f"/tickets/{tid}/notes", sup)) == [
            (AGENT, "来电人下周一再来电")
        ]
        history = await get(hot, f"/callers/{CALLER}", sup)
        assert history["tickets"][0]["notes"][0]["text"] == "来电人下周一再来电"
