"""The IVR's TwiML, built by pure functions, parsed back with xml.etree."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest

from callcenter.config_checks import ConfigError
from callcenter.hotline import ivr
from callcenter.hotline.config import HotlineConfig, hotline_config
from callcenter.settings import load_settings
from queue_engine import WaitEstimate

from .conftest import CONFIG, ENDPOINTS, query_of

CFG = HotlineConfig(endpoints=ENDPOINTS)
ZH, EN = ivr.Voice("zh", CFG), ivr.Voice("en", CFG)
HAN = range(0x4E00, 0xA000)


def parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == "Response"
    return root


def has_han(text: str) -> bool:
    return any(ord(ch) in HAN for ch in text)


# --- the greeting --------------------------------------------------------------------------


def test_greeting_is_a_one_key_gather_in_mandarin() -> None:
    root = parse(ivr.greeting(ZH))
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1"
    assert gather.get("method") == "POST"
    assert gather.get("language") == "cmn-CN"  # a full locale (error 13512 otherwise)
    action = gather.get("action", "")
    assert action.startswith("/voice/menu?")
    assert query_of(action) == {"attempt": "0", "lang": "zh"}
    say = gather.find("Say")
    assert say is not None and say.get("voice") == "Polly.Zhiyu" and say.get("language") == "cmn-CN"
    text = say.text or ""
    assert has_han(text) and "96166" in text
    for key in ("按1", "按2", "按3", "0"):
        assert key in text
    assert "English" in text and "9" in text  # English on a key
    # No input: the menu handler is reached with an empty choice (counted as invalid).
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.get("method") == "POST"
    assert query_of(redirect.text or "") == {"attempt": "0", "lang": "zh", "Digits": ""}
    assert [el.tag for el in root] == ["Gather", "Redirect"]


def test_english_greeting_uses_the_english_voice_and_locale() -> None:
    root = parse(ivr.greeting(EN, attempt=1))
    gather = root.find("Gather")
    assert gather is not None and gather.get("language") == "en-US"
    assert query_of(gather.get("action", "")) == {"attempt": "1", "lang": "en"}
    say = gather.find("Say")
    assert say is not None
    assert (say.get("voice"), say.get("language")) == ("Polly.Joanna", "en-US")
    assert not has_han(say.text or "") and "press 1" in (say.text or "")


def test_voice_and_locale_follow_the_config() -> None:
    cfg = replace(CFG, voice="Polly.Zhiyu-Neural", language="zh-CN", en_voice="Polly.Amy",
                  en_language="en-GB")  # fmt: skip
    for lang, pair in (("zh", ("Polly.Zhiyu-Neural", "zh-CN")), ("en", ("Polly.Amy", "en-GB"))):
        root = parse(ivr.greeting(ivr.Voice(lang, cfg)))
        say = root.find("Gather/Say")
        assert say is not None and (say.get("voice"), say.get("language")) == pair
        assert root.find("Gather").get("language") == pair[1]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("digits", "choice"),
    [("1", "case"), ("2", "appointment"), ("3", "agent"), ("0", "agent"), ("9", "english"),
     (" 3 ", "agent"), ("", "invalid"), ("4", "invalid"), ("8", "invalid"), ("*", "invalid"),
     ("#", "invalid"), ("12", "invalid"), ("三", "invalid")],
)  # fmt: skip
def test_menu_choice(digits: str, choice: str) -> None:
    assert ivr.menu_choice(digits) == choice


def test_invalid_input_says_so_and_plays_the_menu_again() -> None:
    root = parse(ivr.invalid_then_menu(ZH, 1))
    assert [el.tag for el in root] == ["Say", "Redirect"]
    assert "输入有误" in (root.find("Say").text or "")  # type: ignore[union-attr]
    assert query_of(root.find("Redirect").text or "") == {"attempt": "1", "lang": "zh"}  # type: ignore[union-attr]
    assert (root.find("Redirect").text or "").startswith("/voice/incoming?")  # type: ignore[union-attr]


def test_case_prompt_gathers_twelve_digits_ended_by_hash() -> None:
    root = parse(ivr.case_prompt(ZH))
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "12" and gather.get("finishOnKey") == "#"
    assert (gather.get("action") or "").startswith("/voice/case?")
    assert "十二位" in (gather.find("Say").text or "")  # type: ignore[union-attr]
    # Nothing entered: back to the menu handler as one invalid attempt already spent.
    assert query_of(root.find("Redirect").text or "")["attempt"] == "1"  # type: ignore[union-attr]


def test_spoken_case_status_returns_to_the_menu() -> None:
    root = parse(ivr.spoken_then_menu(ZH, "case_status", number="WUHO202605290001",
                                      status="审查", status_en="审查", promised="2026-06-03"))  # fmt: skip
    text = root.find("Say").text or ""  # type: ignore[union-attr]
    assert "WUHO202605290001" in text and "审查" in text and "2026-06-03" in text
    assert (root.find("Redirect").text or "").startswith("/voice/incoming?")  # type: ignore[union-attr]


# --- queue, hold, night ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ahead", "minutes", "spoken"), [(0, 0.0, 1), (2, 10.0, 10), (5, 12.4, 12), (1, 0.3, 1)]
)
def test_queued_announces_position_and_wait_then_holds(
    ahead: int, minutes: float, spoken: int
) -> None:
    root = parse(ivr.queued(ZH, 42, ahead, minutes))
    assert [el.tag for el in root] == ["Say", "Redirect"]
    text = root.find("Say").text or ""  # type: ignore[union-attr]
    assert f"您前面还有{ahead}位" in text and f"约{spoken}分钟" in text and "星号" in text
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.get("method") == "POST"
    assert (redirect.text or "").startswith("/voice/hold?")
    assert query_of(redirect.text or "") == {"ticket": "42", "lang": "zh"}


def test_english_queued_prompt() -> None:
    root = parse(ivr.queued(EN, 7, 3, 6.0))
    say = root.find("Say")
    assert say is not None and say.get("language") == "en-US"
    assert "3 callers are ahead of you" in (say.text or "") and "6 minutes" in (say.text or "")
    assert query_of(root.find("Redirect").text or "")["lang"] == "en"  # type: ignore[union-attr]


def test_hold_listens_for_star_over_silence_and_loops() -> None:
    root = parse(ivr.hold(ZH, 42, None, n=2))
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert gather.get("finishOnKey") == ""  # star is a choice, not an end key
    assert query_of(gather.get("action", "")) == {"ticket": "42", "lang": "zh"}
    assert (gather.get("action") or "").startswith("/voice/hold-key?")
    assert gather.find("Say") is None  # no announcement this round
    pause = gather.find("Pause")
    assert pause is not None and int(pause.get("length", "0")) >= 5
    redirect = root.find("Redirect").text or ""  # type: ignore[union-attr]
    assert redirect.startswith("/voice/hold?ticket=42")
    assert query_of(redirect)["n"] == "3"  # the loop counter moves on, so announcements come round


def test_hold_announces_the_position_when_asked_and_plays_music_when_configured() -> None:
    voice = ivr.Voice("zh", replace(CFG, hold_music_url="https://cdn.example/hold.mp3"))
    root = parse(ivr.hold(voice, 9, WaitEstimate(ahead=2, minutes=6.0, staffed=1)))
    gather = root.find("Gather")
    assert gather is not None
    assert [el.tag for el in gather] == ["Say", "Play"]
    said = gather.find("Say").text or ""  # type: ignore[union-attr]
    assert "您前面还有2位" in said and "约6分钟" in said
    assert gather.find("Play").text == "https://cdn.example/hold.mp3"  # type: ignore[union-attr]


HOLD_CONFIGS = [
    CFG,
    replace(CFG, hold_music_url="https://cdn.example/hold.mp3?a=1&b=2"),
    replace(CFG, hold_music_url="https://cdn.example/{braces}/hold.mp3"),
    replace(CFG, hold_announce_s=20.0, voice='Polly."Zhiyu"&<x>', language="cmn-CN"),
    replace(CFG, en_voice="Polly.Matthew", en_language="en-GB", hold_announce_s=61.0),
    # The probe numbers themselves in a setting: the shape cannot be cut, each call builds.
    replace(CFG, hold_music_url="https://cdn.example/918273645011/564738291013.mp3"),
]
ESTIMATES = [None, WaitEstimate(0, 0.0, 1), WaitEstimate(2, 6.0, 1), WaitEstimate(7, 2.5, 2),
             WaitEstimate(1000, 0.4, 3), WaitEstimate(3, 1e6, 1)]  # fmt: skip


@pytest.mark.parametrize("config", HOLD_CONFIGS)
def test_hold_twiml_is_the_librarys_byte_for_byte(config: HotlineConfig) -> None:
    for lang in ("zh", "en"):
        voice = ivr.Voice(lang, config)
        for ticket_id in (0, 1, 42, 10**15):
            for n in (-2, 0, 2, 3, 10**6):
                for est in ESTIMATES:
                    assert ivr.hold(voice, ticket_id, est, n) == ivr.build_hold(
                        voice, ticket_id, est, n
                    )


def test_hold_twiml_is_built_once_per_voice_and_kind(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ivr, "_SHAPES", {})
    builds: list[int] = []
    original = ivr.build_hold

    def counting(*args: Any) -> str:
        builds.append(1)
        return original(*args)

    monkeypatch.setattr(ivr, "build_hold", counting)
    for ticket_id in range(50):
        ivr.hold(ZH, ticket_id, None, ticket_id)
        ivr.hold(ivr.Voice("zh", CFG), ticket_id, WaitEstimate(ticket_id, 3.0, 1), 3)
    assert len(builds) == 4  # two kinds, each built with the probe numbers and checked once
    ivr.hold(EN, 1, None)
    assert len(builds) == 6
    # A config with the probe numbers in it is built on every call (after the probe and the
    # check that failed), and says so once.
    odd = ivr.Voice("zh", HOLD_CONFIGS[-1])
    with caplog.at_level(logging.WARNING, logger=ivr.__name__):
        ivr.hold(odd, 1, None)
        ivr.hold(odd, 2, None)
    assert len(builds) == 6 + 2 + 1 + 1
    assert len([r for r in caplog.records if "could not be cut" in r.getMessage()]) == 1


def test_night_offers_a_call_back_on_key_one_then_hangs_up() -> None:
    root = parse(ivr.night(ZH, 5))
    assert [el.tag for el in root] == ["Gather", "Say", "Hangup"]
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert query_of(gather.get("action", "")) == {"ticket": "5", "lang": "zh", "night": "1"}
    text = gather.find("Say").text or ""  # type: ignore[union-attr]
    assert "暂无座席" in text and "按1" in text and "回电" in text


def test_callback_registered_masks_the_number_and_hangs_up() -> None:
    root = parse(ivr.callback_registered(ZH, "138****5678"))
    assert [el.tag for el in root] == ["Say", "Hangup"]
    assert "138****5678" in (root.find("Say").text or "")  # type: ignore[union-attr]


# --- putting the call through ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "noun", "text"),
    [("client:agent-w0101", "Client", "agent-w0101"),
     ("sip:w0102@pbx.example.gov.cn", "Sip", "sip:w0102@pbx.example.gov.cn"),
     ("+8613900000103", "Number", "+8613900000103")],
)  # fmt: skip
def test_connect_dials_the_agents_endpoint(endpoint: str, noun: str, text: str) -> None:
    root = parse(ivr.connect(ZH, endpoint, 11))
    assert [el.tag for el in root] == ["Say", "Dial"]
    assert "接通座席" in (root.find("Say").text or "")  # type: ignore[union-attr]
    dial = root.find("Dial")
    assert dial is not None
    assert query_of(dial.get("action", "")) == {"ticket": "11", "lang": "zh"}
    assert (dial.get("action") or "").startswith("/voice/dial-done?")
    assert [el.tag for el in dial] == [noun]
    assert (dial.find(noun).text or "").strip() == text  # type: ignore[union-attr]


def test_callback_connect_greets_as_a_call_back() -> None:
    root = parse(ivr.connect(ZH, "client:W0104", 3, "callback_greeting"))
    assert "为您回电" in (root.find("Say").text or "")  # type: ignore[union-attr]
    assert root.find("Dial/Client").text == "W0104"  # type: ignore[union-attr]


def test_endpoints_default_to_a_client_named_by_the_work_number() -> None:
    assert CFG.endpoint("W0101") == "client:agent-w0101"
    assert CFG.endpoint("W0104") == "client:W0104"


BUILDERS: dict[str, Callable[[ivr.Voice], str]] = {
    "greeting": ivr.greeting,
    "invalid": lambda v: ivr.invalid_then_menu(v, 1),
    "case_prompt": ivr.case_prompt,
    "not_found": lambda v: ivr.spoken_then_menu(v, "case_not_found"),
    "queued": lambda v: ivr.queued(v, 1, 2, 3.0),
    "hold": lambda v: ivr.hold(v, 1, WaitEstimate(ahead=2, minutes=4.0, staffed=1)),
    "night": lambda v: ivr.night(v, 1),
    "callback": lambda v: ivr.callback_registered(v, "138****5678"),
    "connect": lambda v: ivr.connect(v, "client:x", 1),
    "goodbye": ivr.goodbye,
}


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_prompt_pairs_its_voice_with_its_locale(name: str, lang: str) -> None:
    voice = ivr.Voice(lang, CFG)
    root = parse(BUILDERS[name](voice))
    pair = ("Polly.Zhiyu", "cmn-CN") if lang == "zh" else ("Polly.Joanna", "en-US")
    says = list(root.iter("Say"))
    assert says, name
    for say in says:
        assert (say.get("voice"), say.get("language")) == pair
        assert (say.text or "").strip()
        if lang == "en":
            assert not has_han(say.text or ""), say.text
    for gather in root.iter("Gather"):
        assert gather.get("language") in (None, pair[1])
    for el in root.iter():
        for attr in ("action",):
            if el.get(attr):
                assert el.get(attr, "").startswith("/voice/") and f"lang={lang}" in el.get(attr, "")


# --- the [hotline] table ------------------------------------------------------------------------


def _settings_with(hotline: dict[str, Any]):  # type: ignore[no-untyped-def]
    base = load_settings(CONFIG, env={"CALLCENTER_STORE_URL": "sqlite:///:memory:"})
    return replace(base, raw=MappingProxyType({**base.raw, "hotline": hotline}))


def test_no_hotline_table_no_hotline() -> None:
    base = load_settings(CONFIG, env={"CALLCENTER_STORE_URL": "sqlite:///:memory:"})
    raw = {k: v for k, v in base.raw.items() if k != "hotline"}
    assert hotline_config(replace(base, raw=MappingProxyType(raw)), None) is None


def test_hotline_table_is_read() -> None:
    cfg = hotline_config(_settings_with({"number": "+862896166000", "public_url": "https://h.example",
                                         "endpoints": ENDPOINTS, "callback_attempts": 2}), None)  # fmt: skip
    assert cfg is not None
    assert cfg.public_url == "https://h.example" and cfg.callback_attempts == 2
    assert cfg.endpoint("W0102") == ENDPOINTS["W0102"]
    assert cfg.services["agent"] == "hotline_consult"


@pytest.mark.parametrize(
    "table",
    [{"endpoints": {"W0101": "tel:96166"}}, {"endpoints": {"W9999": "client:x"}},
     {"services": {"agent": "social_insurance"}}, {"services": {"appointment": "hotline_appointment"}}],
)  # fmt: skip
def test_bad_hotline_tables_are_refused(table: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        hotline_config(_settings_with(table), None)
