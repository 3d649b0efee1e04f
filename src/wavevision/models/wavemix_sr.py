"""The old path of :mod:`wavevision.models.wavemixsr` (renamed in issue 21, so the module's name
says which paper it holds): importing it warns once and gives that module itself."""
from __future__ import annotations

import sys

from . import wavemixsr
from ._deprecated import warn_renamed

warn_renamed("module", __name__, wavemixsr.__name__)
sys.modules[__name__] = wavemixsr
