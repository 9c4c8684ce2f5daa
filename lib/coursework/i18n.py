"""The language of what the course says to a student: English, or Simplified Chinese.

Every message is written once, in English, wrapped in ``_()`` (or ``N_()`` where it is
only marked, to be translated when shown).  The catalogue of each other language is a
gettext ``.po`` file, ``locale/<lang>/LC_MESSAGES/coursework.po``, kept beside the
template ``locale/coursework.pot`` that ``pybabel extract`` writes from the code.

Only the ``.po`` text is committed.  It is compiled in memory with Babel (which
JupyterLab already installs) when :mod:`coursework` is imported, and handed to the
standard library's :class:`gettext.GNUTranslations`: no binary ``.mo`` file can fall
out of step with its source, and nothing is written next to the package.

The language is read each time a message is made, from, in order:

1. ``COURSEWORK_LANG`` in the environment -- :func:`use_language` sets it; the Chinese
   edition of every lesson calls it in its first code cell, so that the kernel that
   nbgrader's Validate or the autograder starts speaks the notebook's language too;
2. ``JPY_SESSION_NAME``, the notebook that JupyterLab started the kernel for
   (``NN_name.zh-CN.ipynb`` is the Chinese edition);
3. otherwise English.
"""

from __future__ import annotations

import gettext
import io
import os
from pathlib import Path

__all__ = ["LANGUAGES", "EDITION_SUFFIX", "use_language", "current_language", "normalize", "_", "N_",
           "translate", "language_of_notebook_name"]

DOMAIN = "coursework"
LOCALE_DIR = Path(__file__).with_name("locale")
ENV = "COURSEWORK_LANG"
#: gettext locale -> how the language names itself.  English is the language of the code.
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
#: The file-name tag of each edition: NN_name.ipynb, NN_name.zh-CN.ipynb.
EDITION_SUFFIX = {"en": "", "zh_CN": ".zh-CN"}


def normalize(lang: str | None) -> str:
    """'zh-CN', 'zh_CN', 'zh_CN.UTF-8', 'zh' -> 'zh_CN'; anything else -> 'en'."""
    text = (lang or "").strip().replace("-", "_").split(".")[0].lower()
    return "zh_CN" if text.startswith("zh") else "en"


def language_of_notebook_name(name: str) -> str:
    """The edition a notebook's file name says: 'zh_CN' for NN_name.zh-CN.ipynb, else 'en'."""
    return "zh_CN" if name.endswith(EDITION_SUFFIX["zh_CN"] + ".ipynb") else "en"


def _compile(lang: str) -> gettext.NullTranslations:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po", "rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


# Compiled once, at import: the autograder snapshots the course's modules before a
# student's code runs, so nothing in them may change afterwards (no lazy cache).
_TRANSLATIONS = {"en": gettext.NullTranslations(),
                 **{lang: _compile(lang) for lang in LANGUAGES if lang != "en"}}


def current_language() -> str:
    explicit = os.environ.get(ENV)
    if explicit:
        return normalize(explicit)
    return language_of_notebook_name(os.environ.get("JPY_SESSION_NAME", ""))


def use_language(lang: str) -> None:
    """Make the checks and widgets of this kernel speak ``lang`` ('en' or 'zh-CN')."""
    os.environ[ENV] = normalize(lang)


def translate(message: str, lang: str | None = None) -> str:
    """``message`` (an English msgid) in ``lang``, by default the current language."""
    return _TRANSLATIONS[normalize(lang) if lang else current_language()].gettext(message)


def _(message: str) -> str:
    return translate(message)


def N_(message: str) -> str:
    """Mark a message for the catalogue without translating it yet (it is shown later)."""
    return message
