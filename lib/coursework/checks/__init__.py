"""Every check of the course, written once and imported by every test cell.

Test cells call them as ``from coursework import checks; checks.check_xxx(...)``.
The shared machinery (the :class:`CheckFailure` a wrong answer raises, the
comparison, the registered diagnoses of known misconceptions) is in
:mod:`coursework.checks._core`; each lesson's checks are in their own module,
``lesson1`` .. ``lesson5``.  Every message is shown in the notebook's language
(:mod:`coursework.i18n`).
"""

from ._core import *  # noqa: F401,F403
from ._core import __all__ as _core_all
from .lesson1 import *  # noqa: F401,F403
from .lesson1 import __all__ as _l1
from .lesson2 import *  # noqa: F401,F403
from .lesson2 import __all__ as _l2
from .lesson3 import *  # noqa: F401,F403
from .lesson3 import __all__ as _l3
from .lesson4 import *  # noqa: F401,F403
from .lesson4 import __all__ as _l4
from .lesson5 import *  # noqa: F401,F403
from .lesson5 import __all__ as _l5

__all__ = [*_core_all, *_l1, *_l2, *_l3, *_l4, *_l5]
