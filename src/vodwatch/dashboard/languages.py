"""The dashboard's languages, Simplified Chinese and English, and the template environments
that speak them. No I/O past loading the catalogs and templates once.

Every text of the pages goes through gettext (``{% trans %}``, ``_()``) with the catalogs in
``locale/<language>/LC_MESSAGES/messages.po`` (compiled ``.mo`` beside them; ``make messages``
re-extracts and compiles). A request's language is ``?lang=`` (which also sets the
``vodwatch_lang`` cookie), else that cookie, else the best match of ``Accept-Language``, else
English.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.support import Translations
from jinja2 import Environment, PackageLoader, StrictUndefined

LOCALE_DIRECTORY = Path(__file__).parent / "locale"
LANGUAGE_COOKIE = "vodwatch_lang"
MAX_ACCEPT_LANGUAGE_ENTRIES = 20


@dataclass(frozen=True, slots=True)
class Language:
    catalog: str  # the folder under locale/
    html_lang: str  # <html lang>, BCP 47
    switch: str  # ?lang= and the cookie's value
    label: str  # how the switch names it, in itself


LANGUAGES = (
    Language("zh_Hans", "zh-Hans", "zh", "中文"),
    Language("en", "en", "en", "English"),
)
DEFAULT_LANGUAGE = LANGUAGES[1]
_BY_SWITCH = {language.switch: language for language in LANGUAGES}


def language_for_switch(value: str | None) -> Language | None:
    """The language ``?lang=`` or the cookie names (``zh``, ``en``); None for anything else."""
    return _BY_SWITCH.get(value or "")


def parse_accept_language(header: str) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first (by ``q``, then
    by order); those with ``q=0`` and malformed weights are left out."""
    weighted: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header.split(",")[:MAX_ACCEPT_LANGUAGE_ENTRIES]):
        tag, _, parameters = entry.strip().partition(";")
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip() == "q":
            try:
                weight = float(value)
            except ValueError:
                continue
        if tag and 0 < weight <= 1:
            weighted.append((-weight, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_language(accept_language: str | None) -> Language:
    """The dashboard language that best matches an ``Accept-Language`` header: any Chinese
    (``zh``, ``zh-CN``, ``zh-Hans``, ``zh-TW``…) is Simplified Chinese, the only Chinese
    there is; English otherwise, and when nothing matches."""
    spoken: list[str] = []
    for tag in parse_accept_language(accept_language or ""):
        try:
            spoken.append(Locale.parse(tag, sep="-").language)
        except (ValueError, TypeError, UnknownLocaleError):
            continue  # "*", or a tag babel does not know
    best = negotiate_locale(spoken, ["zh", "en"])
    return LANGUAGES[0] if best == "zh" else DEFAULT_LANGUAGE


def choose_language(
    switch: str | None, cookie: str | None, accept_language: str | None
) -> Language:
    return (
        language_for_switch(switch)
        or language_for_switch(cookie)
        or negotiate_language(accept_language)
    )


@cache
def environment(catalog: str) -> Environment:
    """The templates, autoescaped, translated into one language (built once per process)."""
    env = Environment(
        loader=PackageLoader("vodwatch.dashboard", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # {% trans %} blocks collapse their white space, as babel.cfg extracts them.
    env.policies["ext.i18n.trimmed"] = True
    translations = Translations.load(str(LOCALE_DIRECTORY), [catalog])
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env
