"""The IVR: what the caller hears and what a key press means, as TwiML built by the twilio library.

Pure functions: each takes what it needs and returns the TwiML text, so every
prompt and branch is tested without a server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from queue_engine import WaitEstimate

from .config import HotlineConfig

log = logging.getLogger(__name__)

# A hold loop lasts about a quarter of hold_announce_s; every fourth one announces.
ANNOUNCE_EVERY = 4

PROMPTS = {
    "greeting": (
        "您好，欢迎致电96166政务服务热线。查询办件进度请按1，预约办事请按2，人工服务请按3或0。For English, press 9.",
        "Welcome to the 96166 government service hotline. For the status of an application press 1, "
        "for appointments press 2, for an agent press 3 or 0.",
    ),
    "invalid": ("输入有误，请重新选择。", "Sorry, that is not an option."),
    "case_prompt": (
        "请输入办件号中的十二位数字，以井号键结束。",
        "Enter the twelve digits of your case number, then press hash.",
    ),
    "case_status": (
        "办件{number}当前状态为{status}，承诺办结日期为{promised}。",
        "Case {number} is now {status_en}, due by {promised}.",
    ),
    "case_not_found": (
        "未查询到您名下的该办件，请核对后再试。",
        "We found no such case under your number.",
    ),
    "queued": (
        "正在为您转接人工服务。您前面还有{ahead}位，预计等待约{minutes}分钟。如需挂机等候回电，请按星号键。",
        "Connecting you to an agent. {ahead} callers are ahead of you, about {minutes} minutes. "
        "To be called back instead, press star.",
    ),
    "position": (
        "您前面还有{ahead}位，预计等待约{minutes}分钟。按星号键可登记回电。",
        "{ahead} callers ahead of you, about {minutes} minutes. Press star for a call-back.",
    ),
    "night": (
        "当前暂无座席在线，按1登记回电，我们将在座席上班后尽快回电；或请稍后再拨。",
        "No agent is on duty now. Press 1 to be called back as soon as one is, or call again later.",
    ),
    "callback_registered": (
        "已为您登记回电，我们将致电{masked}，请保持电话畅通。再见。",
        "We will call you back at {masked}. Goodbye.",
    ),  # fmt: skip
    "connecting": ("正在为您接通座席，请稍候。", "Connecting you to an agent."),
    "callback_greeting": (
        "您好，这里是96166政务服务热线，为您回电，正在接通座席。",
        "This is the 96166 hotline calling you back; connecting you to an agent.",
    ),  # fmt: skip
    "goodbye": ("感谢您的来电，再见。", "Thank you for calling. Goodbye."),
}


@dataclass(frozen=True, slots=True)
class Voice:
    """The language of one call: its prompts, voice and locale."""

    lang: str
    config: HotlineConfig

    def text(self, key: str, **values: object) -> str:
        """A prompt in this call's language."""
        zh, en = PROMPTS[key]
        return (en if self.lang == "en" else zh).format(**values)

    def say(self, target: VoiceResponse | Gather, key: str, **values: object) -> None:
        """Add <Say> of a prompt with the configured voice and locale."""
        voice = self.config.en_voice if self.lang == "en" else self.config.voice
        language = self.config.en_language if self.lang == "en" else self.config.language
        target.say(self.text(key, **values), voice=voice, language=language)

    @property
    def gather_language(self) -> str:
        """The full locale <Gather> needs (a bare 'zh' is refused by the provider)."""
        return self.config.en_language if self.lang == "en" else self.config.language


def url(path: str, **query: object) -> str:
    """A webhook path with its query string."""
    clean = {k: v for k, v in query.items() if v is not None}
    return f"/voice/{path}" + (f"?{urlencode(clean)}" if clean else "")


def menu_choice(digits: str) -> str:
    """What a key press in the main menu means."""
    return {"1": "case", "2": "appointment", "3": "agent", "0": "agent", "9": "english"}.get(
        digits.strip(), "invalid"
    )


def greeting(voice: Voice, attempt: int = 0) -> str:
    """The main menu; no input falls through to the menu handler as an empty choice."""
    r = VoiceResponse()
    g = Gather(num_digits=1, action=url("menu", attempt=attempt, lang=voice.lang), method="POST",
               timeout=voice.config.gather_timeout_s, language=voice.gather_language)  # fmt: skip
    voice.say(g, "greeting")
    r.append(g)
    r.redirect(url("menu", attempt=attempt, lang=voice.lang, Digits=""), method="POST")
    return str(r)


def invalid_then_menu(voice: Voice, attempt: int) -> str:
    """Say the input was wrong and play the menu once more."""
    r = VoiceResponse()
    voice.say(r, "invalid")
    r.redirect(url("incoming", attempt=attempt, lang=voice.lang), method="POST")
    return str(r)


def case_prompt(voice: Voice) -> str:
    """Ask for the case number's digits."""
    r = VoiceResponse()
    g = Gather(num_digits=12, finish_on_key="#", action=url("case", lang=voice.lang), method="POST",
               timeout=voice.config.gather_timeout_s * 2, language=voice.gather_language)  # fmt: skip
    voice.say(g, "case_prompt")
    r.append(g)
    r.redirect(url("menu", attempt=1, lang=voice.lang, Digits=""), method="POST")
    return str(r)


def spoken_then_menu(voice: Voice, key: str, **values: object) -> str:
    """Say something (a case's status) and return to the menu."""
    r = VoiceResponse()
    voice.say(r, key, **values)
    r.redirect(url("incoming", attempt=0, lang=voice.lang), method="POST")
    return str(r)


def queued(voice: Voice, ticket_id: int, ahead: int, minutes: float) -> str:
    """Position and expected wait on entry, then the hold loop."""
    r = VoiceResponse()
    voice.say(r, "queued", ahead=ahead, minutes=max(1, round(minutes)))
    r.redirect(url("hold", ticket=ticket_id, lang=voice.lang), method="POST")
    return str(r)


def hold(voice: Voice, ticket_id: int, estimate: WaitEstimate | None, n: int = 0) -> str:
    """Hold audio (or silence) that listens for star; the position and wait now and then.

    ``n`` counts the loops so far; every ANNOUNCE_EVERY-th one carries the estimate.
    The TwiML is :func:`build_hold`'s, byte for byte: the library builds it once per voice
    (and with or without the position), and each call fills in its numbers.
    """
    if estimate is None:
        return _hold_shape(voice, False)(int(ticket_id), int(n) + 1)
    minutes = max(1, round(estimate.minutes))
    return _hold_shape(voice, True)(int(ticket_id), int(n) + 1, int(estimate.ahead), minutes)


def build_hold(voice: Voice, ticket_id: int, estimate: WaitEstimate | None, n: int = 0) -> str:
    """:func:`hold`'s TwiML, built by the twilio library on every call."""
    r = VoiceResponse()
    g = Gather(num_digits=1, action=url("hold-key", ticket=ticket_id, lang=voice.lang), method="POST",
               timeout=1, finish_on_key="")  # fmt: skip
    if estimate is not None:
        voice.say(g, "position", ahead=estimate.ahead, minutes=max(1, round(estimate.minutes)))
    if voice.config.hold_music_url:
        g.play(voice.config.hold_music_url)
    else:
        g.pause(length=max(5, int(voice.config.hold_announce_s / 4)))
    r.append(g)
    r.redirect(url("hold", ticket=ticket_id, lang=voice.lang, n=n + 1), method="POST")
    return str(r)


# --- TwiML built once, its numbers filled in per call ----------------------------------------

# Numbers no prompt or setting is expected to contain: the library builds the TwiML with one
# set in the holes, the holes are cut out, and the other set checks the cut (see _shape).
_PROBE = (918_273_645_011, 918_273_645_029, 918_273_645_037, 918_273_645_043)
_CHECK = (564_738_291_013, 564_738_291_031, 564_738_291_041, 564_738_291_059)
_SHAPES: dict[tuple[str, int, bool], tuple[HotlineConfig, Callable[..., str]]] = {}


def _hold_shape(voice: Voice, announce: bool) -> Callable[..., str]:
    """:func:`build_hold`'s TwiML over (ticket id, next n[, ahead, minutes]), filled into
    its shape; one shape per language, config (by identity: it holds dicts) and kind."""
    key = (voice.lang, id(voice.config), announce)
    hit = _SHAPES.get(key)
    if hit is not None and hit[0] is voice.config:
        return hit[1]

    def build(ticket_id: int, n_next: int, ahead: int = 0, minutes: int = 0) -> str:
        estimate = WaitEstimate(ahead=ahead, minutes=minutes, staffed=1) if announce else None
        return build_hold(voice, ticket_id, estimate, n_next - 1)

    shape = _shape(build, 4 if announce else 2)
    if len(_SHAPES) >= 64:  # configs come and go only in tests; keep the table small
        _SHAPES.clear()
    _SHAPES[key] = (voice.config, shape)
    return shape


def _shape(build: Callable[..., str], holes: int) -> Callable[..., str]:
    """``build`` as a format string's ``format``, whose fields are its ``holes`` integers.

    The integers' decimal digits pass through the TwiML unchanged (no XML or URL escaping
    touches digits), so cutting the probe numbers out of the built text leaves the shape.
    The shape is trusted only if, filled with other numbers, it equals the library's own
    text for them; otherwise (a probe number also occurs in a prompt or a setting) the
    text is built afresh on every call.
    """
    probe, check = _PROBE[:holes], _CHECK[:holes]
    text = build(*probe)
    shape = text.replace("{", "{{").replace("}", "}}")
    for i, number in enumerate(probe):
        shape = shape.replace(str(number), f"{{{i}}}")
    if shape.format(*check) == build(*check):
        return shape.format
    log.warning("the hold TwiML could not be cut into a shape: it is built on every call")
    return build


def night(voice: Voice, ticket_id: int) -> str:
    """No agent for this skill: offer a call-back."""
    r = VoiceResponse()
    g = Gather(num_digits=1, action=url("hold-key", ticket=ticket_id, lang=voice.lang, night=1),
               method="POST", timeout=voice.config.gather_timeout_s)  # fmt: skip
    voice.say(g, "night")
    r.append(g)
    voice.say(r, "goodbye")
    r.hangup()
    return str(r)


def callback_registered(voice: Voice, masked: str) -> str:
    """Confirm the call-back and hang up."""
    r = VoiceResponse()
    voice.say(r, "callback_registered", masked=masked)
    r.hangup()
    return str(r)


def connect(voice: Voice, endpoint: str, ticket_id: int, greeting_key: str = "connecting") -> str:
    """Put the call through to the agent's endpoint."""
    r = VoiceResponse()
    voice.say(r, greeting_key)
    dial = Dial(
        action=url("dial-done", ticket=ticket_id, lang=voice.lang), method="POST", timeout=20
    )
    kind, _, target = endpoint.partition(":")
    if kind == "client":
        dial.client(target)
    elif kind == "sip":
        dial.sip(endpoint)
    else:
        dial.number(endpoint)
    r.append(dial)
    return str(r)


def goodbye(voice: Voice) -> str:
    """Thank the caller and hang up."""
    r = VoiceResponse()
    voice.say(r, "goodbye")
    r.hangup()
    return str(r)
